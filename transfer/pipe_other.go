//go:build !linux

package transfer

import (
	"os"
	"syscall"
)

// GrowPipe enlarges a pipe's buffer where the OS allows it (Linux only).
func GrowPipe(*os.File) {}

// childProcAttr puts the receive command in its own process group so it can be
// killed with its children.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
