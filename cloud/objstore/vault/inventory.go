package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glacier"
	"github.com/aws/aws-sdk-go-v2/service/glacier/types"

	"zcloud/cloud/objstore"
)

// InventoryArchive is one archive of a vault inventory.
type InventoryArchive struct {
	ArchiveID   string `json:"ArchiveId"`
	Description string `json:"ArchiveDescription"`
	Created     string `json:"CreationDate"`
	Size        int64  `json:"Size"`
	TreeHash    string `json:"SHA256TreeHash"`
}

// Key is the zcloud key the archive was uploaded under ("" if foreign).
func (a InventoryArchive) Key() string {
	k, ok := strings.CutPrefix(a.Description, "zcloud:")
	if !ok {
		return ""
	}
	return k
}

// StartInventory starts an inventory-retrieval job (AWS: hours; the vault
// inventory itself is refreshed about daily). Poll with Inventory.
func (s *Store) StartInventory(ctx context.Context) (jobID string, err error) {
	out, err := s.c.InitiateJob(ctx, &glacier.InitiateJobInput{
		AccountId: &s.opts.AccountID, VaultName: &s.vault,
		JobParameters: &types.JobParameters{Type: aws.String("inventory-retrieval"), Format: aws.String("JSON")},
	})
	if err != nil {
		return "", mapErr(s.vault, err)
	}
	return aws.ToString(out.JobId), nil
}

// ErrJobNotDone is returned by Inventory while the job runs.
var ErrJobNotDone = errors.New("glacier job not finished")

// Inventory returns the archives listed by a finished inventory job.
func (s *Store) Inventory(ctx context.Context, jobID string) ([]InventoryArchive, error) {
	d, err := s.c.DescribeJob(ctx, &glacier.DescribeJobInput{AccountId: &s.opts.AccountID, VaultName: &s.vault, JobId: &jobID})
	if err != nil {
		return nil, mapErr(jobID, err)
	}
	if d.StatusCode != types.StatusCodeSucceeded {
		return nil, fmt.Errorf("inventory job %s: %w (%s)", jobID, ErrJobNotDone, d.StatusCode)
	}
	out, err := s.c.GetJobOutput(ctx, &glacier.GetJobOutputInput{AccountId: &s.opts.AccountID, VaultName: &s.vault, JobId: &jobID})
	if err != nil {
		return nil, mapErr(jobID, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 1<<30))
	if err != nil {
		return nil, err
	}
	var inv struct{ ArchiveList []InventoryArchive }
	if err := json.Unmarshal(b, &inv); err != nil {
		return nil, fmt.Errorf("inventory job %s: %w", jobID, err)
	}
	return inv.ArchiveList, nil
}

func sortInfos(o []objstore.ObjectInfo) {
	sort.Slice(o, func(i, j int) bool { return o[i].Key < o[j].Key })
}
