//go:build unix

package testregistry

import (
	"errors"
	"syscall"
)

// signalGroup signals the process group led by pid. ESRCH means it is
// already gone, which is what the caller wants anyway.
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
