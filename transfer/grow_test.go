package transfer

import (
	"testing"
	"time"
)

// Automatic streams add a lane only while throughput grows and the lanes
// wait on the network; lanes waiting on the reader (a CPU- or input-bound
// path such as loopback) get no more company, however the rate moves.
func TestGrowDecisionAddsLanesOnlyWhenNetworkBound(t *testing.T) {
	const s = time.Second
	for _, c := range []struct {
		name      string
		best      float64
		sample    growSample
		grew, add bool
	}{
		{"network-bound and growing", 100, growSample{rate: 120, netWait: 3 * s, readerWait: s}, true, true},
		{"first interval, network-bound", 0, growSample{rate: 50, netWait: 2 * s, readerWait: 0}, true, true},
		{"CPU-bound and growing", 100, growSample{rate: 120, netWait: s, readerWait: 3 * s}, true, false},
		{"CPU-bound from the start", 0, growSample{rate: 50, netWait: 0, readerWait: 4 * s}, true, false},
		{"network-bound, flat", 100, growSample{rate: 105, netWait: 3 * s, readerWait: s}, false, false},
		{"network-bound, falling", 100, growSample{rate: 80, netWait: 3 * s, readerWait: s}, false, false},
		{"even split is not network-bound", 100, growSample{rate: 200, netWait: s, readerWait: s}, true, false},
	} {
		grew, add := growDecision(c.best, c.sample)
		if grew != c.grew || add != c.add {
			t.Errorf("%s: grew %v, add %v; want grew %v, add %v", c.name, grew, add, c.grew, c.add)
		}
	}
}
