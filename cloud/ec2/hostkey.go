package ec2

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

// HostKey is an ed25519 SSH host key generated on the controller, so the
// instance's identity is known before the first connection (no TOFU).
type HostKey struct {
	// PrivatePEM is the OpenSSH private key. It travels in the instance's
	// user data (readable by anyone with ec2:DescribeInstanceAttribute and
	// on the instance via IMDS): generate one per launch inside the launch
	// activity, and keep it out of workflow payloads.
	PrivatePEM string `json:"-"`
	// Public is the authorized_keys line to pin (ssh-ed25519 AAAA...).
	Public string `json:"public"`
}

// GenerateHostKey makes a fresh ed25519 host key.
func GenerateHostKey() (HostKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return HostKey{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "zcloud host key")
	if err != nil {
		return HostKey{}, err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return HostKey{}, err
	}
	return HostKey{
		PrivatePEM: string(pem.EncodeToMemory(block)),
		Public:     strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub))),
	}, nil
}

// CloudInit is what zcloud puts in an instance's cloud-config.
type CloudInit struct {
	HostKey HostKey
	// AuthorizedKeys are installed for the default user.
	AuthorizedKeys []string
	// Files are written before RunCmd runs (cloud-init write_files).
	Files []File
	// RunCmd lines run once at first boot (argv lists, not shell strings).
	RunCmd [][]string
}

// File is one file cloud-init writes, owned by root.
type File struct {
	Path    string
	Mode    string // octal, e.g. "0755"
	Content string
}

// UserData renders ci as a #cloud-config document. It installs the host key
// (ssh_keys ed25519_private/ed25519_public), deletes and does not generate
// other host keys, so the only key sshd can offer is the pinned one.
func (ci CloudInit) UserData() (string, error) {
	if ci.HostKey.PrivatePEM == "" || ci.HostKey.Public == "" {
		return "", fmt.Errorf("cloud-init: no host key")
	}
	doc := map[string]any{
		"ssh_deletekeys":  true,
		"ssh_genkeytypes": []string{},
		"ssh_keys": map[string]string{
			"ed25519_private": ci.HostKey.PrivatePEM,
			"ed25519_public":  ci.HostKey.Public,
		},
	}
	if len(ci.AuthorizedKeys) > 0 {
		doc["ssh_authorized_keys"] = ci.AuthorizedKeys
	}
	if len(ci.Files) > 0 {
		var files []map[string]string
		for _, f := range ci.Files {
			files = append(files, map[string]string{"path": f.Path, "permissions": f.Mode, "owner": "root:root", "content": f.Content})
		}
		doc["write_files"] = files
	}
	if len(ci.RunCmd) > 0 {
		doc["runcmd"] = ci.RunCmd
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	return "#cloud-config\n" + string(b), nil
}
