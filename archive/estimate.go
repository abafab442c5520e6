package archive

import (
	"fmt"
	"time"

	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
)

// VaultClass prices a restore from a legacy Glacier vault (vault objects
// are recorded with class GLACIER; pass VaultClass to Estimate for them).
const VaultClass objstore.Class = "GLACIER_VAULT"

// Price is the cost and delay of retrieving from one class at one tier.
type Price struct {
	PerGB            float64       // USD per GB (2^30 bytes) retrieved
	Per1000Req       float64       // USD per 1,000 retrieval requests (one per object)
	MinWait, MaxWait time.Duration // time until a restored object is readable; MinWait 0 = "up to MaxWait"
}

// Prices is the retrieval price table: AWS us-east-1 list prices as of
// 2025 (S3 pricing page, "Requests & data retrievals"; Glacier vault
// pricing page) and restore times from DESIGN.md. Check current prices
// before relying on the dollars; the table is a variable so deployments
// can update it.
var Prices = map[objstore.Class]map[objstore.Tier]Price{
	objstore.Glacier: {
		objstore.Expedited:    {PerGB: 0.03, Per1000Req: 10.00, MinWait: time.Minute, MaxWait: 5 * time.Minute},
		objstore.StandardTier: {PerGB: 0.01, Per1000Req: 0.05, MinWait: 3 * time.Hour, MaxWait: 5 * time.Hour},
		objstore.Bulk:         {PerGB: 0, Per1000Req: 0, MinWait: 5 * time.Hour, MaxWait: 12 * time.Hour},
	},
	objstore.DeepArchive: {
		objstore.StandardTier: {PerGB: 0.02, Per1000Req: 0.10, MaxWait: 12 * time.Hour},
		objstore.Bulk:         {PerGB: 0.0025, Per1000Req: 0.025, MaxWait: 48 * time.Hour},
	},
	// Immediately readable: "tier" does not apply; GETs are billed per request.
	objstore.GlacierIR: {
		objstore.Expedited:    {PerGB: 0.03, Per1000Req: 0.01},
		objstore.StandardTier: {PerGB: 0.03, Per1000Req: 0.01},
		objstore.Bulk:         {PerGB: 0.03, Per1000Req: 0.01},
	},
	objstore.Standard: {
		objstore.Expedited:    {Per1000Req: 0.0004},
		objstore.StandardTier: {Per1000Req: 0.0004},
		objstore.Bulk:         {Per1000Req: 0.0004},
	},
	VaultClass: {
		objstore.Expedited:    {PerGB: 0.03, Per1000Req: 10.00, MinWait: time.Minute, MaxWait: 5 * time.Minute},
		objstore.StandardTier: {PerGB: 0.01, Per1000Req: 0.05, MinWait: 3 * time.Hour, MaxWait: 5 * time.Hour},
		objstore.Bulk:         {PerGB: 0.0025, Per1000Req: 0.025, MinWait: 5 * time.Hour, MaxWait: 12 * time.Hour},
	},
}

// EgressPerGB is internet data transfer out (first 10 TB/month); restoring
// to an instance in the bucket's region pays nothing.
const EgressPerGB = 0.09

// Estimate prices restoring chain at tier. class "" uses each stream's own
// class; otherwise class overrides it (VaultClass for vault archives).
// Requests are counted one per object (one RestoreObject / retrieval job);
// a parity stream's part and parity objects each count.
func Estimate(chain []Stream, class objstore.Class, tier objstore.Tier) (archivetypes.RestoreEstimate, error) {
	e := archivetypes.RestoreEstimate{Class: class, Tier: tier}
	var gb float64
	for _, s := range chain {
		c := class
		if c == "" {
			c = s.Class
			if e.Class == "" {
				e.Class = c
			}
		}
		p, ok := Prices[c][tier]
		if !ok {
			return archivetypes.RestoreEstimate{}, fmt.Errorf("no %s retrieval for class %s", tier, c)
		}
		// Parity streams are retrieved whole, parity objects included (a
		// repair needs them in hand): parity costs its bytes and requests.
		stored := s.StoredSize + s.ParityBytes()
		objects := len(s.ObjectKeys())
		sgb := float64(stored) / (1 << 30)
		gb += sgb
		e.Objects += objects
		e.StoredBytes += stored
		e.ParityBytes += s.ParityBytes()
		e.RetrievalUSD += sgb*p.PerGB + float64(objects)*p.Per1000Req/1000
		e.MinWait = max(e.MinWait, p.MinWait)
		e.MaxWait = max(e.MaxWait, p.MaxWait)
	}
	e.EgressUSD = gb * EgressPerGB
	return e, nil
}

// EstimateTiers prices every tier the chain's classes offer, cheapest
// tier last, for a restore plan to show.
func EstimateTiers(chain []Stream, class objstore.Class) []archivetypes.RestoreEstimate {
	var out []archivetypes.RestoreEstimate
	for _, t := range []objstore.Tier{objstore.Expedited, objstore.StandardTier, objstore.Bulk} {
		if e, err := Estimate(chain, class, t); err == nil {
			out = append(out, e)
		}
	}
	return out
}
