package retention

import (
	"fmt"
	"sort"
)

// applyGuards adds the reasons no policy can override: zcloud holds,
// caller protections and foreign names. It returns warnings for protections
// that match no snapshot.
func applyGuards(protected []Protection, decisions []Decision) []string {
	byName := make(map[string]int, len(decisions))
	for i, d := range decisions {
		byName[d.Snapshot.Name] = i
	}
	prots := append([]Protection(nil), protected...)
	sort.SliceStable(prots, func(i, j int) bool {
		if prots[i].Name != prots[j].Name {
			return prots[i].Name < prots[j].Name
		}
		return prots[i].Reason < prots[j].Reason
	})
	for i := range decisions {
		if decisions[i].Snapshot.Held {
			decisions[i].Reasons = append(decisions[i].Reasons, ReasonHeld)
		}
	}
	var warnings []string
	for _, pr := range prots {
		i, ok := byName[pr.Name]
		if !ok {
			warnings = append(warnings, fmt.Sprintf("protected snapshot %s (%s) does not exist", pr.Name, pr.Reason))
			continue
		}
		reason := pr.Reason
		if reason == "" {
			reason = "protected"
		}
		decisions[i].Reasons = append(decisions[i].Reasons, reason)
	}
	for i := range decisions {
		if !decisions[i].Managed {
			decisions[i].Reasons = append(decisions[i].Reasons, ReasonForeign)
		}
	}
	return warnings
}
