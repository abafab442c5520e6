package replication

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"zcloud/zfsname"
)

// snaps lists snapshots, oldest first.
func snaps(specs ...Snapshot) []Snapshot { return specs }

func s(name string, guid, txg uint64) Snapshot {
	return Snapshot{Name: name, GUID: guid, CreateTXG: txg}
}

var (
	a, b, c, d, e = s("a", 11, 100), s("b", 22, 200), s("c", 33, 300), s("d", 44, 400), s("e", 55, 500)
	// made on the target only, or sent and later pruned on the source
	x = s("x", 99, 350)
)

func TestPlanSend(t *testing.T) {
	src, dst := zfsname.MustDataset("tank/data"), zfsname.MustDataset("backup/data")
	for _, tc := range []struct {
		name     string
		in       Input
		want     Plan
		conflict ConflictKind
		mention  string // in the conflict's message
	}{
		{name: "first run: target missing sends To whole",
			in:   Input{To: "c", SourceSnaps: snaps(a, b, c)},
			want: Plan{Kind: Full, To: c}},
		{name: "incremental from the newest common snapshot",
			in:   Input{To: "d", SourceSnaps: snaps(a, b, c, d), TargetExists: true, TargetSnaps: snaps(a, b)},
			want: Plan{Kind: Incremental, From: b, To: d}},
		{name: "names do not match, GUIDs do: a renamed snapshot still counts",
			in:   Input{To: "d", SourceSnaps: snaps(a, s("b-renamed", 22, 200), d), TargetExists: true, TargetSnaps: snaps(a, b)},
			want: Plan{Kind: Incremental, From: s("b-renamed", 22, 200), To: d}},
		{name: "a reused name with another GUID is not common",
			in:       Input{To: "d", SourceSnaps: snaps(a, s("b", 23, 250), d), TargetExists: true, TargetSnaps: snaps(a, b)},
			conflict: Diverged, mention: "@b"},
		{name: "source pruned its older snapshots: the target's older ones do not matter",
			in:   Input{To: "e", SourceSnaps: snaps(c, d, e), TargetExists: true, TargetSnaps: snaps(a, b, c)},
			want: Plan{Kind: Incremental, From: c, To: e}},
		{name: "extra older snapshots on the target (kept longer there) do not matter",
			in:   Input{To: "d", SourceSnaps: snaps(c, d), TargetExists: true, TargetSnaps: snaps(a, b, c)},
			want: Plan{Kind: Incremental, From: c, To: d}},
		{name: "target already has To",
			in:   Input{To: "c", SourceSnaps: snaps(a, b, c), TargetExists: true, TargetSnaps: snaps(a, b, c)},
			want: Plan{Kind: UpToDate, To: c}},
		{name: "target has To and older ones the source pruned",
			in:   Input{To: "c", SourceSnaps: snaps(c), TargetExists: true, TargetSnaps: snaps(a, b, c)},
			want: Plan{Kind: UpToDate, To: c}},
		{name: "resume token wins over everything else",
			in:   Input{To: "d", SourceSnaps: snaps(a, b, c, d), TargetExists: true, TargetSnaps: snaps(a), ResumeToken: "1-abc-def-0"},
			want: Plan{Kind: Resume, To: d, ResumeToken: "1-abc-def-0"}},
		{name: "To missing on the source",
			in:       Input{To: "z", SourceSnaps: snaps(a, b), TargetExists: true, TargetSnaps: snaps(a)},
			conflict: MissingSnapshot, mention: "tank/data@z does not exist"},
		{name: "target exists with no snapshot at all",
			in:       Input{To: "b", SourceSnaps: snaps(a, b), TargetExists: true},
			conflict: NoCommonSnapshot, mention: "shares no snapshot"},
		{name: "source pruned past the target: every snapshot the target has is gone on the source",
			in:       Input{To: "e", SourceSnaps: snaps(d, e), TargetExists: true, TargetSnaps: snaps(a, b, c)},
			conflict: NoCommonSnapshot, mention: "backup/data exists but shares no snapshot with tank/data"},
		{name: "source pruned the target's newest snapshot: diverged after the common one",
			in:       Input{To: "e", SourceSnaps: snaps(b, d, e), TargetExists: true, TargetSnaps: snaps(a, b, x)},
			conflict: Diverged, mention: "after the newest common snapshot @b it has @x"},
		{name: "snapshots made on the target after the common one: diverged",
			in:       Input{To: "d", SourceSnaps: snaps(a, b, c, d), TargetExists: true, TargetSnaps: snaps(a, b, x, s("y", 98, 360))},
			conflict: Diverged, mention: "@x, @y"},
		{name: "target has a common snapshot newer than To",
			in:       Input{To: "b", SourceSnaps: snaps(a, b, c), TargetExists: true, TargetSnaps: snaps(a, c)},
			conflict: TargetNewer, mention: "already has c, newer than b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Source, tc.in.Target = src, dst
			got, err := PlanSend(tc.in)
			if tc.conflict != "" {
				var c *Conflict
				if !errors.As(err, &c) || c.Kind != tc.conflict {
					t.Fatalf("got plan %+v, err %v; want conflict %q", got, err, tc.conflict)
				}
				if !strings.Contains(err.Error(), tc.mention) {
					t.Errorf("message %q does not mention %q", err, tc.mention)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected conflict: %v", err)
			}
			if got != tc.want {
				t.Fatalf("plan %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The diverged conflict lists the extra snapshots oldest first.
func TestDivergedListsExtrasOldestFirst(t *testing.T) {
	y := s("y", 98, 360)
	_, err := PlanSend(Input{Source: zfsname.MustDataset("p/s"), Target: zfsname.MustDataset("q/t"), To: "d",
		SourceSnaps: snaps(a, b, d), TargetExists: true, TargetSnaps: snaps(a, b, x, y)})
	var c *Conflict
	if !errors.As(err, &c) || !slices.Equal(c.Extra, []string{"x", "y"}) || c.Common != b {
		t.Fatalf("conflict %+v", c)
	}
}

// A bookmark stands in for a snapshot the source pruned, so a prune never
// forces a full resend.
func TestPlanFromBookmark(t *testing.T) {
	src, dst := zfsname.MustDataset("tank/data"), zfsname.MustDataset("backup/data")
	bm := func(name string, of Snapshot) Snapshot {
		return Snapshot{Name: name, GUID: of.GUID, CreateTXG: of.CreateTXG}
	}
	for _, tc := range []struct {
		name     string
		in       Input
		want     Plan
		conflict ConflictKind
	}{
		{name: "base pruned, its bookmark kept: incremental from the bookmark",
			in:   Input{To: "d", SourceSnaps: snaps(d), SourceBookmarks: snaps(bm("zcloud-t:c", c)), TargetExists: true, TargetSnaps: snaps(a, b, c)},
			want: Plan{Kind: FromBookmark, From: bm("zcloud-t:c", c), To: d}},
		{name: "snapshots between the bookmark and To: the first hop ends at the oldest of them",
			in:   Input{To: "e", SourceSnaps: snaps(a, d, e), SourceBookmarks: snaps(bm("zcloud-t:c", c)), TargetExists: true, TargetSnaps: snaps(a, b, c)},
			want: Plan{Kind: FromBookmark, From: bm("zcloud-t:c", c), To: d}},
		{name: "the snapshot still exists: it wins over its bookmark (-I keeps the ones between)",
			in:   Input{To: "e", SourceSnaps: snaps(c, d, e), SourceBookmarks: snaps(bm("zcloud-t:c", c)), TargetExists: true, TargetSnaps: snaps(a, b, c)},
			want: Plan{Kind: Incremental, From: c, To: e}},
		{name: "a newer bookmark beats an older common snapshot",
			in:   Input{To: "d", SourceSnaps: snaps(a, d), SourceBookmarks: snaps(bm("mine", b)), TargetExists: true, TargetSnaps: snaps(a, b)},
			want: Plan{Kind: FromBookmark, From: bm("mine", b), To: d}},
		{name: "a bookmark whose GUID the target lacks is no base",
			in:       Input{To: "e", SourceSnaps: snaps(e), SourceBookmarks: snaps(bm("zcloud-t:d", d)), TargetExists: true, TargetSnaps: snaps(a, b)},
			conflict: NoCommonSnapshot},
		{name: "target snapshots after the bookmarked one: diverged",
			in:       Input{To: "e", SourceSnaps: snaps(e), SourceBookmarks: snaps(bm("zcloud-t:b", b)), TargetExists: true, TargetSnaps: snaps(a, b, x)},
			conflict: Diverged},
		{name: "the bookmark is newer than To: target newer",
			in:       Input{To: "b", SourceSnaps: snaps(b), SourceBookmarks: snaps(bm("zcloud-t:c", c)), TargetExists: true, TargetSnaps: snaps(c)},
			conflict: TargetNewer},
		{name: "a resume token still wins",
			in:   Input{To: "d", SourceSnaps: snaps(d), SourceBookmarks: snaps(bm("zcloud-t:c", c)), TargetExists: true, ResumeToken: "1-abc-def-0"},
			want: Plan{Kind: Resume, To: d, ResumeToken: "1-abc-def-0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Source, tc.in.Target = src, dst
			got, err := PlanSend(tc.in)
			if tc.conflict != "" {
				var c *Conflict
				if !errors.As(err, &c) || c.Kind != tc.conflict {
					t.Fatalf("got plan %+v, err %v; want conflict %q", got, err, tc.conflict)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("plan %+v, err %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestStaleCursors(t *testing.T) {
	if got := CursorName("backup", "zcloud_20261207"); got != "zcloud-backup:zcloud_20261207" {
		t.Fatalf("cursor name %q", got)
	}
	got := StaleCursors("backup", "zcloud-backup:s3", []string{
		"zcloud-backup:s1", "zcloud-backup:s3", "zcloud-backup2:s1", "zcloud-back:s1", "mine", "zcloud-backup", "zcloud-backup:s2"})
	if want := []string{"zcloud-backup:s1", "zcloud-backup:s2"}; !slices.Equal(got, want) {
		t.Fatalf("stale %q, want %q", got, want)
	}
}
