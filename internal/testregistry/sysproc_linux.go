package testregistry

import "syscall"

// sysProcAttr puts the registry in its own process group so Stop can
// signal it together with anything it spawns. Pdeathsig kills it if the
// test binary dies without running cleanups (e.g. a -timeout panic).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
