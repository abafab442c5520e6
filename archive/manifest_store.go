package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"filippo.io/age"

	"zcloud/cloud/objstore"
	"zcloud/zfsname"
)

// Manifest store errors.
var (
	ErrNoManifest = errors.New("archive: no manifest for this dataset")
	ErrConflict   = errors.New("archive: manifest changed since it was loaded")
)

const metaGeneration = "zcloud-generation"

// maxManifest bounds what LoadManifest reads (a manifest is kilobytes).
const maxManifest = 64 << 20

// LoadManifest reads and decrypts the dataset's manifest from the store.
// If manifest.json is unreadable (damaged, or cut off by a crash of a
// backend without atomic writes) it falls back to manifest.prev.json and
// says so in the returned error-free manifest's FromPrevious.
func LoadManifest(ctx context.Context, st objstore.Store, prefix string, ds zfsname.Dataset, ids ...age.Identity) (*Manifest, error) {
	m, err := loadManifest(ctx, st, ManifestKey(prefix, ds), ids)
	if err == nil || errors.Is(err, ErrNoManifest) || errors.Is(err, ErrWrongKey) {
		return m, err
	}
	prev, perr := loadManifest(ctx, st, PrevManifestKey(prefix, ds), ids)
	if perr != nil {
		return nil, fmt.Errorf("%w; previous manifest: %w", err, perr)
	}
	prev.FromPrevious = true
	return prev, nil
}

func loadManifest(ctx context.Context, st objstore.Store, key string, ids []age.Identity) (*Manifest, error) {
	rc, err := st.Get(ctx, key, objstore.Range{})
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", key, ErrNoManifest)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Read it all first: the store checks size and SHA-256 at EOF, so
	// damage is reported as such, not as a key that does not match.
	enc, err := io.ReadAll(io.LimitReader(rc, maxManifest))
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(bytes.NewReader(enc), ids...)
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return nil, fmt.Errorf("%s: %w", key, ErrWrongKey)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if m.Version != ManifestVersion {
		return nil, objstore.Permanent(fmt.Errorf("%s: manifest version %d, this zcloud reads %d", key, m.Version, ManifestVersion))
	}
	return &m, nil
}

// SaveManifest encrypts m to the recipients and stores it as the dataset's
// manifest, STANDARD class. The store's current manifest is first copied
// to manifest.prev.json; each object Put is atomic, so a crash leaves
// either the old or the new manifest in place, never a torn one. Saving
// fails with ErrConflict if the stored manifest's generation is not the
// one m was loaded at; on success m.Generation is bumped.
func SaveManifest(ctx context.Context, st objstore.Store, prefix string, m *Manifest, now time.Time, rcpts ...age.Recipient) error {
	if len(rcpts) == 0 {
		return ErrNoRecipients
	}
	key := ManifestKey(prefix, m.Dataset)
	cur, err := st.Head(ctx, key)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		if m.Generation != 0 {
			return fmt.Errorf("%s: %w (it is gone; expected generation %d)", key, ErrConflict, m.Generation)
		}
	case err != nil:
		return err
	default:
		if g := cur.Metadata[metaGeneration]; g != strconv.FormatInt(m.Generation, 10) {
			return fmt.Errorf("%s: %w (stored generation %s, loaded %d)", key, ErrConflict, g, m.Generation)
		}
		if err := copyObject(ctx, st, key, PrevManifestKey(prefix, m.Dataset)); err != nil {
			return fmt.Errorf("keeping the previous manifest: %w", err)
		}
	}
	next := *m
	next.Version = ManifestVersion
	next.Generation++
	next.Updated = now.UTC()
	plain, err := json.MarshalIndent(&next, "", " ")
	if err != nil {
		return err
	}
	var enc bytes.Buffer
	w, err := age.Encrypt(&enc, rcpts...)
	if err != nil {
		return err
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		return err
	}
	_, err = st.Put(ctx, key, bytes.NewReader(enc.Bytes()), int64(enc.Len()), objstore.PutOptions{
		Class: objstore.Standard, Metadata: map[string]string{metaGeneration: strconv.FormatInt(next.Generation, 10)},
	})
	if err != nil {
		return err
	}
	*m = next
	return nil
}

func copyObject(ctx context.Context, st objstore.Store, from, to string) error {
	rc, err := st.Get(ctx, from, objstore.Range{})
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifest))
	if err != nil {
		return err
	}
	_, err = st.Put(ctx, to, bytes.NewReader(b), int64(len(b)), objstore.PutOptions{Class: objstore.Standard})
	return err
}
