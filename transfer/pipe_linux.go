//go:build linux

package transfer

import (
	"os"
	"syscall"
)

// pipeSize is what GrowPipe asks for: a 1 MiB pipe lets `zfs send`/`zfs
// receive` and this process exchange a whole chunk per wakeup instead of 64 KiB.
const pipeSize = 1 << 20

const fSetPipeSz = 1031 // F_SETPIPE_SZ

// GrowPipe enlarges f's pipe buffer when f is a pipe; errors are ignored (f may
// be a file or a terminal, or the limit in /proc/sys/fs/pipe-max-size lower).
func GrowPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, pipeSize)
	})
}

// childProcAttr puts the receive command in its own process group (so it can
// be killed with its children) and has the kernel kill it if we die.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
