package archive

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"zcloud/cloud/objstore/objstoretest"
	"zcloud/cloud/objstore/s3store"
)

// Cycle verification (VerifyHead) against moto S3 trusts S3's own SHA-256
// checksum, not zcloud's metadata: an object whose bytes were replaced by
// a same-sized upload without zcloud's metadata or tag (what an upload cut
// short before its tag, or a foreign hand, leaves) is caught.
func TestVerifyHeadUsesTheStoresOwnChecksum(t *testing.T) {
	b := s3Backend(t)
	st := b.store.(*s3store.Store)
	id := newIdentity(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		size int
	}{{"single request", 100 << 10}, {"multipart", 12 << 20}} {
		t.Run(c.name, func(t *testing.T) {
			s := upload(t, st, "p/ds/c1/"+strings.ReplaceAll(c.name, " ", "-")+".zfs.age", objstoretest.Data(4, c.size), id)
			info, err := st.Head(ctx, s.Key)
			if err != nil || info.StoreSHA256 == "" {
				t.Fatalf("S3 keeps no checksum of %s: %v", s.Key, err)
			}
			if probs := VerifyHead(ctx, st, []Stream{s}); len(probs) != 0 {
				t.Fatalf("intact object: %v", probs)
			}
			// Other bytes of the same size, no zcloud metadata: S3 computes
			// its checksum of the new bytes.
			key := aws.String(st.ObjectKey(s.Key))
			data := objstoretest.Data(5, int(s.StoredSize))
			if _, err := st.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(st.Bucket()), Key: key, Body: bytes.NewReader(data),
				ChecksumAlgorithm: types.ChecksumAlgorithmSha256}); err != nil {
				t.Fatal(err)
			}
			if info, _ := st.Head(ctx, s.Key); info.SHA256 != "" {
				t.Fatalf("the replacement still carries zcloud's checksum %s", info.SHA256)
			}
			probs := VerifyHead(ctx, st, []Stream{s})
			if len(probs) != 1 || !strings.Contains(probs[0].Err.Error(), "the store's own SHA-256 checksum") {
				t.Fatalf("replaced object: %v", probs)
			}
			t.Log(probs[0])
		})
	}
}
