//go:build !linux

package main

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// maxRSSKiB is unknown here: Maxrss units differ between systems (bytes on
// macOS, KiB on Linux), so the report shows 0 rather than a wrong number.
func maxRSSKiB(*os.ProcessState) int64 { return 0 }

// CPU accounting reads /proc; elsewhere the report shows 0.
func processCPU(int) (float64, bool) { return 0, false }
func childServing(string) int        { return 0 }
func selfCPU() float64               { return 0 }
func memDir() string                 { return "" }
