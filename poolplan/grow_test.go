package poolplan

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func mod(vol string, at time.Duration, st ModState, size int64) Modification {
	return Modification{VolumeID: vol, Start: t0.Add(at), State: st, TargetSizeGiB: size}
}

func TestFifthModificationWaitsForTheFirstToLeaveTheWindow(t *testing.T) {
	h := []Modification{
		mod("vol-a", 0, ModCompleted, 2),
		mod("vol-a", 2*time.Hour, ModCompleted, 3),
		mod("vol-a", 5*time.Hour, ModCompleted, 4),
		mod("vol-a", 9*time.Hour, ModCompleted, 5),
		mod("vol-b", 10*time.Hour, ModCompleted, 5), // other volumes don't count
	}
	now := t0.Add(10 * time.Hour)
	rc := CheckModificationRate("vol-a", h, now)
	if rc.Allowed || rc.InProgress || !rc.NotBefore.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("5th within 24 h: %+v, want wait until %v", rc, t0.Add(24*time.Hour))
	}
	if rc := CheckModificationRate("vol-a", h, t0.Add(24*time.Hour-time.Second)); rc.Allowed {
		t.Fatalf("a second before the first leaves the window: allowed")
	}
	if rc := CheckModificationRate("vol-a", h, t0.Add(24*time.Hour)); !rc.Allowed {
		t.Fatalf("when the first leaves the window: %+v", rc)
	}
	if rc := CheckModificationRate("vol-b", h, now); !rc.Allowed {
		t.Fatalf("vol-b has one modification: %+v", rc)
	}
	// With a 5th made at 24h, the 6th waits for the 2nd to leave (2h+24h).
	h = append(h, mod("vol-a", 24*time.Hour, ModCompleted, 6))
	rc = CheckModificationRate("vol-a", h, t0.Add(25*time.Hour))
	if rc.Allowed || !rc.NotBefore.Equal(t0.Add(26*time.Hour)) {
		t.Fatalf("6th: %+v, want wait until %v", rc, t0.Add(26*time.Hour))
	}
}

func TestIncompleteModificationBlocksTheNext(t *testing.T) {
	for _, st := range []ModState{ModModifying, ModOptimizing} {
		h := []Modification{mod("vol-a", 0, st, 20)}
		rc := CheckModificationRate("vol-a", h, t0.Add(48*time.Hour))
		if rc.Allowed || !rc.InProgress {
			t.Errorf("%s: %+v, want in progress", st, rc)
		}
	}
	// Failed ones count against the window but don't block.
	h := []Modification{mod("vol-a", 0, ModFailed, 20)}
	if rc := CheckModificationRate("vol-a", h, t0.Add(time.Hour)); !rc.Allowed {
		t.Errorf("after a failed one: %+v", rc)
	}
}

func TestGrowInPlacePlan(t *testing.T) {
	vols := []Volume{
		{ID: "vol-ok", Type: GP3, SizeGiB: 10},
		{ID: "vol-busy", Type: GP3, SizeGiB: 10},
		{ID: "vol-limited", Type: GP3, SizeGiB: 10},
		{ID: "vol-done", Type: GP3, SizeGiB: 20},
		{ID: "vol-mine", Type: GP3, SizeGiB: 20},
		{ID: "vol-big", Type: GP3, SizeGiB: 30},
	}
	h := []Modification{
		mod("vol-busy", 0, ModOptimizing, 15),
		mod("vol-limited", 0, ModCompleted, 11),
		mod("vol-limited", time.Hour, ModCompleted, 12),
		mod("vol-limited", 2*time.Hour, ModCompleted, 13),
		mod("vol-limited", 3*time.Hour, ModCompleted, 14),
		mod("vol-mine", 4*time.Hour, ModModifying, 20), // our own, from before a crash
	}
	now := t0.Add(5 * time.Hour)
	p := GrowInPlacePlan(vols, 20, h, now)
	want := map[string]GrowAction{
		"vol-ok": GrowModify, "vol-busy": GrowWaitModification, "vol-limited": GrowWaitUntil,
		"vol-done": GrowDone, "vol-mine": GrowWaitModification, "vol-big": GrowRefuse,
	}
	for i, s := range p.Steps {
		if s.VolumeID != vols[i].ID {
			t.Fatalf("step %d is %s, want the volumes' order", i, s.VolumeID)
		}
		if s.Action != want[s.VolumeID] {
			t.Errorf("%s: %s (%s), want %s", s.VolumeID, s.Action, s.Reason, want[s.VolumeID])
		}
	}
	if !p.NextWake().Equal(t0.Add(24 * time.Hour)) {
		t.Errorf("NextWake %v", p.NextWake())
	}
	if len(p.ModifyNow()) != 1 || len(p.Refused()) != 1 || p.Done() {
		t.Errorf("summary: %+v", p)
	}
	// Too big for the type.
	p = GrowInPlacePlan([]Volume{{ID: "vol-2", Type: GP2, SizeGiB: 100}}, 20000, nil, now)
	if p.Steps[0].Action != GrowRefuse {
		t.Errorf("gp2 beyond 16 TiB: %+v", p.Steps[0])
	}
	// Everything at size: done, and optimizing counts (the size is usable).
	h = []Modification{mod("vol-x", 0, ModOptimizing, 20)}
	p = GrowInPlacePlan([]Volume{{ID: "vol-x", Type: GP3, SizeGiB: 20}}, 20, h, now)
	if !p.Done() {
		t.Errorf("at size: %+v", p)
	}
}
