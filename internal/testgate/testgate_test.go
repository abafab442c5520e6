package testgate

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNilGatePassesEverything(t *testing.T) {
	var g *Gate
	if err := g.Pass(context.Background(), "send", 1<<40); err != nil {
		t.Fatal(err)
	}
}

func TestArmedPointHoldsOnceUntilReleased(t *testing.T) {
	g := New(t.TempDir())
	if err := g.Arm("send", 100); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := g.Pass(ctx, "send", 99); err != nil || g.Held("send") {
		t.Fatalf("held below the threshold: %v", err)
	}
	passed := make(chan error, 1)
	go func() { passed <- g.Pass(ctx, "send", 150) }()
	if err := g.WaitHeld(ctx, "send", time.Minute); err != nil {
		t.Fatal(err)
	}
	// The held file says where it held: the count, not the threshold.
	if n, ok := g.HeldAt("send"); !ok || n != 150 {
		t.Fatalf("held at %d, %v; want 150", n, ok)
	}
	select {
	case err := <-passed:
		t.Fatalf("passed a held point before the release: %v", err)
	default:
	}
	// A second caller (a retried attempt) is not held.
	if err := g.Pass(ctx, "send", 200); err != nil {
		t.Fatal(err)
	}
	if err := g.Release("send"); err != nil {
		t.Fatal(err)
	}
	if err := <-passed; err != nil {
		t.Fatal(err)
	}
}

func TestHeldPointEndsWithTheContext(t *testing.T) {
	g := New(t.TempDir())
	if err := g.Arm("restore", 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	passed := make(chan error, 1)
	go func() { passed <- g.Reached(ctx, "restore") }()
	if err := g.WaitHeld(context.Background(), "restore", time.Minute); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-passed; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
