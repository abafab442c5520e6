//go:build !linux

package transfer

import "syscall"

func tuneSocket(network, address string, c syscall.RawConn) error { return nil }
