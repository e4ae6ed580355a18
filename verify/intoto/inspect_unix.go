//go:build unix

package intoto

import (
	"os/exec"
	"syscall"
)

// isolate puts the inspection in its own process group and makes the
// timeout kill the whole group, so a command's children do not outlive it.
func isolate(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
