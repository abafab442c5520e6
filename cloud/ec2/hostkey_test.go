package ec2

import (
	"crypto/ed25519"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

const (
	sampleECDSA   = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBL3+g2jo7Bh5cXbzA7Q545J8Sv7a9cfBa4etpgQpvwJp1RYwS8SVZqT4pmuueH/olAAsmpVgdhnTMfrSy6lozkY="
	sampleED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdYC8V83V2721hwKRs6UFzDh7dVDSCSdzoh9zu4d1vN"
)

// The testdata consoles follow the layout cloud-init prints on Ubuntu and
// on Amazon Linux (whose lines carry an "ec2: " prefix); the keys are
// synthetic.
func TestParseHostKeysFromConsole(t *testing.T) {
	cases := map[string][]string{
		"testdata/console-ubuntu.txt": {sampleECDSA, sampleED25519},
		"testdata/console-amzn.txt":   {sampleED25519},
	}
	for file, want := range cases {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got := ParseHostKeys(string(b))
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: got %q, want %q", file, got, want)
		}
		if k, ok := HostKeyOfType(got, "ssh-ed25519"); !ok || k != sampleED25519 {
			t.Errorf("%s: ed25519 key %q", file, k)
		}
	}
}

func TestParseHostKeysEdgeCases(t *testing.T) {
	if keys := ParseHostKeys("booting...\n-----BEGIN SSH HOST KEY KEYS-----\n" + sampleED25519 + "\n"); keys != nil {
		t.Errorf("unterminated block gave %q", keys)
	}
	if keys := ParseHostKeys("no keys here"); keys != nil {
		t.Errorf("no block gave %q", keys)
	}
	garbage := "-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 not-base64!!\n" + sampleECDSA + "\n-----END SSH HOST KEY KEYS-----\n"
	if keys := ParseHostKeys(garbage); len(keys) != 1 || keys[0] != sampleECDSA {
		t.Errorf("garbage line: %q", keys)
	}
	// After a reboot with new keys, the last block wins.
	twice := "-----BEGIN SSH HOST KEY KEYS-----\n" + sampleECDSA + "\n-----END SSH HOST KEY KEYS-----\n" +
		"-----BEGIN SSH HOST KEY KEYS-----\n" + sampleED25519 + "\n-----END SSH HOST KEY KEYS-----\n"
	if keys := ParseHostKeys(twice); len(keys) != 1 || keys[0] != sampleED25519 {
		t.Errorf("two blocks: %q", keys)
	}
}

func TestHostKeyInjectionUserData(t *testing.T) {
	hk, err := GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	ud, err := CloudInit{HostKey: hk, AuthorizedKeys: []string{sampleECDSA}, RunCmd: [][]string{{"touch", "/run/zcloud-ready"}}}.UserData()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ud, "#cloud-config\n") {
		t.Fatalf("not a cloud-config: %q", ud[:20])
	}
	var doc struct {
		DeleteKeys bool              `yaml:"ssh_deletekeys"`
		GenTypes   []string          `yaml:"ssh_genkeytypes"`
		Keys       map[string]string `yaml:"ssh_keys"`
		Authorized []string          `yaml:"ssh_authorized_keys"`
		RunCmd     [][]string        `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal([]byte(ud), &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.DeleteKeys || doc.GenTypes == nil || len(doc.GenTypes) != 0 || len(doc.Authorized) != 1 || len(doc.RunCmd) != 1 {
		t.Fatalf("cloud-config: %+v", doc)
	}
	// The private key in the user data is the one whose public half we pin.
	signer, err := ssh.ParsePrivateKey([]byte(doc.Keys["ed25519_private"]))
	if err != nil {
		t.Fatal(err)
	}
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hk.Public))
	if err != nil {
		t.Fatal(err)
	}
	if string(signer.PublicKey().Marshal()) != string(pinned.Marshal()) || doc.Keys["ed25519_public"] != hk.Public {
		t.Fatal("user data key does not match the pinned public key")
	}
	if _, ok := signer.PublicKey().(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey); !ok {
		t.Fatal("not ed25519")
	}
	if _, err := (CloudInit{}).UserData(); err == nil {
		t.Fatal("user data without a host key")
	}
}

func TestConsoleOutputFromMoto(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	inst, err := e.c.Launch(ctx, e.spec(unique("console")))
	if err != nil {
		t.Fatal(err)
	}
	defer e.c.Terminate(ctx, inst.ID)
	out, err := e.c.ConsoleOutput(ctx, inst.ID)
	if err != nil || !strings.Contains(out, "Linux") {
		t.Fatalf("console: %q %v", out, err)
	}
	if keys := ParseHostKeys(out); keys != nil {
		t.Fatalf("moto's console has no host keys, got %q", keys)
	}
}
