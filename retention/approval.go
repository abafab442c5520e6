package retention

import "fmt"

// NeedsApproval reports whether the plan destroys more managed snapshots than
// maxCount, or more than maxPercent of the dataset's managed snapshots, and
// explains either way. Equal to a limit is within it. A negative limit is
// switched off; a zero limit makes every destroy need approval.
func NeedsApproval(plan PrunePlan, maxCount int, maxPercent float64) (bool, string) {
	managed, destroys := plan.counts()
	if destroys == 0 {
		return false, fmt.Sprintf("destroys none of %d zcloud snapshots", managed)
	}
	percent := 100 * float64(destroys) / float64(managed)
	summary := fmt.Sprintf("destroys %d of %d zcloud snapshots (%.1f%%)", destroys, managed, percent)
	overCount := maxCount >= 0 && destroys > maxCount
	// Compare cross-multiplied so 2 of 10 against 20% is exactly equal, not a rounding error.
	overPercent := maxPercent >= 0 && float64(destroys)*100 > maxPercent*float64(managed)
	switch {
	case overCount && overPercent:
		return true, fmt.Sprintf("%s: more than %d snapshots and more than %g%%", summary, maxCount, maxPercent)
	case overCount:
		return true, fmt.Sprintf("%s: more than %d snapshots", summary, maxCount)
	case overPercent:
		return true, fmt.Sprintf("%s: more than %g%%", summary, maxPercent)
	}
	return false, summary + ": within limits"
}

// counts returns how many snapshots the policy governs and how many the plan destroys.
func (p PrunePlan) counts() (managed, destroys int) {
	for _, d := range p.Decisions {
		if d.Managed {
			managed++
		}
		if d.Action == Destroy {
			destroys++
		}
	}
	return managed, destroys
}

// ToDestroy returns the names of the snapshots the plan destroys, oldest first.
func (p PrunePlan) ToDestroy() []string {
	var names []string
	for _, d := range p.Decisions {
		if d.Action == Destroy {
			names = append(names, d.Snapshot.Name)
		}
	}
	return names
}
