package ratelimit

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// The bucket's arithmetic on a synthetic clock: a full burst passes at
// once, what goes beyond it waits exactly as long as the rate needs, and
// idle time refills no more than one burst.
func TestBucketWaitsForTheRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New(1000, 500) // 1000 B/s, 500 B burst
	b.last = t0
	steps := []struct {
		at   time.Duration
		n    int
		want time.Duration
	}{
		{0, 500, 0},                                           // the burst passes
		{0, 100, 100 * time.Millisecond},                      // 100 B of debt
		{0, 400, 500 * time.Millisecond},                      // 500 B of debt in all
		{500 * time.Millisecond, 100, 100 * time.Millisecond}, // repaid, 100 B more
		{10 * time.Second, 600, 100 * time.Millisecond},       // idle refills one burst only
	}
	for i, s := range steps {
		if got := b.take(t0.Add(s.at), s.n); got != s.want {
			t.Fatalf("step %d: take(%d) at +%v waits %v, want %v", i, s.n, s.at, got, s.want)
		}
	}
}

func TestNoLimit(t *testing.T) {
	var b *Bucket = New(0, 0)
	if b != nil || b.Wait(context.Background(), 1<<30) != nil || b.Burst() != 0 {
		t.Fatal("a zero rate must limit nothing")
	}
	r := bytes.NewReader(nil)
	if Reader(context.Background(), r, nil) != io.Reader(r) {
		t.Fatal("Reader with no bucket must return the reader itself")
	}
}

// Reads through a limited reader deliver every byte in order, each read at
// most a burst, and a cancelled context ends a wait with its error.
func TestReaderKeepsBytesAndStopsOnCancel(t *testing.T) {
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i)
	}
	b := New(1<<40, 1000) // fast enough never to wait
	rd := Reader(context.Background(), bytes.NewReader(data), b)
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := rd.Read(buf)
		if n > 1000 {
			t.Fatalf("read %d bytes, more than the burst", n)
		}
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("bytes changed on the way through")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow := New(1, 1)
	slow.tokens = -3600 // an hour of debt
	if err := slow.Wait(ctx, 1); err != context.Canceled {
		t.Fatalf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}
