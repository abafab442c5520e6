package cli

import (
	"testing"

	"zcloud/contract"
)

func TestFormatProgressShowsBytesRateAndTimeLeft(t *testing.T) {
	got := formatProgress(contract.Progress{Phase: "send", Bytes: 3 << 20, Total: 6 << 20, BytesPerSec: 256 << 10})
	if want := "send 3.0 MiB of 6.0 MiB (50%) at 256.0 KiB/s, ETA 12s"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := formatProgress(contract.Progress{Phase: "upload", Bytes: 100, BytesPerSec: 10}); got != "upload 100 B at 10 B/s" {
		t.Fatalf("without an estimate: %q", got)
	}
}
