package archive

import (
	"fmt"

	"zcloud/archive/archivetypes"
)

// PlanRestore returns the streams to receive, in order, to recreate the
// snapshot named target ("" = the newest archived snapshot): the full of
// the newest cycle holding target, then every incremental up to it, each
// checked to start where its parent ends.
func PlanRestore(m *Manifest, target string) ([]Stream, error) {
	ci, si := -1, -1
	for i := len(m.Cycles) - 1; i >= 0 && ci < 0; i-- {
		streams := m.Cycles[i].Streams
		for j := len(streams) - 1; j >= 0; j-- {
			if target == "" || streams[j].To.Name == target {
				ci, si = i, j
				break
			}
		}
	}
	if ci < 0 {
		if target == "" {
			return nil, fmt.Errorf("%w: %s has no archived streams", ErrNoSnapshot, m.Dataset)
		}
		return nil, fmt.Errorf("%w: %s@%s is in no cycle of the manifest", ErrNoSnapshot, m.Dataset, target)
	}
	c := m.Cycles[ci]
	byTo := map[uint64]Stream{}
	for _, s := range c.Streams[:si+1] {
		byTo[s.To.GUID] = s
	}
	// Walk back from the target through parents to the full.
	var rev []Stream
	cur := c.Streams[si]
	for {
		rev = append(rev, cur)
		if cur.Kind == archivetypes.Full {
			break
		}
		if len(rev) > len(c.Streams) {
			return nil, fmt.Errorf("%w: cycle %s has a loop at %s", ErrBrokenChain, c.ID, cur.ID)
		}
		parent, ok := byTo[cur.From.GUID]
		if !ok {
			return nil, fmt.Errorf("%w: %s (@%s→@%s) needs @%s (guid %d), which is not archived in cycle %s",
				ErrBrokenChain, cur.ID, cur.From.Name, cur.To.Name, cur.From.Name, cur.From.GUID, c.ID)
		}
		cur = parent
	}
	chain := make([]Stream, len(rev))
	for i, s := range rev {
		chain[len(rev)-1-i] = s
	}
	return chain, nil
}
