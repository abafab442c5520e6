package archive

import (
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"filippo.io/age"

	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
)

type genReader struct {
	n int64
	r *rand.ChaCha8
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	g.r.Read(p)
	g.n -= int64(len(p))
	return len(p), nil
}

// BenchmarkUpload is the archive pipeline into a local store on a
// generated stream (see bench/archive for the full comparison).
func BenchmarkUpload(b *testing.B) {
	const size = 512 << 20
	st, err := local.New(b.TempDir(), local.Options{PartSize: 16 << 20, Parallel: 2})
	if err != nil {
		b.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	b.SetBytes(size)
	for b.Loop() {
		_, err := Upload(context.Background(), UploadInput{Store: st, Key: "b/k", Source: &genReader{n: size, r: rand.NewChaCha8([32]byte{})},
			Recipients: []age.Recipient{id.Recipient()}, Class: objstore.Glacier})
		if err != nil {
			b.Fatal(err)
		}
	}
}
