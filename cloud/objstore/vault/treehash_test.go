package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// The vector is the one the AWS SDKs test their tree hash with: 5.5 MiB of
// the character '0'.
func TestTreeHashVector(t *testing.T) {
	data := bytes.Repeat([]byte("0"), 5767168)
	got := TreeHash(data)
	if h := hex.EncodeToString(got[:]); h != "154e26c78fd74d0c2c9b3cc4644191619dc4f2cd539ae2a74d5fd07957a3ee6a" {
		t.Fatalf("tree hash %s", h)
	}
}

func TestTreeHashSmallIsSHA256(t *testing.T) {
	for _, n := range []int{0, 1, MiB - 1, MiB} {
		data := bytes.Repeat([]byte{7}, n)
		if TreeHash(data) != sha256.Sum256(data) {
			t.Fatalf("%d bytes: tree hash of one chunk must equal its SHA-256", n)
		}
	}
}

// Combining per-part tree hashes must equal the tree hash of the whole,
// for every power-of-two part size and odd tails: that is what lets the
// multipart upload keep one hash per part.
func TestCombinePartTreeHashes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 13*MiB+12345)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	want := TreeHash(data)
	for _, part := range []int{MiB, 2 * MiB, 4 * MiB, 8 * MiB, 16 * MiB} {
		var hs [][32]byte
		for off := 0; off < len(data); off += part {
			hs = append(hs, TreeHash(data[off:min(off+part, len(data))]))
		}
		if CombineTreeHashes(hs) != want {
			t.Fatalf("part size %d MiB: combined part hashes differ from the whole", part/MiB)
		}
	}
}
