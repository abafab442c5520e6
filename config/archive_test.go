package config

import (
	"errors"
	"testing"
	"time"
)

const rcpt = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

func TestArchiveDefaults(t *testing.T) {
	c, err := Parse([]byte(`
archive:
  store: {kind: local, dir: /var/lib/zcloud/archive}
  recipients: [` + rcpt + `]
  datasets: [{dataset: tank/data}, {dataset: tank/db, cycle: 90d, sanity_min_percent: 80, raw: true, class: GLACIER}]
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Archive
	if a.Store.Class != "STANDARD" || a.Store.Prefix != "zcloud" || a.HostIdentity != "archive-host" || a.RestoreTier != "Standard" ||
		a.VerifyTier != "Bulk" || a.Schedule != 24*time.Hour || *a.MaxDeleteCycles != 1 || *a.MaxDeleteBytes != -1 ||
		a.MaxRestoreTier != "Standard" || a.MaxRestoreDays != 30 || a.AllowForce || a.AllowAcceptSmaller {
		t.Fatalf("defaults: %+v", a)
	}
	d0, d1 := a.Datasets[0], a.Datasets[1]
	if d0.Cycle.Duration() != 30*24*time.Hour || *d0.SanityMinPercent != 50 || d0.Class != "STANDARD" {
		t.Fatalf("dataset defaults: %+v", d0)
	}
	if d1.Cycle.Duration() != 90*24*time.Hour || *d1.SanityMinPercent != 80 || !d1.Raw || d1.Class != "GLACIER" {
		t.Fatalf("dataset: %+v", d1)
	}
	if got, ok := c.ArchiveDatasetFor("tank/db"); !ok || got.Cycle.String() != "90d" {
		t.Fatalf("ArchiveDatasetFor: %+v", got)
	}
	// A dearer default tier raises the default cap with it.
	if c, err := Parse([]byte("archive: {store: {kind: local, dir: /a}, restore_tier: Expedited, restore_days: 60}")); err != nil ||
		c.Archive.MaxRestoreTier != "Expedited" || c.Archive.MaxRestoreDays != 60 {
		t.Fatalf("caps follow the defaults: %v %+v", err, c)
	}
	s3, err := Parse([]byte("archive: {store: {kind: s3, bucket: b}}"))
	if err != nil || s3.Archive.Store.Class != "DEEP_ARCHIVE" {
		t.Fatalf("s3 default class: %v %+v", err, s3.Archive.Store)
	}
}

func TestParseDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		got, err := ParseDays(in)
		if err != nil || got.Duration() != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "d", "-3d", "3x", "thirty days"} {
		if _, err := ParseDays(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestArchiveErrorsNameTheField(t *testing.T) {
	ok := "store: {kind: local, dir: /a}, recipients: [" + rcpt + "]"
	cases := []struct{ yaml, field string }{
		{"archive: {store: {kind: tape}}", "archive.store.kind"},
		{"archive: {store: {kind: s3}}", "archive.store.bucket"},
		{"archive: {store: {kind: vault, vault: v}}", "archive.store.bucket"},
		{"archive: {store: {kind: vault, vault: v, bucket: b, class: DEEP_ARCHIVE}}", "archive.store.class"},
		{"archive: {store: {kind: s3, bucket: b, class: COLD}}", "archive.store.class"},
		{"archive: {store: {kind: local, dir: /a}, datasets: [{dataset: tank/a}]}", "archive.recipients"},
		{"archive: {store: {kind: local, dir: /a}, recipients: [AGE-SECRET-KEY-1XYZ]}", "archive.recipients[0]"},
		{"archive: {" + ok + ", datasets: [{dataset: 'tank/a;rm'}]}", "archive.datasets[0].dataset"},
		{"archive: {" + ok + ", datasets: [{dataset: tank/a}, {dataset: tank/a}]}", "archive.datasets[1].dataset"},
		{"archive: {" + ok + ", datasets: [{dataset: tank/a, cycle: 10s}]}", "archive.datasets[0].cycle"},
		{"archive: {" + ok + ", datasets: [{dataset: tank/a, sanity_min_percent: 150}]}", "archive.datasets[0].sanity_min_percent"},
		{"archive: {" + ok + ", restore_tier: Fast}", "archive.restore_tier"},
		{"archive: {" + ok + ", host_identity: ../etc/shadow}", "archive.host_identity"},
		{"archive: {" + ok + ", max_delete_cycles: -2}", "archive.max_delete_cycles"},
		{"archive: {" + ok + ", max_restore_tier: Fast}", "archive.max_restore_tier"},
		{"archive: {" + ok + ", restore_tier: Expedited, max_restore_tier: Standard}", "archive.restore_tier"},
		{"archive: {" + ok + ", verify_tier: Standard, max_restore_tier: Bulk, restore_tier: Bulk}", "archive.verify_tier"},
		{"archive: {" + ok + ", restore_days: 40, max_restore_days: 30}", "archive.max_restore_days"},
		{"archive: {store: {kind: local, dir: /a, part_size: 1000}}", "archive.store.part_size"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%q: got %v, want error naming %s", tc.yaml, err, tc.field)
		}
	}
	if _, err := Parse([]byte("archive: {store: {kind: local, dir: /a}, datasets: [{dataset: tank/a, cycle: thirty}], recipients: [" + rcpt + "]}")); err == nil {
		t.Error("a bad cycle was accepted")
	}
}
