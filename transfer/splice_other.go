//go:build !linux

package transfer

import "os"

// spliceWriter is Linux only (vmsplice); elsewhere the output is copied.
type spliceWriter struct{}

func newSpliceWriter(*os.File) *spliceWriter { return nil }

func (s *spliceWriter) writeRetained(b []byte) ([][]byte, error) { panic("unreachable") }
func (s *spliceWriter) Write(b []byte) (int, error)              { panic("unreachable") }
func (s *spliceWriter) release()                                 {}
