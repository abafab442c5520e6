// Package archtest checks the layering DESIGN.md asks for: workflow code and
// the contract it speaks do no I/O. It reads the import graph with go list.
package archtest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// pure are the zcloud packages workflow code may depend on: names, payloads,
// planning rules and value types, none of which runs a command, opens a
// connection or calls a cloud API. (config also reads its YAML file in
// Load; workflows use only its types.)
var pure = map[string]bool{
	"zcloud/workflows":            true,
	"zcloud/contract":             true,
	"zcloud/zfsname":              true,
	"zcloud/config":               true,
	"zcloud/retention":            true,
	"zcloud/poolplan":             true,
	"zcloud/cloud/objstore":       true, // the storage interface and its decorators only
	"zcloud/ratelimit":            true, // a token bucket (waits on timers only)
	"zcloud/cloud/ec2/ec2types":   true,
	"zcloud/archive/archivetypes": true,
	"zcloud/bootstrap":            true, // renders the first-boot script text
	"zcloud/searchattr":           true, // search attribute names and values
}

// forbidden are third-party or standard packages whose presence means I/O.
var forbidden = []string{"github.com/aws/", "golang.org/x/crypto/ssh", "os/exec"}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestPureLayersDoNoIO fails when workflows, the contract, config or zfsname
// pull in the AWS SDK, SSH, os/exec or a zcloud package that does I/O
// (activities, zfsexec, cloud clients, transfer, archive's pipeline...).
func TestPureLayersDoNoIO(t *testing.T) {
	for _, pkg := range []string{"zcloud/workflows", "zcloud/contract", "zcloud/config", "zcloud/zfsname"} {
		for _, d := range deps(t, pkg) {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s (I/O); payload types belong in contract, names in zfsname", pkg, d)
				}
			}
			if strings.HasPrefix(d, "zcloud/") && !pure[d] {
				t.Errorf("%s depends on zcloud package %s, which is not one of the pure packages", pkg, d)
			}
		}
	}
}
