package objstore

// PartLimits are a backend's multipart rules.
type PartLimits struct {
	Min, Max int64 // part size bounds (the last part may be smaller than Min)
	MaxParts int
	// PowerOfTwoMiB requires part sizes of 1 MiB × 2^n (Glacier vaults).
	PowerOfTwoMiB bool
}

// S3 and Glacier vault multipart rules.
var (
	S3Limits    = PartLimits{Min: 5 << 20, Max: 5 << 30, MaxParts: 10000}
	VaultLimits = PartLimits{Min: 1 << 20, Max: 4 << 30, MaxParts: 10000, PowerOfTwoMiB: true}
)

// DefaultUnknownSize is what a stream of unknown, unhinted length is
// assumed to be when choosing a part size. Backends that can grow the part
// size during an upload (S3) still fit larger streams.
const DefaultUnknownSize = 100 << 30

// Headroom multiplies the expected size when choosing a part size, because
// the expected size of a zfs send stream is an estimate.
const Headroom = 2

// ChoosePartSize picks the part size for a stream expected to be about
// expected bytes (<= 0: unknown): the smallest size >= preferred, within
// the limits, such that Headroom × expected fits in MaxParts parts. Memory
// used by an upload is parallel × part size, so small parts are preferred.
func ChoosePartSize(expected, preferred int64, l PartLimits) int64 {
	if expected <= 0 {
		expected = DefaultUnknownSize
	}
	need := (expected*Headroom + int64(l.MaxParts) - 1) / int64(l.MaxParts)
	size := max(preferred, need, l.Min)
	const mib = 1 << 20
	if l.PowerOfTwoMiB {
		p := int64(mib)
		for p < size {
			p *= 2
		}
		size = p
	} else {
		size = (size + mib - 1) / mib * mib
	}
	return min(size, l.Max)
}
