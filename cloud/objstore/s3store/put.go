package s3store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"zcloud/cloud/objstore"
)

// Put uploads r: a stream that fits in one part is one PutObject; a longer
// one is a multipart upload whose part size is chosen from the size (or
// opts.ExpectedSize) so S3's 10,000-part limit is never exceeded, with
// Parallel parts in flight and a SHA-256 checksum on every part. A failed
// multipart upload is aborted, as are stale ones left for this key by a
// crashed earlier attempt.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := objstore.CheckKey(key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	class := opts.Class
	if class == "" {
		class = objstore.Standard
	}
	expected := opts.ExpectedSize
	if size >= 0 {
		expected = size
	}
	partSize := objstore.ChoosePartSize(expected, s.opts.PartSize, s.opts.Limits)
	objKey := aws.String(s.ObjectKey(key))
	meta := maps.Clone(opts.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}

	var (
		uploadID *string
		mu       sync.Mutex
		done     []types.CompletedPart
	)
	sp := objstore.Splitter{
		PartSize: partSize,
		MaxParts: s.opts.Limits.MaxParts,
		Parallel: s.opts.Parallel,
		// Outgrowing the estimate doubles the part size every 1000 parts,
		// so even a stream far over its estimate never needs part 10,001.
		GrowEvery:   s.opts.Limits.MaxParts / 10,
		MaxPartSize: s.opts.Limits.Max,
		Begin: func(ctx context.Context, single bool) error {
			if single {
				return nil
			}
			s.abortStale(ctx, key)
			m := maps.Clone(meta)
			m[metaPartLen] = strconv.FormatInt(partSize, 10) // the first part's; marks multipart
			out, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
				Bucket: &s.bucket, Key: objKey, StorageClass: types.StorageClass(class),
				Metadata: m, ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
			})
			if err != nil {
				return mapErr(key, err)
			}
			uploadID = out.UploadId
			return nil
		},
		Upload: func(ctx context.Context, p objstore.Part, data []byte) error {
			sum := b64(p.SHA256)
			if uploadID == nil { // the whole object in one request
				m := maps.Clone(meta)
				m[metaSHA256] = p.SHA256
				_, err := s.c.PutObject(ctx, &s3.PutObjectInput{
					Bucket: &s.bucket, Key: objKey, Body: bytes.NewReader(data),
					ContentLength: aws.Int64(int64(len(data))), StorageClass: types.StorageClass(class),
					Metadata: m, ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: &sum,
				})
				return mapErr(key, err)
			}
			out, err := s.c.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &s.bucket, Key: objKey, UploadId: uploadID, PartNumber: aws.Int32(int32(p.Number)),
				Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
				ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: &sum,
			})
			if err != nil {
				return mapErr(key, err)
			}
			mu.Lock()
			done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(p.Number)), ChecksumSHA256: &sum})
			mu.Unlock()
			return nil
		},
	}
	res, err := sp.Run(ctx, r)
	if err == nil && size >= 0 && res.Size != size {
		err = objstore.Permanent(fmt.Errorf("put %s: read %d bytes, caller said %d", key, res.Size, size))
	}
	if err == nil && uploadID != nil {
		err = s.complete(ctx, key, uploadID, done, res.SHA256)
	}
	if err != nil {
		if uploadID != nil {
			s.abort(ctx, key, uploadID)
		}
		return objstore.ObjectInfo{}, err
	}
	return objstore.ObjectInfo{
		Key: key, Size: res.Size, Class: class, SHA256: res.SHA256, Parts: res.Parts,
		Modified: time.Now().UTC(), Metadata: opts.Metadata, Restore: objstore.RestoreStatus{Ready: !class.NeedsRestore()},
	}, nil
}

func (s *Store) complete(ctx context.Context, key string, uploadID *string, done []types.CompletedPart, sha string) error {
	slices.SortFunc(done, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	_, err := s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: aws.String(s.ObjectKey(key)), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		return mapErr(key, err)
	}
	_, err = s.c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
		Bucket: &s.bucket, Key: aws.String(s.ObjectKey(key)),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(metaSHA256), Value: aws.String(sha)}}},
	})
	return mapErr(key, err)
}

// abort runs even when ctx was cancelled: an abandoned upload's parts are
// billed until aborted.
func (s *Store) abort(ctx context.Context, key string, uploadID *string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, _ = s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &s.bucket, Key: aws.String(s.ObjectKey(key)), UploadId: uploadID,
	})
}

// abortStale aborts multipart uploads of exactly this key that a crashed
// attempt left behind. Best effort: a bucket lifecycle rule
// (AbortIncompleteMultipartUpload) is the backstop.
func (s *Store) abortStale(ctx context.Context, key string) {
	out, err := s.c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: aws.String(s.ObjectKey(key))})
	if err != nil {
		return
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) == s.ObjectKey(key) {
			s.abort(ctx, key, u.UploadId)
		}
	}
}

func b64(hexSum string) string {
	b, _ := hex.DecodeString(hexSum)
	return base64.StdEncoding.EncodeToString(b)
}
