package vault_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/glacier"

	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
	"zcloud/cloud/objstore/objstoretest"
	"zcloud/cloud/objstore/vault"
	"zcloud/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// newTestStore makes a vault in moto, reached through the multipart shim,
// with a local directory as the hot companion.
func newTestStore(t *testing.T) (*vault.Store, *multipartShim) {
	moto := testenv.SharedMoto(t)
	srv := newMultipartShim(t, moto.Endpoint)
	ctx := context.Background()
	c, err := vault.NewClient(ctx, moto.Region, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.RandomName("zcloud-vault-")
	if _, err := c.CreateVault(ctx, &glacier.CreateVaultInput{AccountId: ptr("-"), VaultName: &name}); err != nil {
		t.Fatal(err)
	}
	hot, err := local.New(t.TempDir(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := vault.New(c, name, vault.Options{Hot: hot, PartSize: vault.MiB, Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	return s, shims[srv.URL]
}

func ptr[T any](v T) *T { return &v }

func TestConformance(t *testing.T) {
	s, shim := newTestStore(t)
	objstoretest.Run(t, objstoretest.Harness{
		Store:     s,
		PartSize:  vault.MiB,
		DataClass: objstore.Glacier,
		ColdClass: objstore.Glacier,
		Tier:      objstore.Expedited, // moto: 2 s
	})
	if shim.Completed == 0 {
		t.Fatal("no multipart upload went through the shim")
	}
}

func TestInventoryNamesKeys(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	data := objstoretest.Data(1, 1000)
	info, err := s.Put(ctx, "ds/stream-1", bytesReader(data), int64(len(data)), objstore.PutOptions{Class: objstore.Glacier})
	if err != nil {
		t.Fatal(err)
	}
	if info.ID == "" {
		t.Fatal("vault Put returned no archive id")
	}
	job, err := s.StartInventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		inv, err := s.Inventory(ctx, job)
		if errors.Is(err, vault.ErrJobNotDone) && time.Now().Before(deadline) {
			time.Sleep(time.Second)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range inv {
			if a.ArchiveID == info.ID && a.Key() == "ds/stream-1" {
				return
			}
		}
		t.Fatalf("inventory %+v lacks archive %s for ds/stream-1", inv, info.ID)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
