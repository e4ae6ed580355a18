package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr kills a child if the bench dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// maxRSSKiB is the child's peak resident set size; Linux reports KiB.
func maxRSSKiB(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

// userHZ is the unit of /proc/PID/stat times: USER_HZ is 100 on every
// architecture Linux runs Go on, and Go has no sysconf to ask.
const userHZ = 100

// processCPU is the user+system CPU seconds process pid has used so far,
// from /proc/PID/stat; ok is false once the process is gone.
func processCPU(pid int) (secs float64, ok bool) {
	f := statFields(pid)
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(utime+stime) / userHZ, true
}

// statFields are the fields of /proc/PID/stat after the command name
// (which may hold spaces): state, ppid, ..., utime at 11, stime at 12.
func statFields(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// childServing finds our child process that has an argument inside dir:
// testregistry starts `docker-registry serve DIR/config.yml` and does not
// export the process, and its CPU time is what the bench wants to know.
// It returns 0 if there is none.
func childServing(dir string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := strconv.Itoa(os.Getpid())
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) < 2 || f[1] != self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			if strings.HasPrefix(arg, prefix) {
				return pid
			}
		}
	}
	return 0
}

// selfCPU is the bench process's own user+system CPU seconds so far, for
// the measurements it makes in-process (the ingest floor).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

// tmpfsMagic is Linux's f_type of a tmpfs.
const tmpfsMagic = 0x01021994

// memDir is a tmpfs to hold a registry's storage in memory, or "" if the
// machine has none: the small-image runs repeat there to show what the
// registry's disk syncs cost.
func memDir() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		return ""
	}
	if syscall.Access("/dev/shm", 2 /* W_OK */) != nil {
		return ""
	}
	return "/dev/shm"
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
