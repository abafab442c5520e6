package config

import (
	"strings"
	"testing"
)

func TestAllowPlaintextContradictsRaw(t *testing.T) {
	_, err := Parse([]byte(`
targets:
  b: {kind: static, ssh: {host: b, user: root, identity_file: /x/id, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}}
replications:
  - {source: tank/data, target: b, target_dataset: backup/data, raw: true, allow_plaintext_on_target: true}
`))
	if err == nil || !strings.Contains(err.Error(), "replications[0].allow_plaintext_on_target: contradicts raw: true") {
		t.Fatalf("raw + allow_plaintext_on_target: %v", err)
	}
}
