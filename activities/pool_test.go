package activities

import (
	"testing"
	"time"

	"zcloud/poolplan"
)

func TestVolumeIDFromDevice(t *testing.T) {
	for in, want := range map[string]string{
		"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0":       "vol-0123456789abcdef0",
		"nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0-part1":                 "vol-0123456789abcdef0",
		"/tmp/x/by-id/nvme-Amazon_Elastic_Block_Store_vol1234abcd":                   "vol-1234abcd",
		"/dev/mapper/zc-vol0123456789abcdef0":                                        "vol-0123456789abcdef0",
		"zc-vol0abc":                                                                 "vol-0abc",
		"/dev/sdf":                                                                   "",
		"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_volXYZ":                     "",
		"/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1234567890ABCDEF0": "",
	} {
		got, ok := VolumeIDFromDevice(in)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %t, want %q", in, got, ok, want)
		}
	}
}

func TestModificationTagRoundTripAndMerge(t *testing.T) {
	t0 := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	var ms []poolplan.Modification
	for i := 0; i < 10; i++ {
		ms = append(ms, poolplan.Modification{VolumeID: "vol-1", Start: t0.Add(time.Duration(i) * time.Hour), State: poolplan.ModCompleted, TargetSizeGiB: int64(10 + i)})
	}
	tag := formatModTag(ms)
	if len(tag) > 256 {
		t.Fatalf("tag value %d characters, EC2 allows 256", len(tag))
	}
	back := parseModTag("vol-1", tag)
	if len(back) != maxModTagEntries || !back[len(back)-1].Start.Equal(ms[9].Start) || back[0].TargetSizeGiB != 12 {
		t.Fatalf("round trip kept %d newest: %+v", len(back), back)
	}
	// EBS's report of the latest (a few seconds off the workflow's clock) updates its state, not a second entry.
	ebs := poolplan.Modification{VolumeID: "vol-1", Start: ms[9].Start.Add(3 * time.Second), State: poolplan.ModOptimizing, TargetSizeGiB: 19}
	merged := mergeModifications(back, []poolplan.Modification{ebs})
	if len(merged) != len(back) || merged[len(merged)-1].State != poolplan.ModOptimizing {
		t.Fatalf("merge: %+v", merged)
	}
	// A modification the tag missed (crash before tagging) is added.
	lost := poolplan.Modification{VolumeID: "vol-1", Start: t0.Add(20 * time.Hour), State: poolplan.ModModifying, TargetSizeGiB: 30}
	if merged = mergeModifications(back, []poolplan.Modification{lost}); len(merged) != len(back)+1 {
		t.Fatalf("lost modification not merged: %d", len(merged))
	}
	if rc := poolplan.CheckModificationRate("vol-1", merged, t0.Add(21*time.Hour)); rc.Allowed {
		t.Fatal("a modifying volume may be modified again")
	}
}
