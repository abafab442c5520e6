package retention

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// String renders the plan as the table `zcloud policy plan DATASET` prints.
func (p PrunePlan) String() string {
	var b strings.Builder
	managed, destroys := p.counts()
	fmt.Fprintf(&b, "plan at %s (%s): keep %d, destroy %d of %d zcloud snapshots\n",
		p.Now.UTC().Format("2006-01-02 15:04:05Z"), p.TimeZone, len(p.Decisions)-destroys, destroys, managed)
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SNAPSHOT\tCREATED (LOCAL)\tACTION\tREASONS")
	for _, d := range p.Decisions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Snapshot.Name, d.CreatedLocal, d.Action, strings.Join(d.Reasons, "; "))
	}
	tw.Flush()
	return b.String()
}
