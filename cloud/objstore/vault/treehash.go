package vault

import "crypto/sha256"

// MiB is the leaf size of the Glacier SHA-256 tree hash.
const MiB = 1 << 20

// TreeHash computes Glacier's SHA-256 tree hash of data: SHA-256 of each
// 1 MiB chunk, then hashes of concatenated adjacent pairs, level by level,
// an odd node carried up unchanged, until one hash remains
// (https://docs.aws.amazon.com/amazonglacier/latest/dev/checksum-calculations.html).
// Empty data hashes like one empty chunk.
func TreeHash(data []byte) [32]byte {
	var leaves [][32]byte
	for off := 0; off < len(data) || off == 0; off += MiB {
		leaves = append(leaves, sha256.Sum256(data[off:min(off+MiB, len(data))]))
		if len(data) == 0 {
			break
		}
	}
	return CombineTreeHashes(leaves)
}

// CombineTreeHashes reduces adjacent node hashes to their tree hash. Given
// the tree hashes of consecutive parts that are each 1 MiB × 2^k long
// (all but the last, which may be shorter), it yields the tree hash of the
// whole archive: such parts are exactly subtrees of the whole tree, which is
// why Glacier requires power-of-two part sizes. An upload therefore keeps
// one hash per part, never one per MiB.
func CombineTreeHashes(h [][32]byte) [32]byte {
	if len(h) == 0 {
		return sha256.Sum256(nil)
	}
	level := append([][32]byte(nil), h...)
	for len(level) > 1 {
		next := level[:0]
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
				continue
			}
			var pair [64]byte
			copy(pair[:32], level[i][:])
			copy(pair[32:], level[i+1][:])
			next = append(next, sha256.Sum256(pair[:]))
		}
		level = next
	}
	return level[0]
}
