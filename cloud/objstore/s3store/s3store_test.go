package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/objstoretest"
	"zcloud/cloud/objstore/s3store"
	"zcloud/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// testPart is the smallest part moto accepts (AWS's 5 MiB minimum).
const testPart = 5 << 20

// NewTestStore returns a Store on a fresh bucket in the shared moto.
func newTestStore(t *testing.T) (*s3store.Store, *testenv.Moto) {
	moto := testenv.SharedMoto(t)
	ctx := context.Background()
	c, err := s3store.NewClient(ctx, moto.Region, moto.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	bucket := testenv.RandomName("zcloud-test-")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	return s3store.New(c, bucket, s3store.Options{Prefix: "pfx/", PartSize: testPart, Parallel: 3}), moto
}

func TestConformance(t *testing.T) {
	s, moto := newTestStore(t)
	objstoretest.Run(t, objstoretest.Harness{
		Store:     s,
		PartSize:  testPart,
		ColdClass: objstore.Glacier,
		HoldRestores: func(t *testing.T) {
			manualRestores(t, moto, 5) // each HEAD is a poll
		},
		// Replace the bytes but keep zcloud's metadata (the recorded
		// SHA-256), as bit rot or a tampering hand would.
		Overwrite: func(t *testing.T, key string, data []byte) {
			ctx := context.Background()
			head, err := s.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.Bucket()), Key: aws.String(s.ObjectKey(key))})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Client().PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(s.Bucket()), Key: aws.String(s.ObjectKey(key)),
				Body: bytes.NewReader(data), Metadata: head.Metadata,
			})
			if err != nil {
				t.Fatal(err)
			}
		},
	})
}

// manualRestores is testenv's Moto.ManualRestores, accepting the 201 this
// moto version answers with (testenv insists on 200).
func manualRestores(t *testing.T, m *testenv.Moto, times int) {
	t.Helper()
	body := fmt.Sprintf(`{"model_name":"s3::keyrestore","transition":{"progression":"manual","times":%d}}`, times)
	resp, err := http.Post(m.Endpoint+"/moto-api/state-manager/set-transition", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("moto set-transition: %s", resp.Status)
	}
}

// GLACIER_IR is a cold class that needs no restore.
func TestGlacierIRReadableAtOnce(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	data := objstoretest.Data(1, 1000)
	if _, err := s.Put(ctx, "ir/obj", bytes.NewReader(data), int64(len(data)), objstore.PutOptions{Class: objstore.GlacierIR}); err != nil {
		t.Fatal(err)
	}
	st, err := s.RestoreStatus(ctx, "ir/obj")
	if err != nil || !st.Ready {
		t.Fatalf("GLACIER_IR restore status: %+v %v", st, err)
	}
	if err := s.RequestRestore(ctx, "ir/obj", objstore.Bulk, 1); err != nil {
		t.Fatalf("restore request for GLACIER_IR must be a no-op: %v", err)
	}
	rc, err := s.Get(ctx, "ir/obj", objstore.Range{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %v", err)
	}
}

// A multipart upload that fails midway is aborted: no object, no parts
// left billing, and the retry writes the one object.
func TestFailedMultipartIsAborted(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	data := objstoretest.Data(2, 3*testPart)
	failing := io.MultiReader(bytes.NewReader(data[:2*testPart+100]), errReader{})
	if _, err := s.Put(ctx, "mp/fail", failing, -1, objstore.PutOptions{Class: objstore.Glacier}); err == nil {
		t.Fatal("put of a failing stream succeeded")
	}
	ups, err := s.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.Bucket())})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left after a failure", len(ups.Uploads))
	}
	if _, err := s.Head(ctx, "mp/fail"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("object visible after a failed upload: %v", err)
	}
	if _, err := s.Put(ctx, "mp/fail", bytes.NewReader(data), -1, objstore.PutOptions{Class: objstore.Glacier}); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.List(ctx, "mp/"); len(l) != 1 {
		t.Fatalf("after retry: %d objects", len(l))
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("zfs send died (test)") }
