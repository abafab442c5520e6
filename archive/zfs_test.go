package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
	"zcloud/cloud/objstore/objstoretest"
	"zcloud/cloud/objstore/s3store"
	"zcloud/internal/testenv"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// backend is a store under test plus a way to damage one of its objects.
type backend struct {
	store   objstore.Store
	class   objstore.Class
	corrupt func(t *testing.T, s Stream)
	before  func(t *testing.T) // before requesting restores
}

func localBackend(t *testing.T) backend {
	st, err := local.New(t.TempDir(), local.Options{PartSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return backend{store: st, class: objstore.Glacier, corrupt: func(t *testing.T, s Stream) {
		flipByte(t, st, s.Key, s.Parts[0].Size/2)
	}}
}

func s3Backend(t *testing.T) backend {
	moto := testenv.SharedMoto(t)
	ctx := context.Background()
	c, err := s3store.NewClient(ctx, moto.Region, moto.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	bucket := testenv.RandomName("zcloud-arch-")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	st := s3store.New(c, bucket, s3store.Options{PartSize: 5 << 20, Parallel: 2})
	return backend{
		store: st, class: objstore.Glacier,
		// Overwrite the object with one flipped byte (bit rot, a bad hand).
		corrupt: func(t *testing.T, s Stream) {
			key := aws.String(st.ObjectKey(s.Key))
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			b[len(b)/3] ^= 1
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: key, Body: bytes.NewReader(b), Metadata: out.Metadata}); err != nil {
				t.Fatal(err)
			}
		},
		// Restores stay in progress for a few polls, so the test really waits.
		before: func(t *testing.T) {
			body := `{"model_name":"s3::keyrestore","transition":{"progression":"manual","times":3}}`
			resp, err := http.Post(moto.Endpoint+"/moto-api/state-manager/set-transition", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		},
	}
}

func TestZFSArchiveAndRestore(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) backend{"local": localBackend, "s3": s3Backend} {
		t.Run(name, func(t *testing.T) { zfsRoundTrip(t, mk(t)) })
	}
}

// zfsRoundTrip archives a full and 3 incrementals of a real zfs-fuse
// dataset, destroys it, restores from the store alone (a fresh manifest
// load, only the owner's key) into a new pool, and compares files; then it
// damages the full and checks the restore stops before zfs receive starts.
func zfsRoundTrip(t *testing.T, b backend) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	runner := zfsexec.NewLocal(nil)
	owner, host := newIdentity(t), newIdentity(t)
	const prefix = "zcloud"

	src := newPool(t, "zasrc")
	ds, _ := src.Root().Child("data")
	testenv.MustZFS(t, "zfs", "create", ds.String())
	mnt := src.Mountpoint(ds)

	m := NewManifest(ds)
	cycle := CycleID(time.Now())
	var prev archivetypes.SnapRef
	for i := 0; i < 4; i++ {
		changeFiles(t, mnt, i)
		snap, _ := ds.Snapshot(fmt.Sprintf("s%d", i))
		testenv.MustZFS(t, "zfs", "snapshot", snap.String())
		to := archivetypes.SnapRef{Name: snap.Name(), GUID: guid(t, snap.String())}
		kind, argv := archivetypes.Full, []string{"zfs", "send", snap.String()}
		if i > 0 {
			kind, argv = archivetypes.Incremental, []string{"zfs", "send", "-i", "@" + prev.Name, snap.String()}
		}
		key := StreamKey(prefix, ds, cycle, StreamID(kind, prev.GUID, to.GUID))
		srcR := CommandReader(ctx, runner, argv)
		res, err := Upload(ctx, UploadInput{Store: b.store, Key: key, Source: srcR, Recipients: []age.Recipient{owner.Recipient()}, Class: b.class})
		srcR.Close()
		if err != nil {
			t.Fatalf("archive %s: %v", snap, err)
		}
		if err := m.AddStream(NewStream(kind, prev, to, cycle, false, res, time.Now())); err != nil {
			t.Fatal(err)
		}
		if err := SaveManifest(ctx, b.store, prefix, m, time.Now(), owner.Recipient(), host.Recipient()); err != nil {
			t.Fatal(err)
		}
		prev = to
	}
	want := fileSums(t, mnt)
	zfsRetry(t, "zfs", "destroy", "-r", "-f", ds.String())

	// Restore with nothing but the store and the owner's key.
	m2, err := LoadManifest(ctx, b.store, prefix, ds, owner)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := PlanRestore(m2, "")
	if err != nil || len(chain) != 4 {
		t.Fatalf("plan: %v (%d streams)", err, len(chain))
	}
	for _, e := range EstimateTiers(chain, "") {
		t.Log(e)
	}
	if b.before != nil {
		b.before(t)
	}
	if err := requestRestores(ctx, b.store, chain, objstore.Expedited, 1); err != nil {
		t.Fatal(err)
	}
	for polls := 0; ; polls++ {
		n, err := restoresReady(ctx, b.store, chain)
		if err != nil {
			t.Fatal(err)
		}
		if n == len(chain) {
			t.Logf("all %d streams readable after %d polls", n, polls)
			break
		}
		if polls > 60 {
			t.Fatalf("%d of %d streams readable", n, len(chain))
		}
		time.Sleep(200 * time.Millisecond)
	}
	dst := newPool(t, "zadst")
	target, _ := dst.Root().Child("restored")
	for _, s := range chain {
		var started bool
		if err := receiveHook(ctx, t, runner, b.store, s, owner, target, &started); err != nil {
			t.Fatalf("restore %s: %v", s.ID, err)
		}
	}
	if got := fileSums(t, dst.Mountpoint(target)); !equalSums(got, want) {
		t.Fatalf("restored files differ:\n got %v\nwant %v", got, want)
	}

	// A damaged full: the restore names the object and no zfs receive runs.
	b.corrupt(t, chain[0])
	target2, _ := dst.Root().Child("again")
	started := false
	err = receiveHook(ctx, t, runner, b.store, chain[0], owner, target2, &started)
	var ce *objstore.CorruptError
	if !errors.As(err, &ce) || ce.Key != chain[0].Key {
		t.Fatalf("restore of a damaged object: %v", err)
	}
	t.Log(err)
	if started {
		t.Fatal("zfs receive was started for a damaged stream")
	}
	if out, _ := runner.Run(ctx, zfsexec.Cmd{Argv: []string{"zfs", "list", target2.String()}}); len(out.Stdout) != 0 {
		t.Fatalf("%s exists after a refused restore", target2)
	}
}

// receiveHook restores one stream into `zfs receive -F target`, started
// only when verified bytes are ready.
func receiveHook(ctx context.Context, t *testing.T, r zfsexec.Runner, st objstore.Store, s Stream, id age.Identity, target zfsname.Dataset, started *bool) error {
	var cw *CmdWriter
	w := OpenOnWrite(func() (io.WriteCloser, error) {
		*started = true
		cw = CommandWriter(ctx, r, []string{"zfs", "receive", "-F", target.String()})
		return cw, nil
	})
	_, err := Restore(ctx, RestoreInput{Store: st, Stream: s, Identities: []age.Identity{id}, SpoolDir: t.TempDir()}, w)
	if err != nil {
		if cw != nil {
			cw.Abort()
		}
		return err
	}
	return w.Close()
}

func guid(t *testing.T, snap string) uint64 {
	out := strings.TrimSpace(testenv.MustZFS(t, "zfs", "get", "-Hp", "-o", "value", "guid", snap))
	g, err := strconv.ParseUint(out, 10, 64)
	if err != nil {
		t.Fatalf("guid of %s: %q", snap, out)
	}
	return g
}

// changeFiles makes round i's changes: new files, a rewrite, a deletion.
func changeFiles(t *testing.T, dir string, i int) {
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("round%d/big.bin", i), objstoretest.Data(uint64(100+i), 1<<20+i*7919))
	write(fmt.Sprintf("round%d/small.txt", i), []byte(strings.Repeat(fmt.Sprintf("round %d\n", i), 50)))
	if i > 0 {
		write("round0/small.txt", []byte(fmt.Sprintf("rewritten in round %d\n", i)))
	}
	if i == 2 {
		os.Remove(filepath.Join(dir, "round1/big.bin"))
	}
}

func fileSums(t *testing.T, dir string) map[string]string {
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		sums[rel] = hex.EncodeToString(s[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func equalSums(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// newPool is testenv.NewPool plus a cleanup that retries the destroy:
// zfs-fuse reports "busy" for a moment after a dataset was read.
func newPool(t *testing.T, prefix string) *testenv.TestPool {
	p := testenv.NewPool(t, prefix, 1, 128, "")
	t.Cleanup(func() { zfsRetry(t, "zpool", "destroy", "-f", p.Pool.String()) })
	return p
}

// zfsRetry runs a zfs/zpool command, retrying while zfs-fuse says busy.
func zfsRetry(t *testing.T, argv ...string) {
	var err error
	for i := 0; i < 20; i++ {
		var out []byte
		if out, err = exec.Command(argv[0], argv[1:]...).CombinedOutput(); err == nil {
			return
		} else if !strings.Contains(string(out), "busy") {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: still busy: %v", strings.Join(argv, " "), err)
}

// requestRestores asks the store to make every stream of chain readable
// (the test stands in for the restore workflow).
func requestRestores(ctx context.Context, st objstore.Store, chain []Stream, tier objstore.Tier, days int) error {
	for _, s := range chain {
		if err := st.RequestRestore(ctx, s.Key, tier, days); err != nil {
			return fmt.Errorf("restore %s: %w", s.Key, err)
		}
	}
	return nil
}

// restoresReady counts the chain's streams that are readable now.
func restoresReady(ctx context.Context, st objstore.Store, chain []Stream) (ready int, err error) {
	for _, s := range chain {
		rs, err := st.RestoreStatus(ctx, s.Key)
		if err != nil {
			return ready, fmt.Errorf("%s: %w", s.Key, err)
		}
		if rs.Ready {
			ready++
		}
	}
	return ready, nil
}
