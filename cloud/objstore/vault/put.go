package vault

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glacier"

	"zcloud/cloud/objstore"
)

// Put stores STANDARD objects in the hot store and everything else as a
// vault archive: one UploadArchive when the stream fits in a part, else a
// multipart upload (parts of 1 MiB × 2^n, Parallel at once, each with its
// tree hash; the archive's tree hash combined from the parts'). Replacing
// a key deletes its previous archive after the new index entry is saved,
// so a retried upload leaves one archive per key.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := objstore.CheckKey(key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	if opts.Class == "" || opts.Class == objstore.Standard {
		return s.opts.Hot.Put(ctx, key, r, size, opts)
	}
	old, hadOld, err := s.load(ctx, key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	expected := opts.ExpectedSize
	if size >= 0 {
		expected = size
	}
	partSize := objstore.ChoosePartSize(expected, s.opts.PartSize, objstore.VaultLimits)
	desc := aws.String(description(key))

	var (
		mu        sync.Mutex
		uploadID  *string
		archiveID string
		hashes    = map[int][32]byte{}
	)
	sp := objstore.Splitter{
		PartSize: partSize,
		MaxParts: objstore.VaultLimits.MaxParts,
		Parallel: s.opts.Parallel,
		Begin: func(ctx context.Context, single bool) error {
			if single {
				return nil
			}
			out, err := s.c.InitiateMultipartUpload(ctx, &glacier.InitiateMultipartUploadInput{
				AccountId: &s.opts.AccountID, VaultName: &s.vault,
				PartSize: aws.String(strconv.FormatInt(partSize, 10)), ArchiveDescription: desc,
			})
			if err != nil {
				return mapErr(key, err)
			}
			uploadID = out.UploadId
			return nil
		},
		Upload: func(ctx context.Context, p objstore.Part, data []byte) error {
			th := TreeHash(data)
			mu.Lock()
			hashes[p.Number] = th
			mu.Unlock()
			if uploadID == nil {
				if len(data) == 0 {
					return nil // vaults refuse empty archives; the index alone records it
				}
				out, err := s.c.UploadArchive(ctx, &glacier.UploadArchiveInput{
					AccountId: &s.opts.AccountID, VaultName: &s.vault, ArchiveDescription: desc,
					Body: bytes.NewReader(data), Checksum: aws.String(hex.EncodeToString(th[:])),
				})
				if err != nil {
					return mapErr(key, err)
				}
				archiveID = aws.ToString(out.ArchiveId)
				return nil
			}
			_, err := s.c.UploadMultipartPart(ctx, &glacier.UploadMultipartPartInput{
				AccountId: &s.opts.AccountID, VaultName: &s.vault, UploadId: uploadID,
				Range:    aws.String(fmt.Sprintf("bytes %d-%d/*", p.Offset, p.Offset+p.Size-1)),
				Checksum: aws.String(hex.EncodeToString(th[:])), Body: bytes.NewReader(data),
			})
			return mapErr(key, err)
		},
	}
	res, err := sp.Run(ctx, r)
	if err == nil && size >= 0 && res.Size != size {
		err = objstore.Permanent(fmt.Errorf("put %s: read %d bytes, caller said %d", key, res.Size, size))
	}
	ordered := make([][32]byte, len(hashes))
	for n, h := range hashes {
		if n-1 < len(ordered) {
			ordered[n-1] = h
		}
	}
	tree := CombineTreeHashes(ordered)
	if err == nil && uploadID != nil {
		var out *glacier.CompleteMultipartUploadOutput
		out, err = s.c.CompleteMultipartUpload(ctx, &glacier.CompleteMultipartUploadInput{
			AccountId: &s.opts.AccountID, VaultName: &s.vault, UploadId: uploadID,
			ArchiveSize: aws.String(strconv.FormatInt(res.Size, 10)), Checksum: aws.String(hex.EncodeToString(tree[:])),
		})
		if err = mapErr(key, err); err == nil {
			archiveID = aws.ToString(out.ArchiveId)
		}
	}
	if err != nil {
		if uploadID != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			_, _ = s.c.AbortMultipartUpload(actx, &glacier.AbortMultipartUploadInput{AccountId: &s.opts.AccountID, VaultName: &s.vault, UploadId: uploadID})
			cancel()
		}
		return objstore.ObjectInfo{}, err
	}
	e := entry{ArchiveID: archiveID, Size: res.Size, SHA256: res.SHA256, TreeHash: hex.EncodeToString(tree[:]),
		Class: opts.Class, Parts: res.Parts, Metadata: opts.Metadata, Created: time.Now().UTC()}
	if err := s.save(ctx, key, e); err != nil {
		// The archive exists but nothing points at it; an inventory finds
		// it by its description.
		return objstore.ObjectInfo{}, fmt.Errorf("vault %s: archive %s uploaded but index not saved: %w", key, archiveID, err)
	}
	if hadOld && old.ArchiveID != archiveID {
		if err := s.deleteArchive(ctx, key, old.ArchiveID); err != nil {
			return objstore.ObjectInfo{}, fmt.Errorf("vault %s: replaced, but deleting the old archive %s: %w", key, old.ArchiveID, err)
		}
	}
	return e.info(key), nil
}

// description labels an archive with its key (max 1024 printable ASCII).
func description(key string) string {
	d := "zcloud:" + key
	if len(d) > 1024 {
		d = d[:1024]
	}
	return d
}
