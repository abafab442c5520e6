// Package vault is the legacy Glacier vault backend of objstore (the vault
// API is closed to new AWS customers since 2025-12-15; existing vaults keep
// working).
//
// Vault archives have ids, not keys, and nothing in a vault is readable
// without a retrieval job. So a vault Store is a vault plus a companion
// "hot" Store (an S3 prefix in STANDARD, or a local directory):
//   - objects put with class STANDARD (manifests) go to the hot store as is,
//     immediately readable;
//   - every other object becomes one vault archive, and a small JSON index
//     entry at <IndexPrefix><key>.json in the hot store maps the key to the
//     archive id, size, SHA-256, tree hash, parts and the retrieval job.
//
// The archive description is "zcloud:<key>", so an inventory job can
// rebuild the index if the hot store is lost; the archive manifest also
// records each stream's archive id (ObjectInfo.ID).
//
// Streams longer than one part use the vault multipart API with a
// power-of-two MiB part size and our own SHA-256 tree hashes. moto does not
// implement vault multipart, so that path is tested against a clearly named
// test shim that emulates AWS's multipart calls in front of moto.
package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/glacier"
	"github.com/aws/aws-sdk-go-v2/service/glacier/types"
	"github.com/aws/smithy-go"

	"zcloud/cloud/objstore"
)

// Options tune a Store.
type Options struct {
	// Hot is the immediately readable companion store (required).
	Hot objstore.Store
	// IndexPrefix is where index entries live in Hot; default
	// "vault-index/<vault>/". Keys under it are hidden from List.
	IndexPrefix string
	// AccountID defaults to "-" (the credentials' account).
	AccountID string
	// PartSize is the preferred multipart part size (rounded up to 1 MiB ×
	// 2^n); a stream that fits in one part is a single UploadArchive.
	// Default 64 MiB.
	PartSize int64
	// Parallel parts in flight; memory is about (Parallel+1) × part size.
	Parallel int
}

// Store is a Glacier vault (plus its hot companion) as an objstore.Store.
type Store struct {
	c     *glacier.Client
	vault string
	opts  Options
}

var _ objstore.Store = (*Store)(nil)

// New returns a Store for vault.
func New(c *glacier.Client, vault string, opts Options) (*Store, error) {
	if opts.Hot == nil {
		return nil, errors.New("vault: a hot companion store is required for the index and manifests")
	}
	if opts.IndexPrefix == "" {
		opts.IndexPrefix = "vault-index/" + vault + "/"
	}
	if opts.AccountID == "" {
		opts.AccountID = "-"
	}
	if opts.PartSize <= 0 {
		opts.PartSize = 64 << 20
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	return &Store{c: c, vault: vault, opts: opts}, nil
}

// NewClient builds a Glacier client from the default AWS configuration
// chain; a non-empty endpoint (moto) overrides the service endpoint.
func NewClient(ctx context.Context, region, endpoint string) (*glacier.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, err
	}
	return glacier.NewFromConfig(cfg, func(o *glacier.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// entry is one index record: where key's bytes are in the vault.
type entry struct {
	ArchiveID string            `json:"archive_id"` // "" for an empty object (vaults refuse empty archives)
	Size      int64             `json:"size"`
	SHA256    string            `json:"sha256"`
	TreeHash  string            `json:"tree_hash"`
	Class     objstore.Class    `json:"class"`
	Parts     []objstore.Part   `json:"parts,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Created   time.Time         `json:"created"`
	JobID     string            `json:"job_id,omitempty"` // latest archive-retrieval job
	JobTier   objstore.Tier     `json:"job_tier,omitempty"`
}

func (s *Store) indexKey(key string) string { return s.opts.IndexPrefix + key + ".json" }

// load reads key's index entry; ok is false when key is not a vault object.
func (s *Store) load(ctx context.Context, key string) (e entry, ok bool, err error) {
	rc, err := s.opts.Hot.Get(ctx, s.indexKey(key), objstore.Range{})
	if errors.Is(err, objstore.ErrNotFound) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return e, false, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, false, fmt.Errorf("vault index %s: %w", key, err)
	}
	return e, true, nil
}

func (s *Store) save(ctx context.Context, key string, e entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = s.opts.Hot.Put(ctx, s.indexKey(key), strings.NewReader(string(b)), int64(len(b)), objstore.PutOptions{Class: objstore.Standard})
	return err
}

func (e entry) info(key string) objstore.ObjectInfo {
	return objstore.ObjectInfo{Key: key, ID: e.ArchiveID, Size: e.Size, Class: e.Class, SHA256: e.SHA256,
		Parts: e.Parts, Modified: e.Created, Metadata: e.Metadata}
}

func (s *Store) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := objstore.CheckKey(key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	e, ok, err := s.load(ctx, key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if !ok {
		return s.opts.Hot.Head(ctx, key)
	}
	return e.info(key), nil
}

func (s *Store) Get(ctx context.Context, key string, rng objstore.Range) (io.ReadCloser, error) {
	if err := objstore.CheckKey(key); err != nil {
		return nil, err
	}
	e, ok, err := s.load(ctx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.opts.Hot.Get(ctx, key, rng)
	}
	if e.ArchiveID == "" {
		return io.NopCloser(strings.NewReader("")), nil
	}
	st, err := s.jobStatus(ctx, e)
	if err != nil {
		return nil, err
	}
	if !st.Ready {
		return nil, &objstore.NotRestoredError{Key: key, Class: e.Class}
	}
	in := &glacier.GetJobOutputInput{AccountId: &s.opts.AccountID, VaultName: &s.vault, JobId: &e.JobID}
	end := e.Size - 1
	if !rng.IsWhole() {
		if rng.Off < 0 || rng.Len < 0 || rng.Off > e.Size {
			return nil, objstore.Permanent(fmt.Errorf("%s: range %d+%d outside %d bytes", key, rng.Off, rng.Len, e.Size))
		}
		if rng.Len > 0 {
			end = min(end, rng.Off+rng.Len-1)
		}
		if end < rng.Off {
			return io.NopCloser(strings.NewReader("")), nil
		}
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", rng.Off, end))
	}
	out, err := s.c.GetJobOutput(ctx, in)
	if err != nil {
		return nil, mapErr(key, err)
	}
	if rng.IsWhole() {
		return objstore.VerifyReader(key, out.Body, e.Size, e.SHA256), nil
	}
	if out.Status != 206 && out.ContentRange == nil {
		// The whole output came back (moto ignores Range): cut it here.
		if _, err := io.CopyN(io.Discard, out.Body, rng.Off); err != nil {
			out.Body.Close()
			return nil, fmt.Errorf("glacier %s: skipping to %d: %w", key, rng.Off, err)
		}
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(out.Body, end-rng.Off+1), out.Body}, nil
	}
	return out.Body, nil
}

func (s *Store) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	hot, err := s.opts.Hot.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []objstore.ObjectInfo
	for _, o := range hot {
		if !strings.HasPrefix(o.Key, s.opts.IndexPrefix) {
			out = append(out, o)
		}
	}
	idx, err := s.opts.Hot.List(ctx, s.opts.IndexPrefix+prefix)
	if err != nil {
		return nil, err
	}
	for _, o := range idx {
		key := strings.TrimSuffix(strings.TrimPrefix(o.Key, s.opts.IndexPrefix), ".json")
		e, ok, err := s.load(ctx, key)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e.info(key))
		}
	}
	sortInfos(out)
	return out, nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	if err := objstore.CheckKey(key); err != nil {
		return err
	}
	e, ok, err := s.load(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		return s.opts.Hot.Delete(ctx, key)
	}
	if err := s.deleteArchive(ctx, key, e.ArchiveID); err != nil {
		return err
	}
	return s.opts.Hot.Delete(ctx, s.indexKey(key))
}

func (s *Store) deleteArchive(ctx context.Context, key, id string) error {
	if id == "" {
		return nil
	}
	_, err := s.c.DeleteArchive(ctx, &glacier.DeleteArchiveInput{AccountId: &s.opts.AccountID, VaultName: &s.vault, ArchiveId: &id})
	if err = mapErr(key, err); errors.Is(err, objstore.ErrNotFound) {
		return nil
	}
	return err
}

// RequestRestore starts an archive-retrieval job unless one is running or
// done and still downloadable. Vault job output stays for about 24 hours
// whatever days says.
func (s *Store) RequestRestore(ctx context.Context, key string, tier objstore.Tier, days int) error {
	if err := objstore.CheckKey(key); err != nil {
		return err
	}
	e, ok, err := s.load(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		return s.opts.Hot.RequestRestore(ctx, key, tier, days)
	}
	if e.ArchiveID == "" {
		return nil
	}
	if st, err := s.jobStatus(ctx, e); err != nil {
		return err
	} else if st.Ready || st.InProgress {
		return nil
	}
	out, err := s.c.InitiateJob(ctx, &glacier.InitiateJobInput{
		AccountId: &s.opts.AccountID, VaultName: &s.vault,
		JobParameters: &types.JobParameters{Type: aws.String("archive-retrieval"), ArchiveId: &e.ArchiveID, Tier: aws.String(string(tier))},
	})
	if err != nil {
		return mapErr(key, err)
	}
	e.JobID, e.JobTier = aws.ToString(out.JobId), tier
	return s.save(ctx, key, e)
}

func (s *Store) RestoreStatus(ctx context.Context, key string) (objstore.RestoreStatus, error) {
	if err := objstore.CheckKey(key); err != nil {
		return objstore.RestoreStatus{}, err
	}
	e, ok, err := s.load(ctx, key)
	if err != nil {
		return objstore.RestoreStatus{}, err
	}
	if !ok {
		return s.opts.Hot.RestoreStatus(ctx, key)
	}
	if e.ArchiveID == "" {
		return objstore.RestoreStatus{Ready: true}, nil
	}
	return s.jobStatus(ctx, e)
}

// jobStatus describes e's retrieval job; an expired or failed job reads
// as "nothing requested".
func (s *Store) jobStatus(ctx context.Context, e entry) (objstore.RestoreStatus, error) {
	if e.JobID == "" {
		return objstore.RestoreStatus{}, nil
	}
	out, err := s.c.DescribeJob(ctx, &glacier.DescribeJobInput{AccountId: &s.opts.AccountID, VaultName: &s.vault, JobId: &e.JobID})
	if err = mapErr(e.JobID, err); errors.Is(err, objstore.ErrNotFound) {
		return objstore.RestoreStatus{}, nil
	} else if err != nil {
		return objstore.RestoreStatus{}, err
	}
	switch out.StatusCode {
	case types.StatusCodeSucceeded:
		st := objstore.RestoreStatus{Ready: true}
		if t, err := time.Parse(time.RFC3339, aws.ToString(out.CompletionDate)); err == nil {
			st.Expiry = t.Add(24 * time.Hour)
		}
		return st, nil
	case types.StatusCodeInProgress:
		return objstore.RestoreStatus{InProgress: true}, nil
	}
	return objstore.RestoreStatus{}, nil
}

func mapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ResourceNotFoundException":
			return &objstore.NotFoundError{Key: what}
		case "InvalidParameterValueException", "MissingParameterValueException", "AccessDeniedException":
			return objstore.Permanent(fmt.Errorf("glacier %s: %w", what, err))
		}
	}
	return fmt.Errorf("glacier %s: %w", what, err)
}
