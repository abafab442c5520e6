package zfsexec

import (
	"strings"
	"testing"

	"zcloud/zfsname"
)

// hostileNames must all be refused by every name parser, with a message
// that says what is wrong.
var hostileNames = []string{
	"tank/a;rm -rf /", "tank/$(id)", "tank/`id`", "tank/a'b", `tank/a"b`, "tank/a\nb", "tank/a\x00b",
	"-tank/a", "tank/a b", "tank/a|b", "tank/a&b", "tank/a>b", "tank/a\\b", "tank/ä", "tank/\u202e",
	"tank/..", "tank/.", "tank//a", "tank/", "/tank", "", "tank/a*", "tank/a?", "tank/~root",
	"tank/" + strings.Repeat("a", 260),
}

func TestHostileNamesRefused(t *testing.T) {
	for _, n := range hostileNames {
		if _, err := zfsname.ParseDataset(n); err == nil || !zfsname.IsInvalidName(err) {
			t.Errorf("ParseDataset(%q) = %v", n, err)
		} else if !strings.Contains(err.Error(), "invalid dataset name") {
			t.Errorf("unclear message %q", err)
		}
		if _, err := zfsname.ParseSnapshot(n + "@s"); err == nil {
			t.Errorf("ParseSnapshot(%q@s) accepted", n)
		}
		if _, err := zfsname.ParseSnapshot("tank/a@" + strings.TrimPrefix(n, "tank/")); err == nil && n != "tank/" {
			t.Errorf("ParseSnapshot(tank/a@%q) accepted", strings.TrimPrefix(n, "tank/"))
		}
		if _, err := zfsname.ParseBookmark(n + "#b"); err == nil {
			t.Errorf("ParseBookmark(%q#b) accepted", n)
		}
		if _, err := zfsname.ParseHoldTag(strings.TrimPrefix(n, "tank/")); err == nil && n != "tank/.." && n != "tank/." && n != "tank//a" && n != "/tank" {
			t.Errorf("ParseHoldTag(%q) accepted", strings.TrimPrefix(n, "tank/"))
		}
	}
	for _, p := range []string{"$(id)", "a;b", "-f", "mirror", "raidz1x", "1tank", "c0t0d0", "tank/a", ""} {
		if _, err := zfsname.ParsePool(p); err == nil {
			t.Errorf("ParsePool(%q) accepted", p)
		}
	}
	for _, d := range []string{"dev/sda", "/dev/sd a", "/dev/$(id)", "/dev/`id`", "/dev/a;b", "/dev/../etc/passwd", "/dev/x\n", "/dev/é"} {
		if _, err := zfsname.ParseDevice(d); err == nil {
			t.Errorf("ParseDevice(%q) accepted", d)
		}
	}
	for _, m := range []string{"-x", "../x", "a/b", "a b", "$(id)", ""} {
		if _, err := zfsname.ParseMapperName(m); err == nil {
			t.Errorf("ParseMapperName(%q) accepted", m)
		}
	}
	// And the good ones still pass.
	for _, ok := range []string{"tank", "tank/data", "tank/a.b_c-d:e", "backup/host1/tank/data"} {
		if _, err := zfsname.ParseDataset(ok); err != nil {
			t.Errorf("ParseDataset(%q): %v", ok, err)
		}
	}
}

// Hostile text that is allowed to travel (a property value) becomes one
// quoted word for the remote shell.
func TestQuoteHostile(t *testing.T) {
	for _, s := range []string{"$(touch x)", "`id`", "a'b", "a;b", "a b", "-rf", "", "\n", "x\\'y"} {
		q := Quote(s)
		if !strings.HasPrefix(q, "'") && q != s {
			t.Errorf("Quote(%q) = %q", s, q)
		}
		if strings.ContainsAny(s, "$`;' \n\\") && !strings.HasPrefix(q, "'") {
			t.Errorf("Quote(%q) = %q is unquoted", s, q)
		}
	}
}

// A non-ASCII character is named as the character the user typed, not as
// the first byte of its UTF-8 encoding ('Ã' for 'é').
func TestNonASCIINamedAsTheCharacter(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errOf(zfsname.ParseDataset("tank/données")), "'é'"},
		{errOf(zfsname.ParseHoldTag("zcloud-données")), "'é'"},
		{errOf(zfsname.ParseDevice("/dev/é")), "'é'"},
		{errOf(zfsname.ParsePool("ta€nk")), "'€'"},
		{errOf(zfsname.ParseDataset("tank/a\xffb")), `'\xff'`},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), "character "+tc.want+" is not allowed") {
			t.Errorf("got %v, want it to name %s", tc.err, tc.want)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }
