//go:build !linux

package transfer

import "syscall"

func tuneSocket(notSent int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error { return nil }
}
