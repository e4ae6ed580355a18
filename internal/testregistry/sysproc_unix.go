//go:build unix && !linux

package testregistry

import "syscall"

// sysProcAttr puts the registry in its own process group so Stop can
// signal it together with anything it spawns.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
