package retention

import (
	"testing"
	"time"
)

func TestSnapshotNameFormat(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	at := time.Date(2026, 11, 22, 12, 0, 0, 999, ny) // 17:00 UTC; sub-second dropped
	if got, want := SnapshotName("zcloud", at), "zcloud_20261122T170000Z"; got != want {
		t.Fatalf("SnapshotName = %q, want %q", got, want)
	}
}

func TestSnapshotNameRoundTrip(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2028, 2, 29, 23, 59, 59, 0, time.UTC),
		time.Date(1999, 12, 31, 7, 8, 9, 0, time.UTC),
	} {
		for _, prefix := range []string{"zcloud", "a", "my.pool:daily-x_y"} {
			got, ok := ParseSnapshotName(prefix, SnapshotName(prefix, at))
			if !ok || !got.Equal(at) || got.Location() != time.UTC {
				t.Errorf("round trip %s %v: got %v ok=%v", prefix, at, got, ok)
			}
		}
	}
}

func TestParseSnapshotNameRejectsForeignNames(t *testing.T) {
	for _, name := range []string{
		"",
		"zcloud",
		"zcloud_",
		"zcloud_20261122T170000",   // no Z
		"zcloud_20261122T170000Z1", // trailing garbage
		"zcloud_2026-11-22T17:00:00Z",
		"zcloud-20261122T170000Z",   // wrong separator
		"Zcloud_20261122T170000Z",   // other prefix
		"zcloudx_20261122T170000Z",  // prefix only a substring
		"zcloud_x_20261122T170000Z", // another tool's label after our prefix
		"zcloud_20261322T170000Z",   // month 13
		"zcloud_20260230T170000Z",   // Feb 30
		"zcloud_20261122T246000Z",   // hour 24
		"zcloud_20261122t170000z",   // lower case
		"zfs-auto-snap_hourly-2026-11-22-1700",
		"autosnap_2026-11-22_17:00:00_hourly",
	} {
		if got, ok := ParseSnapshotName("zcloud", name); ok {
			t.Errorf("ParseSnapshotName(%q) = %v, true; want rejected", name, got)
		}
	}
}
