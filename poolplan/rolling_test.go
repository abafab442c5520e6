package poolplan

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func twoRaidz1(size int64) [][]Volume {
	return [][]Volume{
		{{ID: "vol-a0", Type: GP3, SizeGiB: size}, {ID: "vol-a1", Type: GP3, SizeGiB: size}, {ID: "vol-a2", Type: GP3, SizeGiB: size}},
		{{ID: "vol-b0", Type: GP3, SizeGiB: size}, {ID: "vol-b1", Type: GP3, SizeGiB: size}, {ID: "vol-b2", Type: GP3, SizeGiB: size}},
	}
}

// drive runs the plan to the end, one Next batch at a time, as a workflow would.
func drive(t *testing.T, p RollingPlan, s RollingState, limit int) []Step {
	t.Helper()
	var order []Step
	for i := 0; ; i++ {
		if i > limit {
			t.Fatal("plan does not finish")
		}
		batch := p.Next(s)
		if len(batch) == 0 {
			return order
		}
		if len(batch) > p.Parallel && batch[0].Vdev >= 0 {
			t.Fatalf("batch of %d exceeds parallel %d", len(batch), p.Parallel)
		}
		for _, st := range batch {
			if st.Kind == StepCreate {
				s.SetNewVolume(st.Slot, "new-"+st.OldVolumeID)
			}
			s.MarkDone(st.ID)
			order = append(order, st)
		}
	}
}

func indexOf(order []Step, id string) int {
	return slices.IndexFunc(order, func(s Step) bool { return s.ID == id })
}

func TestRollingPlanOrderingOldDeletedOnlyAfterResilverAndHealth(t *testing.T) {
	p, err := RollingReplacePlan(RollingInput{Vdevs: twoRaidz1(10), New: VolumeSpec{Type: GP3, SizeGiB: 20}, LUKS: true})
	if err != nil {
		t.Fatal(err)
	}
	order := drive(t, p, NewRollingState(), 1000)
	if order[0].Kind != StepScrub || order[len(order)-1].Kind != StepVerifyPool {
		t.Fatalf("scrub first, verify last: %s … %s", order[0].ID, order[len(order)-1].ID)
	}
	if got, want := len(order), 2+6*9; got != want {
		t.Fatalf("%d steps, want %d", got, want)
	}
	for _, slot := range []string{"v0/d0", "v0/d1", "v0/d2", "v1/d0", "v1/d1", "v1/d2"} {
		create := indexOf(order, slot+"/create-volume")
		attach := indexOf(order, slot+"/attach")
		open := indexOf(order, slot+"/luks-open")
		replace := indexOf(order, slot+"/zpool-replace")
		resilver := indexOf(order, slot+"/wait-resilver")
		healthy := indexOf(order, slot+"/verify-healthy")
		detach := indexOf(order, slot+"/detach-old")
		del := indexOf(order, slot+"/delete-old")
		if !(create < attach && attach < open && open < replace && replace < resilver && resilver < healthy && healthy < detach && detach < del) {
			t.Errorf("%s out of order: %d %d %d %d %d %d %d %d", slot, create, attach, open, replace, resilver, healthy, detach, del)
		}
	}
	// One device at a time per vdev: d1 starts only after d0 is deleted.
	if indexOf(order, "v0/d1/create-volume") < indexOf(order, "v0/d0/delete-old") {
		t.Error("vdev 0 worked on two devices at once")
	}
	// Parallel 1: vdev 1 starts after vdev 0 is finished.
	if indexOf(order, "v1/d0/create-volume") < indexOf(order, "v0/d2/delete-old") {
		t.Error("parallel=1 but vdevs overlapped")
	}
}

func TestRollingPlanParallelVdevs(t *testing.T) {
	p, err := RollingReplacePlan(RollingInput{Vdevs: twoRaidz1(10), New: VolumeSpec{Type: GP3, SizeGiB: 20}, ParallelVdevs: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := NewRollingState()
	s.MarkDone("pool/scrub")
	batch := p.Next(s)
	if len(batch) != 2 || batch[0].ID != "v0/d0/create-volume" || batch[1].ID != "v1/d0/create-volume" {
		t.Fatalf("first parallel batch: %v", ids(batch))
	}
	if strings.Contains(strings.Join(ids(drive(t, p, s, 1000)), " "), "luks") {
		t.Error("LUKS steps without LUKS")
	}
}

func TestRollingPlanResumesMidPlan(t *testing.T) {
	in := RollingInput{Vdevs: twoRaidz1(10), New: VolumeSpec{Type: GP3, SizeGiB: 20}}
	p, _ := RollingReplacePlan(in)
	// Crash while waiting for v0/d1's resilver: everything before is done.
	s := NewRollingState()
	all := p.Steps()
	stop := indexOf(all, "v0/d1/wait-resilver")
	for _, st := range all[:stop] {
		s.MarkDone(st.ID)
	}
	s.SetNewVolume("v0/d1", "vol-new1")
	// The workflow restarts with the same input and its recorded state.
	p2, _ := RollingReplacePlan(in)
	next := p2.Next(s)
	if len(next) != 1 || next[0].ID != "v0/d1/wait-resilver" || next[0].OldVolumeID != "vol-a1" || s.NewVolumes[next[0].Slot] != "vol-new1" {
		t.Fatalf("resume: %+v", next)
	}
	rest := drive(t, p2, s, 1000)
	if len(rest) != len(all)-stop {
		t.Fatalf("resume ran %d steps, want %d", len(rest), len(all)-stop)
	}
	for _, st := range rest {
		if indexOf(all[:stop], st.ID) >= 0 {
			t.Fatalf("redid %s", st.ID)
		}
	}
	// A lane that has begun continues before a fresh one starts, even with
	// parallel 1 and a state recorded under a different order.
	s = NewRollingState()
	s.MarkDone("pool/scrub")
	s.MarkDone("v1/d0/create-volume")
	if next := p2.Next(s); len(next) != 1 || next[0].ID != "v1/d0/attach" {
		t.Fatalf("begun lane first: %v", ids(next))
	}
}

func TestRollingPlanRefusesAndSkips(t *testing.T) {
	_, err := RollingReplacePlan(RollingInput{Vdevs: twoRaidz1(30), New: VolumeSpec{Type: GP3, SizeGiB: 20}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "new.volume_size_gib" {
		t.Fatalf("shrink: %v", err)
	}
	_, err = RollingReplacePlan(RollingInput{Vdevs: twoRaidz1(10), New: VolumeSpec{Type: GP2, SizeGiB: 20000}})
	if !errors.As(err, &fe) || fe.Field != "new.volume_size_gib" {
		t.Fatalf("beyond gp2 max: %v", err)
	}
	dup := twoRaidz1(10)
	dup[1][0].ID = "vol-a0"
	if _, err = RollingReplacePlan(RollingInput{Vdevs: dup, New: VolumeSpec{Type: GP3, SizeGiB: 20}}); err == nil {
		t.Fatal("duplicate volume accepted")
	}
	// Re-planned after vdev 0 was replaced: only vdev 1 has steps.
	v := twoRaidz1(10)
	for i := range v[0] {
		v[0][i].SizeGiB = 20
	}
	p, err := RollingReplacePlan(RollingInput{Vdevs: v, New: VolumeSpec{Type: GP3, SizeGiB: 20}})
	if err != nil || len(p.Lanes[0]) != 0 || len(p.Lanes[1]) != 3*7 {
		t.Fatalf("skip replaced: %v %d %d", err, len(p.Lanes[0]), len(p.Lanes[1]))
	}
	// Type change at the same size is a replace too.
	p, _ = RollingReplacePlan(RollingInput{Vdevs: twoRaidz1(500), New: VolumeSpec{Type: ST1, SizeGiB: 500}})
	if done, total := p.Progress(NewRollingState()); done != 0 || total != 2+6*7 {
		t.Fatalf("type change progress %d/%d", done, total)
	}
}

func ids(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.ID
	}
	return out
}
