package activities

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"zcloud/contract"
	"zcloud/zfsexec"
)

// A permanent error wrapped with context on its way up (replication.Pipe's
// "receive: ...") stays permanent: the SDK reads only the outermost error,
// so without this a ConfigError was retried for an hour.
func TestClassifyKeepsWrappedPermanentErrors(t *testing.T) {
	inner := permanent(contract.ErrTypeConfig, errors.New(`receiver_path: invalid device name "/x;y"`))
	err := classify(fmt.Errorf("receive: %w", inner))
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || err != error(ae) {
		t.Fatalf("classify returned %T %v, want an application error at the top", err, err)
	}
	if !ae.NonRetryable() || ae.Type() != contract.ErrTypeConfig {
		t.Fatalf("lost the flag or type: retryable=%v type=%s", !ae.NonRetryable(), ae.Type())
	}
	if want := `receive: receiver_path: invalid device name "/x;y"`; ae.Message() != want {
		t.Fatalf("message %q, want %q", ae.Message(), want)
	}
	// A wrapped retryable one stays retryable.
	err = classify(fmt.Errorf("receive: %w", temporal.NewApplicationError("busy", "Busy")))
	if errors.As(err, &ae) && ae.NonRetryable() {
		t.Fatal("a retryable error became permanent")
	}
}

// OpenZFS 2.3.2's refusal of a non-raw incremental onto a raw-received
// target (zfsexec/testdata/openzfs-2.3.2/resume-capture.txt) is permanent
// and says what to do, instead of being retried for hours.
func TestClassifyKeyNotLoadedIsPermanent(t *testing.T) {
	err := classify(fmt.Errorf("receive: %w", &zfsexec.ExitError{Argv: []string{"zfs", "receive", "-s", "-F", "tank/rawdst"}, Host: "backup", Code: 1,
		Stderr: "cannot receive incremental stream: inherited key must be loaded\n", Kind: zfsexec.ErrKeyNotLoaded}))
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || !ae.NonRetryable() || ae.Type() != contract.ErrTypeStreamMismatch {
		t.Fatalf("classify: %T %v, want a non-retryable StreamMismatch", err, err)
	}
	if !strings.Contains(ae.Error(), "inherited key must be loaded") || !strings.Contains(ae.Error(), "send raw again") {
		t.Fatalf("message %q", ae.Error())
	}
}
