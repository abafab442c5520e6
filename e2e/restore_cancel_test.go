package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/temporal"

	"zcloud/cloud/objstore/s3store"
	"zcloud/internal/testenv"
	"zcloud/workflows"
)

// A restore cancelled while it waits for the Glacier retrieval ends as
// cancelled, not failed, and creates nothing on the target. Its history
// holds both version markers of that path (retrieval-poll-retries and
// cancelled-run-stays-cancelled) and is what workflows/testdata keeps as
// restore-cancelled-waiting.json (ZCLOUD_RECORD_HISTORY=dir).
func TestRestoreCancelledWhileWaitingForRetrievalEndsCancelled(t *testing.T) {
	e := newEnv(t)
	w, moto := newGlacierWorld(t, e, "")
	if err := os.WriteFile(filepath.Join(w.keysDir, "owner"), []byte(w.owner.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.startWorker(w.cfg)
	w.round(t, 0)
	if _, _, err := w.archive(w.input()); err != nil {
		t.Fatal(err)
	}

	// moto steps a restore None -> IN_PROGRESS -> RESTORED when it reads
	// the status after `times` lookups of the object, and reports None as
	// restored. A poll reads the status twice (archive.StreamObjects' Head,
	// then RestoreStatus's) with up to two lookups (HeadObject, and
	// GetObjectTagging for a multipart object) in between; with times 3 the
	// first read moves it to IN_PROGRESS (the request made more than three
	// lookups) and the second finds it there. Once the workflow has seen
	// that poll, Glacier holds it (the next poll is 5 s later).
	archMotoRestores(t, moto, "manual", 3)
	t.Cleanup(func() { archMotoRestores(t, moto, "immediate", 0) })
	target := e.dst.Pool.String() + "/restored"
	in := workflows.RestoreInput{Dataset: w.ds.String(), TargetDataset: target, Identity: "owner", Tier: "Expedited",
		Days: 1, PollInterval: 5 * time.Second, HeartbeatTimeout: 10 * time.Second}
	run := e.archStart(w.queue, workflows.RestoreName, in)
	waitFor(t, 2*time.Minute, "the restore to wait for the retrieval after its first poll", func() bool {
		s, err := e.archQueryRestore(run.GetID())
		if err != nil || s.Phase != workflows.PhaseWaitingRetrieval || s.Retrieval == nil || s.Polls < 1 {
			return false
		}
		if s.Retrieval.Ready != 0 {
			t.Fatalf("objects readable at the first poll: %+v", s.Retrieval)
		}
		return true
	})
	archMotoRestores(t, moto, "manual", 1_000_000)

	if err := e.client.CancelWorkflow(e.ctx(10*time.Second), run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	var ce *temporal.CanceledError
	if err := run.Get(e.ctx(time.Minute), nil); !errors.As(err, &ce) {
		t.Fatalf("cancelled restore ended with %T %v, want a cancellation", err, err)
	}
	st, err := e.archQueryRestore(run.GetID())
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != workflows.PhaseCancelled || !strings.HasPrefix(st.Error, "retrieval: ") || len(st.Received) != 0 {
		t.Fatalf("status after the cancel: phase %q error %q received %d", st.Phase, st.Error, len(st.Received))
	}
	if _, err := os.Stat("/" + target); err == nil {
		t.Fatal("a cancelled restore created the target")
	}
	e.replayHistory(run.GetID(), "restore-cancelled-waiting")
}

// newGlacierWorld is an archive world whose store is a new moto S3 bucket
// of class GLACIER; extra adds store fields (flow style, leading comma).
func newGlacierWorld(t *testing.T, e *env, extra string) (*archiveWorld, *testenv.Moto) {
	moto := testenv.SharedMoto(t)
	bucket := testenv.RandomName("zcloud-arch-")
	c, err := s3store.NewClient(context.Background(), moto.Region, moto.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	store := fmt.Sprintf("kind: s3, bucket: %s, endpoint: %q, region: %s, class: GLACIER%s", bucket, moto.Endpoint, moto.Region, extra)
	return newArchiveWorld(t, e, store), moto
}
