package replication

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
)

// The receive side must never see a clean end of a stream whose send failed
// midway: that would pass a truncated stream off as complete.
func TestPipeFailedSendIsNeverEOF(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.Read(data)
	for _, c := range []struct {
		name    string
		sendErr error
	}{{"send succeeds", nil}, {"send fails midway", errors.New("zfs send exited 1")}} {
		t.Run(c.name, func(t *testing.T) {
			var got bytes.Buffer
			var readErr error
			err := Pipe(context.Background(), nil,
				func(ctx context.Context, w io.Writer) error {
					if c.sendErr != nil {
						w.Write(data[:len(data)/2])
						return c.sendErr
					}
					_, err := w.Write(data)
					return err
				},
				func(ctx context.Context, r io.Reader) error {
					_, readErr = io.Copy(&got, r)
					return readErr
				})
			if c.sendErr == nil {
				if err != nil || readErr != nil || !bytes.Equal(got.Bytes(), data) {
					t.Fatalf("Pipe = %v, read %d bytes (err %v); want all %d bytes", err, got.Len(), readErr, len(data))
				}
				return
			}
			if readErr == nil {
				t.Fatalf("the receive side read %d bytes and a clean EOF from a failed send", got.Len())
			}
			if err == nil || !strings.Contains(err.Error(), "zfs send exited 1") {
				t.Fatalf("Pipe = %v; want the send's error", err)
			}
		})
	}
}

// A receive side that stops early must not leave the send blocked on a full pipe.
func TestPipeReceiveFailureStopsSend(t *testing.T) {
	err := Pipe(context.Background(), nil,
		func(ctx context.Context, w io.Writer) error {
			block := make([]byte, 1<<20)
			for {
				if _, err := w.Write(block); err != nil {
					return err // EPIPE once the reader is gone
				}
			}
		},
		func(ctx context.Context, r io.Reader) error {
			io.CopyN(io.Discard, r, 5<<20)
			return errors.New("zfs receive failed")
		})
	if err == nil || !strings.HasPrefix(err.Error(), "receive: zfs receive failed") {
		t.Fatalf("Pipe = %v; want the receive's error first", err)
	}
}
