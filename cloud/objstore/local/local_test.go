package local_test

import (
	"os"
	"testing"

	"zcloud/cloud/objstore/local"
	"zcloud/cloud/objstore/objstoretest"
)

func TestConformance(t *testing.T) {
	s, err := local.New(t.TempDir(), local.Options{PartSize: 64 << 10, Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	objstoretest.Run(t, objstoretest.Harness{
		Store:            s,
		PartSize:         64 << 10,
		ImmediateRestore: true,
		Overwrite: func(t *testing.T, key string, data []byte) {
			if err := os.WriteFile(s.Path(key), data, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
}
