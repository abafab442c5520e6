package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"filippo.io/age"
	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"zcloud/archive"
	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
	"zcloud/cloud/objstore/s3store"
	"zcloud/cloud/objstore/vault"
	"zcloud/contract"
	"zcloud/keys"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// archiveStore builds the configured object store, wrapped in retries and
// the bandwidth limit. It is cheap; activities build it per call.
func (a *Activities) archiveStore(ctx context.Context) (objstore.Store, error) {
	c := a.Config.Archive.Store
	var st objstore.Store
	switch c.Kind {
	case "local", "":
		if c.Dir == "" {
			return nil, permanent(contract.ErrTypeConfig, errors.New("archive.store.dir is not set (kind local)"))
		}
		l, err := local.New(c.Dir, local.Options{PartSize: c.PartSize, Parallel: c.Parallel})
		if err != nil {
			return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("archive.store.dir: %w", err))
		}
		st = l
	case "s3":
		cl, err := s3store.NewClient(ctx, c.Region, c.Endpoint)
		if err != nil {
			return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("archive.store: S3 client: %w", err))
		}
		st = s3store.New(cl, c.Bucket, s3store.Options{PartSize: c.PartSize, Parallel: c.Parallel})
	case "vault":
		var hot objstore.Store
		if c.Bucket != "" {
			cl, err := s3store.NewClient(ctx, c.Region, c.Endpoint)
			if err != nil {
				return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("archive.store: S3 client: %w", err))
			}
			hot = s3store.New(cl, c.Bucket, s3store.Options{PartSize: c.PartSize, Parallel: c.Parallel})
		} else {
			l, err := local.New(c.Dir, local.Options{PartSize: c.PartSize, Parallel: c.Parallel})
			if err != nil {
				return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("archive.store.dir: %w", err))
			}
			hot = l
		}
		gc, err := vault.NewClient(ctx, c.Region, c.Endpoint)
		if err != nil {
			return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("archive.store: Glacier client: %w", err))
		}
		v, err := vault.New(gc, c.Vault, vault.Options{Hot: hot, PartSize: c.PartSize, Parallel: c.Parallel})
		if err != nil {
			return nil, permanent(contract.ErrTypeConfig, err)
		}
		st = v
	default:
		return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("archive.store.kind %q is not local, s3 or vault", c.Kind))
	}
	log := a.Log
	st = objstore.WithRetry(st, objstore.RetryOptions{OnRetry: func(op, key string, attempt int, err error) {
		log.Warn("object store retry", zap.String("op", op), zap.String("key", key), zap.Int("attempt", attempt), zap.Error(err))
	}})
	return objstore.WithRateLimit(st, c.BandwidthLimit), nil
}

func (a *Activities) archivePrefix() string { return a.Config.Archive.Store.Prefix }

// estimateClass is the class restore estimates price: vault archives are
// priced as vault retrievals.
func (a *Activities) estimateClass() objstore.Class {
	if a.Config.Archive.Store.Kind == "vault" {
		return archive.VaultClass
	}
	return ""
}

// identities reads age identities by key name from the worker's key source.
// The key bytes stay in this process: they are never returned, logged or
// put in an error message.
func (a *Activities) identities(ctx context.Context, names ...string) ([]age.Identity, error) {
	var ids []age.Identity
	for _, name := range names {
		if name == "" {
			return nil, permanent(contract.ErrTypeConfig, errors.New("no identity key name given (archive.host_identity / restore --identity)"))
		}
		if err := a.allowIdentity(name); err != nil {
			return nil, err
		}
		b, err := a.Keys.Get(ctx, name)
		if errors.Is(err, keys.ErrNotFound) {
			return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("age identity %q is not in this worker's key source (keys.dir / keys.command): %w", name, err))
		}
		if err != nil {
			return nil, permanent(contract.ErrTypeConfig, err)
		}
		got, err := age.ParseIdentities(bytes.NewReader(b))
		clear(b)
		if err != nil {
			return nil, permanent(contract.ErrTypeKeyIncorrect, fmt.Errorf("key %q is not an age identity (AGE-SECRET-KEY-1...): %v", name, err))
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

// manifestRecipients are who a manifest is encrypted to: the archive
// recipients plus the host identity's public key, so this host can read
// its own manifests while streams stay readable only offline.
func (a *Activities) manifestRecipients(hostIDs []age.Identity) ([]age.Recipient, error) {
	rcpts, err := a.streamRecipients()
	if err != nil {
		return nil, err
	}
	for _, id := range hostIDs {
		switch i := id.(type) {
		case *age.X25519Identity:
			rcpts = append(rcpts, i.Recipient())
		case *age.HybridIdentity:
			rcpts = append(rcpts, i.Recipient())
		}
	}
	return rcpts, nil
}

// streamRecipients are the configured archive recipients.
func (a *Activities) streamRecipients() ([]age.Recipient, error) {
	var rcpts []age.Recipient
	for i, r := range a.Config.Archive.Recipients {
		got, err := age.ParseRecipients(bytes.NewReader([]byte(r)))
		if err != nil {
			return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("archive.recipients[%d]: %v", i, err))
		}
		rcpts = append(rcpts, got...)
	}
	if len(rcpts) == 0 {
		return nil, permanent(contract.ErrTypeConfig, errors.New("archive.recipients is empty: nothing can be archived without a public key to encrypt to"))
	}
	return rcpts, nil
}

// loadManifest reads ds's manifest; missing=true starts a new one. A wrong
// key and a missing manifest (when !missingOK) are permanent.
// readManifest opens the store and loads ds's manifest with the named
// identity, or the host identity when identity is "" (reading the manifest
// needs no restore key).
func (a *Activities) readManifest(ctx context.Context, ds zfsname.Dataset, identity string) (objstore.Store, *archive.Manifest, error) {
	if identity == "" {
		identity = a.Config.Archive.HostIdentity
	}
	if err := a.allowIdentity(identity); err != nil {
		return nil, nil, err
	}
	st, _, m, err := a.openManifest(ctx, ds, identity, false)
	return st, m, err
}

// openManifest is how the archive activities start: the store, the named
// identities (they read the manifest; the host's also write it) and ds's
// manifest (a new, empty one when there is none yet and missingOK).
func (a *Activities) openManifest(ctx context.Context, ds zfsname.Dataset, identity string, missingOK bool) (objstore.Store, []age.Identity, *archive.Manifest, error) {
	st, err := a.archiveStore(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	ids, err := a.identities(ctx, identity)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := a.loadManifest(ctx, st, ds, ids, missingOK)
	if err != nil {
		return nil, nil, nil, err
	}
	return st, ids, m, nil
}

func (a *Activities) loadManifest(ctx context.Context, st objstore.Store, ds zfsname.Dataset, ids []age.Identity, missingOK bool) (*archive.Manifest, error) {
	m, err := archive.LoadManifest(ctx, st, a.archivePrefix(), ds, ids...)
	switch {
	case errors.Is(err, archive.ErrNoManifest):
		if missingOK {
			return archive.NewManifest(ds), nil
		}
		return nil, permanent(contract.ErrTypeNoArchive, fmt.Errorf("no archive of %s in the store (%s): %v", ds, archive.ManifestKey(a.archivePrefix(), ds), err))
	case errors.Is(err, archive.ErrWrongKey):
		return nil, permanent(contract.ErrTypeKeyIncorrect, fmt.Errorf("manifest of %s: %v", ds, err))
	case err != nil:
		return nil, archiveErr(err)
	}
	if m.FromPrevious {
		a.Log.Warn("manifest.json was unreadable: using manifest.prev.json", zap.String("dataset", ds.String()))
	}
	return m, nil
}

// saveManifest applies change to the freshest manifest and saves it,
// reloading and re-applying on a generation conflict (another run saved in
// between). change may return an error to stop.
func (a *Activities) saveManifest(ctx context.Context, st objstore.Store, ds zfsname.Dataset, hostIDs []age.Identity, change func(*archive.Manifest) error) (*archive.Manifest, error) {
	rcpts, err := a.manifestRecipients(hostIDs)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		m, err := a.loadManifest(ctx, st, ds, hostIDs, true)
		if err != nil {
			return nil, err
		}
		if err := change(m); err != nil {
			return nil, err
		}
		err = archive.SaveManifest(ctx, st, a.archivePrefix(), m, time.Now(), rcpts...)
		if errors.Is(err, archive.ErrConflict) && attempt < 5 {
			a.Log.Warn("manifest changed while saving; reloading", zap.String("dataset", ds.String()), zap.Error(err))
			continue
		}
		if err != nil {
			return nil, archiveErr(err)
		}
		return m, nil
	}
}

// archiveErr classifies object store and archive errors: corruption, a
// missing object and a wrong key are permanent; the rest is retried.
func archiveErr(err error) error {
	if err == nil {
		return nil
	}
	var ce *objstore.CorruptError
	switch {
	case errors.As(err, &ce):
		return permanent(contract.ErrTypeCorrupt, err)
	case errors.Is(err, archive.ErrWrongKey):
		return permanent(contract.ErrTypeKeyIncorrect, err)
	case errors.Is(err, archive.ErrBrokenChain):
		return permanent(contract.ErrTypeBrokenChain, err)
	case errors.Is(err, objstore.ErrNotFound):
		return permanent(contract.ErrTypeObjectMissing, err)
	case errors.Is(err, objstore.ErrNotRestored):
		return err // a restored copy expired: retrying after a new request may help
	case errors.Is(err, archive.ErrNoRecipients):
		return permanent(contract.ErrTypeConfig, err)
	}
	var ee *zfsexec.ExitError
	if errors.As(err, &ee) || zfsname.IsInvalidName(err) {
		return classify(err)
	}
	if objstore.IsPermanent(err) {
		return permanent(contract.ErrTypeConfig, err)
	}
	return err
}

func streamInfo(s archive.Stream) contract.StreamInfo {
	return contract.StreamInfo{ID: s.ID, Cycle: s.Cycle, Kind: s.Kind, From: s.From, To: s.To, Raw: s.Raw, Key: s.Key, Class: s.Class,
		PlainSize: s.PlainSize, StoredSize: s.StoredSize, Parts: len(s.Parts), Uploaded: s.Uploaded, Parity: parityName(s), ParityBytes: s.ParityBytes()}
}

// findStream finds a stream of the manifest by cycle and id.
func findStream(m *archive.Manifest, cycle, id string) (archive.Stream, bool) {
	c := m.Cycle(cycle)
	if c == nil {
		return archive.Stream{}, false
	}
	for _, s := range c.Streams {
		if s.ID == id {
			return s, true
		}
	}
	return archive.Stream{}, false
}

// previousProgress is what the last attempt of this activity heartbeat.
func previousProgress(ctx context.Context) (contract.Progress, bool) {
	var p contract.Progress
	if !activity.HasHeartbeatDetails(ctx) || activity.GetHeartbeatDetails(ctx, &p) != nil {
		return p, false
	}
	return p, true
}

// countingStore counts the bytes read through Get and handed to Put
// (activities heartbeat them).
type countingStore struct {
	objstore.Store
	n *counter
}

func (c countingStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	return c.Store.Put(ctx, key, &countingReader{io.NopCloser(r), c.n}, size, opts)
}

func (c countingStore) Get(ctx context.Context, key string, rng objstore.Range) (io.ReadCloser, error) {
	rc, err := c.Store.Get(ctx, key, rng)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc, c.n}, nil
}

type countingReader struct {
	io.ReadCloser
	n *counter
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.ReadCloser.Read(p)
	if gerr := c.n.add(k); gerr != nil && err == nil {
		err = gerr
	}
	return k, err
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n *counter
}

func (c countingWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	if gerr := c.n.add(k); gerr != nil && err == nil {
		err = gerr
	}
	return k, err
}

func parityName(s archive.Stream) string {
	if s.Parity == nil {
		return ""
	}
	return fmt.Sprintf("%d+%d", s.Parity.Data, s.Parity.Parity)
}

// paritySpec is the configured layout of new streams.
func (a *Activities) paritySpec() archive.ParitySpec {
	p := a.Config.Archive.Parity
	return archive.ParitySpec{Data: p.Data, Parity: p.Parity, PartSize: a.Config.Archive.Store.PartSize}
}
