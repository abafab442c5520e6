package progress

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestBoardServesTheCounterAsItMoves(t *testing.T) {
	var b Board
	var n atomic.Int64
	url, done := b.Track(Entry{Key: Key{"replicate/tank/a/backup", "7"}, Attempt: 2, Phase: "send", Total: 1000, Bytes: &n})
	if url == "" {
		t.Fatalf("no live URL: %v", b.ServeErr())
	}
	ctx := context.Background()
	var seen []int64
	for _, v := range []int64{0, 100, 400} {
		n.Store(v)
		s, err := Fetch(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		if s.Workflow != "replicate/tank/a/backup" || s.Activity != "7" || s.Attempt != 2 || s.Phase != "send" || s.Total != 1000 {
			t.Fatalf("snapshot %+v", s)
		}
		seen = append(seen, s.Bytes)
	}
	if seen[0] != 0 || seen[1] != 100 || seen[2] != 400 {
		t.Fatalf("bytes served %v, want the counter's values 0 100 400", seen)
	}
	done()
	if _, err := Fetch(ctx, url); err == nil {
		t.Fatal("a finished activity is still served")
	}
}

func TestRateAndETAFromRecentSamples(t *testing.T) {
	var n atomic.Int64
	start := time.Unix(1000, 0)
	tr := &tracked{Entry: Entry{Total: 10_000, Bytes: &n}, started: start}
	// 100 B/s for 10 s, then 1000 B/s: the rate follows the recent pace.
	for i := 1; i <= 10; i++ {
		n.Store(int64(100 * i))
		tr.snapshot(start.Add(time.Duration(i) * time.Second))
	}
	var s Snapshot
	for i := 11; i <= 20; i++ {
		n.Store(1000 + int64(1000*(i-10)))
		s = tr.snapshot(start.Add(time.Duration(i) * time.Second))
	}
	if s.BytesPerSec < 900 || s.BytesPerSec > 1100 {
		t.Fatalf("rate %.0f B/s, want about 1000 (the last seconds' pace)", s.BytesPerSec)
	}
	if s.Bytes != 11_000 || s.ETASeconds != 0 {
		t.Fatalf("past the estimate: %+v", s)
	}
	n.Store(5000)
	tr2 := &tracked{Entry: Entry{Total: 10_000, Bytes: &n}, started: start}
	s = tr2.snapshot(start.Add(5 * time.Second))
	if s.BytesPerSec != 1000 || s.ETA() != 5*time.Second {
		t.Fatalf("first read: %+v, want 1000 B/s since the start and 5 s left", s)
	}
}
