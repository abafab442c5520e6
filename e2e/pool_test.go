package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"zcloud/activities"
	"zcloud/internal/testenv"
	"zcloud/workflows"
)

// checkCreated asserts moto holds exactly the pool's width × vdevs volumes,
// each tagged with the pool and a distinct slot, attached to the instance.
func (pe *poolEnv) checkPoolVolumes(vdevs, width int, sizeGiB int32) map[string]string {
	pe.t.Helper()
	vols := pe.seam.poolVolumes(pe.pool)
	if len(vols) != vdevs*width {
		pe.t.Fatalf("moto has %d volumes tagged %s, want %d", len(vols), pe.pool, vdevs*width)
	}
	slots := map[string]string{}
	for _, v := range vols {
		id := aws.ToString(v.VolumeId)
		slot := tagOf(v, activities.TagSlot)
		if slot == "" || slots[slot] != "" {
			pe.t.Fatalf("volume %s: slot tag %q missing or duplicate", id, slot)
		}
		slots[slot] = id
		if tagOf(v, "project") != "zcloud-e2e" {
			pe.t.Errorf("volume %s lacks the configured tag", id)
		}
		if aws.ToInt32(v.Size) != sizeGiB {
			pe.t.Errorf("volume %s is %d GiB, want %d", id, aws.ToInt32(v.Size), sizeGiB)
		}
		if len(v.Attachments) != 1 || aws.ToString(v.Attachments[0].InstanceId) != pe.instance {
			pe.t.Errorf("volume %s attachments %v, want attached to %s", id, v.Attachments, pe.instance)
		}
	}
	for vd := 0; vd < vdevs; vd++ {
		for d := 0; d < width; d++ {
			if slots[fmt.Sprintf("v%d/d%d", vd, d)] == "" {
				pe.t.Errorf("no volume for slot v%d/d%d", vd, d)
			}
		}
	}
	return slots
}

// checkDeletesAfterResilver asserts each old volume was detached and
// deleted only when the pool no longer used it, no resilver ran and the
// pool was healthy (the seam snapshots zpool status as each call arrives),
// and only after its replacement had been attached.
func (pe *poolEnv) checkDeletesAfterResilver(old map[string]string, repl map[string]string) {
	pe.t.Helper()
	events := pe.seam.eventList()
	at := func(action, vol string) (ebsEvent, int) {
		for i, e := range events {
			if e.Action == action && e.VolumeID == vol {
				return e, i
			}
		}
		return ebsEvent{}, -1
	}
	for slot, vol := range old {
		newVol := repl[slot]
		_, attachIdx := at("AttachVolume", newVol)
		det, detIdx := at("DetachVolume", vol)
		del, delIdx := at("DeleteVolume", vol)
		if attachIdx < 0 || detIdx < 0 || delIdx < 0 {
			pe.t.Errorf("slot %s: attach new %s at %d, detach old %s at %d, delete at %d: missing calls", slot, newVol, attachIdx, vol, detIdx, delIdx)
			continue
		}
		if !(attachIdx < detIdx && detIdx < delIdx) {
			pe.t.Errorf("slot %s: order attach-new %d, detach-old %d, delete-old %d", slot, attachIdx, detIdx, delIdx)
		}
		for _, e := range []ebsEvent{det, del} {
			if e.InPool || e.Resilvering || !e.Healthy {
				pe.t.Errorf("slot %s: %s %s while in pool=%t resilvering=%t healthy=%t:\n%s", slot, e.Action, vol, e.InPool, e.Resilvering, e.Healthy, e.Status)
			}
		}
		if pe.seam.volumeExists(vol) {
			pe.t.Errorf("old volume %s (slot %s) still exists", vol, slot)
		}
		pe.t.Logf("slot %s: %s replaced by %s; attach-new %s, detach-old %s, delete-old %s", slot, vol, newVol,
			events[attachIdx].At.Format("15:04:05.000"), det.At.Format("15:04:05.000"), del.At.Format("15:04:05.000"))
	}
}

func (pe *poolEnv) checkHealthy() {
	pe.t.Helper()
	st, raw, err := localPoolStatus(pe.pool)
	if err != nil {
		pe.t.Fatal(err)
	}
	if !st.Healthy() {
		pe.t.Fatalf("pool not healthy:\n%s", raw)
	}
}

func TestPoolCreateGrowByRollingReplaceAndDestroy(t *testing.T) {
	pe := newPoolEnv(t, poolOpts{vdevs: 2, width: 3, redundancy: "raidz1", sizeGiB: 1, parallel: 2})
	pe.startWorker(pe.cfg)

	begin := time.Now()
	create := pe.start(workflows.PoolCreateName, workflows.PoolInput{Pool: pe.pool})
	var res workflows.PoolResult
	if err := create.Get(pe.ctx(3*time.Minute), &res); err != nil {
		t.Fatalf("%s: %v", workflows.PoolCreateName, err)
	}
	pe.replayHistory(create.GetID(), "pool-create")
	t.Logf("PoolCreate: %d steps in %.1fs", res.Steps, time.Since(begin).Seconds())
	old := pe.checkPoolVolumes(2, 3, 1)
	if len(res.Volumes) != 6 {
		t.Fatalf("result volumes %v", res.Volumes)
	}
	// Created and exported: import it like the daily session would.
	if out, err := zpoolList(pe.pool); err == nil {
		t.Fatalf("pool still imported after create: %s", out)
	}
	pe.importPool()
	pe.checkHealthy()
	testenv.MustZFS(t, "zfs", "create", pe.pool+"/data")
	dir := "/" + pe.pool + "/data"
	writeTree(t, dir, 11, 24, 4<<20)
	sums := treeSums(t, dir)
	sizeBefore := poolSize(t, pe.pool)

	begin = time.Now()
	run := pe.start(workflows.PoolGrowName, workflows.PoolGrowInput{Pool: pe.pool, Mode: workflows.GrowRollingReplace, SizeGiB: 2})
	var grow workflows.PoolResult
	if err := run.Get(pe.ctx(5*time.Minute), &grow); err != nil {
		t.Fatal(err)
	}
	t.Logf("PoolGrow rolling-replace (2 vdevs in parallel): %d steps in %.1fs", grow.Steps, time.Since(begin).Seconds())
	st, err := pe.status(run)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != "done" || len(st.Done) != len(st.Plan) || st.Progress != fmt.Sprintf("%d/%d steps", len(st.Plan), len(st.Plan)) {
		t.Fatalf("status after grow: phase %q progress %q (%d of %d)", st.Phase, st.Progress, len(st.Done), len(st.Plan))
	}
	if st.Scrub == nil || !st.Scrub.Clean() {
		t.Fatalf("scrub before replacing: %+v", st.Scrub)
	}
	pe.replayHistory(run.GetID(), "pool-grow-rolling-replace")
	repl := pe.checkPoolVolumes(2, 3, 2)
	for slot, v := range repl {
		if old[slot] == v {
			t.Errorf("slot %s still has its old volume %s", slot, v)
		}
	}
	pe.checkDeletesAfterResilver(old, repl)
	pe.checkHealthy()
	sizeAfter := poolSize(t, pe.pool)
	if sizeAfter <= sizeBefore*3/2 {
		t.Fatalf("pool size %d -> %d: did not grow", sizeBefore, sizeAfter)
	}
	if grow.SizeAfter != sizeAfter {
		t.Errorf("workflow reports size %d, zpool says %d", grow.SizeAfter, sizeAfter)
	}
	t.Logf("pool size %d MiB -> %d MiB", sizeBefore>>20, sizeAfter>>20)
	after := treeSums(t, dir)
	if len(after) != len(sums) {
		t.Fatalf("%d files before, %d after", len(sums), len(after))
	}
	for k, v := range sums {
		if after[k] != v {
			t.Fatalf("%s changed", k)
		}
	}
	if n := len(pe.seam.createdVolumes()); n != 12 {
		t.Errorf("%d CreateVolume calls, want 12", n)
	}

	// Destroy: refused without the confirmation; leaves other pools' volumes.
	other, err := pe.seam.api.CreateVolume(pe.ctx(time.Minute), &sdk.CreateVolumeInput{AvailabilityZone: aws.String(pe.az), Size: aws.Int32(1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{{Key: aws.String(activities.TagPool), Value: aws.String(pe.pool + "x")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	bad := pe.start(workflows.PoolDestroyName, workflows.PoolDestroyInput{Pool: pe.pool, Confirm: "yes"})
	if err := bad.Get(pe.ctx(time.Minute), nil); err == nil || !strings.Contains(err.Error(), "confirmation") {
		t.Fatalf("destroy without confirmation: %v", err)
	}
	if len(pe.seam.poolVolumes(pe.pool)) != 6 {
		t.Fatal("an unconfirmed destroy deleted volumes")
	}
	des := pe.run(workflows.PoolDestroyName, workflows.PoolDestroyInput{Pool: pe.pool, Confirm: pe.pool}, 2*time.Minute)
	if des.Destroyed == nil || len(des.Destroyed.Deleted) != 6 {
		t.Fatalf("destroy: %+v", des.Destroyed)
	}
	if n := len(pe.seam.poolVolumes(pe.pool)); n != 0 {
		t.Fatalf("%d volumes left after destroy", n)
	}
	for _, v := range repl {
		if !slices.Contains(des.Destroyed.Deleted, v) {
			t.Errorf("destroy did not report %s", v)
		}
	}
	if !pe.seam.volumeExists(aws.ToString(other.VolumeId)) {
		t.Fatal("destroy deleted a volume of another pool")
	}
	if out, err := zpoolList(pe.pool); err == nil {
		t.Fatalf("pool still there after destroy: %s", out)
	}
}
