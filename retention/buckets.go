package retention

// assignBuckets gives each kind's keepers their Bucket: per kind, the K most
// recent periods that hold a managed snapshot each keep one of them.
func assignBuckets(p Policy, c calendar, snaps []Snapshot, managed []int, decisions []Decision) {
	for _, k := range Kinds() {
		count := p.Count(k)
		if count <= 0 {
			continue
		}
		periods, keepers := keepersByPeriod(k, c, snaps, managed)
		for r := 0; r < len(periods) && r < count; r++ {
			b := Bucket{Kind: k, Label: periods[r].label, Rank: r + 1, Of: count}
			decisions[keepers[r]].Buckets = append(decisions[keepers[r]].Buckets, b)
		}
	}
}

// keepersByPeriod lists the periods of kind k holding a managed snapshot,
// newest first, with the index of the snapshot that keeps each: the newest
// in the period, or for midday the first at or after the midday hour.
func keepersByPeriod(k Kind, c calendar, snaps []Snapshot, managed []int) ([]period, []int) {
	var periods []period
	var keepers []int
	seen := map[int64]int{} // period key -> position; only looked up, never ranged
	for j := len(managed) - 1; j >= 0; j-- {
		i := managed[j]
		per, ok := c.periodOf(k, snaps[i].CreatedTime())
		if !ok {
			continue
		}
		if pos, dup := seen[per.key]; dup {
			if k == Midday {
				keepers[pos] = i // walking back in time: an earlier one wins
			}
			continue
		}
		seen[per.key] = len(periods)
		periods = append(periods, per)
		keepers = append(keepers, i)
	}
	return periods, keepers
}

func bucketReasons(bs []Bucket) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Reason())
	}
	return out
}
