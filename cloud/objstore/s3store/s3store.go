// Package s3store is the S3 backend of objstore: one S3 object per key,
// storage class per object (STANDARD for manifests, GLACIER / DEEP_ARCHIVE
// / GLACIER_IR for streams), its own bounded-memory multipart upload with a
// SHA-256 checksum on every part, RestoreObject by tier and restore status
// from HEAD.
//
// The whole object's SHA-256 is kept as user metadata (zcloud-sha256) for
// single-request uploads, and as an object tag for multipart uploads (S3
// only offers a checksum-of-part-checksums for those, and metadata cannot
// change after the upload starts).
package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"zcloud/cloud/objstore"
)

// Options tune a Store.
type Options struct {
	// Prefix is prepended to every key in the bucket ("" or ending in "/").
	Prefix string
	// PartSize is the preferred (smallest) part size; larger parts are
	// chosen when the expected size needs them. Default 16 MiB.
	PartSize int64
	// Parallel is how many parts upload at once. Memory is about
	// (Parallel+1) × part size. Default 4.
	Parallel int
	// Limits are S3's multipart rules; tests may lower Min.
	Limits objstore.PartLimits
}

// Store is an S3 bucket as an objstore.Store.
type Store struct {
	c      *s3.Client
	bucket string
	opts   Options
}

var _ objstore.Store = (*Store)(nil)

// Metadata and tag names zcloud writes.
const (
	metaSHA256  = "zcloud-sha256"
	metaPartLen = "zcloud-part-size"
)

// New returns a Store for bucket.
func New(c *s3.Client, bucket string, opts Options) *Store {
	if opts.PartSize <= 0 {
		opts.PartSize = 16 << 20
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.Limits.MaxParts == 0 {
		opts.Limits = objstore.S3Limits
	}
	return &Store{c: c, bucket: bucket, opts: opts}
}

// NewClient builds an S3 client from the default AWS configuration chain.
// A non-empty endpoint (moto, MinIO) is used with path-style addressing.
func NewClient(ctx context.Context, region, endpoint string) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Ranged and multipart GETs carry no full-object checksum; zcloud
		// verifies those itself, so the SDK's notice is noise.
		o.DisableLogOutputChecksumValidationSkipped = true
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
	}), nil
}

// Client is the underlying S3 client (tests tamper with objects through it).
func (s *Store) Client() *s3.Client { return s.c }

// Bucket and ObjectKey say where key is stored.
func (s *Store) Bucket() string              { return s.bucket }
func (s *Store) ObjectKey(key string) string { return s.opts.Prefix + key }

func (s *Store) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := objstore.CheckKey(key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: &s.bucket, Key: aws.String(s.ObjectKey(key)), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return objstore.ObjectInfo{}, mapErr(key, err)
	}
	info := objstore.ObjectInfo{
		Key:      key,
		Size:     aws.ToInt64(out.ContentLength),
		Class:    classOf(out.StorageClass),
		Modified: aws.ToTime(out.LastModified),
		Metadata: out.Metadata,
		SHA256:   out.Metadata[metaSHA256],
		// S3's own checksum (ChecksumMode enabled above): what cycle
		// verification trusts over zcloud's metadata.
		StoreSHA256: aws.ToString(out.ChecksumSHA256),
	}
	info.Restore = parseRestore(info.Class, aws.ToString(out.Restore))
	if info.SHA256 == "" && out.Metadata[metaPartLen] != "" {
		tags, err := s.c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &s.bucket, Key: aws.String(s.ObjectKey(key))})
		if err != nil {
			return objstore.ObjectInfo{}, mapErr(key, err)
		}
		for _, t := range tags.TagSet {
			if aws.ToString(t.Key) == metaSHA256 {
				info.SHA256 = aws.ToString(t.Value)
			}
		}
	}
	return info, nil
}

func classOf(c types.StorageClass) objstore.Class {
	if c == "" {
		return objstore.Standard // S3 omits the header for STANDARD
	}
	return objstore.Class(c)
}

// parseRestore reads the x-amz-restore header:
// `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`.
func parseRestore(class objstore.Class, h string) objstore.RestoreStatus {
	if !class.NeedsRestore() {
		return objstore.RestoreStatus{Ready: true}
	}
	var st objstore.RestoreStatus
	switch {
	case strings.Contains(h, `ongoing-request="true"`):
		st.InProgress = true
	case strings.Contains(h, `ongoing-request="false"`):
		st.Ready = true
		if i := strings.Index(h, `expiry-date="`); i >= 0 {
			rest := h[i+len(`expiry-date="`):]
			if j := strings.IndexByte(rest, '"'); j >= 0 {
				st.Expiry, _ = time.Parse(time.RFC1123, rest[:j])
			}
		}
	}
	return st
}

func (s *Store) Get(ctx context.Context, key string, rng objstore.Range) (io.ReadCloser, error) {
	info, err := s.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	if !info.Restore.Ready {
		return nil, &objstore.NotRestoredError{Key: key, Class: info.Class}
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.ObjectKey(key))}
	if !rng.IsWhole() {
		if rng.Off < 0 || rng.Len < 0 || rng.Off > info.Size {
			return nil, objstore.Permanent(fmt.Errorf("%s: range %d+%d outside %d bytes", key, rng.Off, rng.Len, info.Size))
		}
		end := info.Size - 1
		if rng.Len > 0 {
			end = min(end, rng.Off+rng.Len-1)
		}
		if end < rng.Off {
			return io.NopCloser(strings.NewReader("")), nil
		}
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", rng.Off, end))
	}
	out, err := s.c.GetObject(ctx, in)
	if err != nil {
		return nil, mapErr(key, err)
	}
	if rng.IsWhole() {
		return objstore.VerifyReader(key, out.Body, info.Size, info.SHA256), nil
	}
	return out.Body, nil
}

func (s *Store) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	var out []objstore.ObjectInfo
	p := s3.NewListObjectsV2Paginator(s.c, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.opts.Prefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, mapErr(prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, objstore.ObjectInfo{
				Key:      strings.TrimPrefix(aws.ToString(o.Key), s.opts.Prefix),
				Size:     aws.ToInt64(o.Size),
				Class:    classOf(types.StorageClass(o.StorageClass)),
				Modified: aws.ToTime(o.LastModified),
			})
		}
	}
	return out, nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	if err := objstore.CheckKey(key); err != nil {
		return err
	}
	_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.ObjectKey(key))})
	if err = mapErr(key, err); errors.Is(err, objstore.ErrNotFound) {
		return nil
	}
	return err
}

func (s *Store) RequestRestore(ctx context.Context, key string, tier objstore.Tier, days int) error {
	info, err := s.Head(ctx, key)
	if err != nil {
		return err
	}
	if !info.Class.NeedsRestore() || info.Restore.InProgress {
		return nil
	}
	_, err = s.c.RestoreObject(ctx, &s3.RestoreObjectInput{
		Bucket: &s.bucket, Key: aws.String(s.ObjectKey(key)),
		RestoreRequest: &types.RestoreRequest{
			Days:                 aws.Int32(int32(days)),
			GlacierJobParameters: &types.GlacierJobParameters{Tier: types.Tier(tier)},
		},
	})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "RestoreAlreadyInProgress" {
		return nil // a retried activity asked twice
	}
	return mapErr(key, err)
}

func (s *Store) RestoreStatus(ctx context.Context, key string) (objstore.RestoreStatus, error) {
	info, err := s.Head(ctx, key)
	if err != nil {
		return objstore.RestoreStatus{}, err
	}
	return info.Restore, nil
}

// mapErr turns S3's errors into objstore's typed ones.
func mapErr(key string, err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return &objstore.NotFoundError{Key: key}
		case "InvalidObjectState":
			return &objstore.NotRestoredError{Key: key}
		case "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidRequest", "InvalidArgument":
			return objstore.Permanent(fmt.Errorf("s3 %s: %w", key, err))
		}
	}
	return fmt.Errorf("s3 %s: %w", key, err)
}
