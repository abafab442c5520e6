package zfsexec

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"zcloud/zfsname"
)

// DiffChange is one line of `zfs diff -FH`.
type DiffChange struct {
	Change   byte   // '+' added, '-' removed, 'M' modified, 'R' renamed
	FileType byte   // 'F' file, '/' directory, '@' symlink, ... (zfs diff -F)
	Path     string // unescaped
	NewPath  string // for 'R'
	// LinkDelta is the link-count change zfs diff appends to an 'M' line
	// ("\t(+1)", "\t(-1)") when a hard link was added or removed. Only the
	// object's one current name is printed, never the link's own name.
	LinkDelta int
}

// Diff lists changes between snapshot from and to (a later snapshot of the
// same dataset, or its live filesystem when to is the zero Snapshot).
func (z ZFS) Diff(ctx context.Context, from zfsname.Snapshot, to zfsname.Snapshot) ([]DiffChange, error) {
	if err := z.Caps.unsupported(z.Caps.Diff, "zfs diff"); err != nil {
		return nil, err
	}
	target := from.Dataset().String()
	if !to.IsZero() {
		if to.Dataset() != from.Dataset() {
			return nil, fmt.Errorf("zfs diff %s %s: snapshots of different datasets", from, to)
		}
		target = to.String()
	}
	res, err := z.run(ctx, "zfs", "diff", "-FH", from.String(), target)
	if err != nil {
		return nil, err
	}
	return parseDiff(res.Stdout)
}

// ParseDiff parses `zfs diff -FH` output (for callers that captured it).
func ParseDiff(out []byte) ([]DiffChange, error) { return parseDiff(out) }

func parseDiff(out []byte) ([]DiffChange, error) {
	const cmd = "zfs diff -FH"
	var cs []DiffChange
	for i, line := range outputLines(out) {
		f := strings.Split(line, "\t")
		if len(f) < 3 || len(f[0]) != 1 || len(f[1]) != 1 {
			return nil, &ParseError{cmd, i + 1, line, "want <change>\\t<type>\\t<path>[\\t<new path>]"}
		}
		c := DiffChange{Change: f[0][0], FileType: f[1][0]}
		want := 3
		if c.Change == 'R' {
			want = 4
		}
		if c.Change == 'M' && len(f) == 4 {
			d, ok := parseLinkDelta(f[3])
			if !ok {
				return nil, &ParseError{cmd, i + 1, line, fmt.Sprintf("bad link-count change %q", f[3])}
			}
			c.LinkDelta = d
			f = f[:3]
		}
		if len(f) != want {
			return nil, &ParseError{cmd, i + 1, line, fmt.Sprintf("want %d fields for change %q, got %d", want, c.Change, len(f))}
		}
		if !strings.ContainsRune("+-MR", rune(c.Change)) {
			return nil, &ParseError{cmd, i + 1, line, fmt.Sprintf("unknown change type %q", c.Change)}
		}
		var err error
		if c.Path, err = unescapeDiffPath(f[2]); err != nil {
			return nil, &ParseError{cmd, i + 1, line, err.Error()}
		}
		if want == 4 {
			if c.NewPath, err = unescapeDiffPath(f[3]); err != nil {
				return nil, &ParseError{cmd, i + 1, line, err.Error()}
			}
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// parseLinkDelta reads "(+1)" / "(-2)".
func parseLinkDelta(s string) (int, bool) {
	if len(s) < 4 || s[0] != '(' || s[len(s)-1] != ')' || (s[1] != '+' && s[1] != '-') {
		return 0, false
	}
	n, err := strconv.Atoi(s[1 : len(s)-1])
	return n, err == nil
}

// unescapeDiffPath undoes zfs diff's escaping: bytes outside printable
// ASCII, space and backslash are written as \NNN (octal).
func unescapeDiffPath(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		// OpenZFS 0.8+ writes \%04o (4 octal digits, "\0040" for a space);
		// illumos and older releases \%03o.
		n := 3
		if i+5 <= len(s) && isOctal(s[i+1:i+5]) {
			n = 4
		}
		if i+1+n > len(s) {
			return "", fmt.Errorf("truncated escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+1+n], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape %q in %q", s[i:i+1+n], s)
		}
		b.WriteByte(byte(v))
		i += n
	}
	return b.String(), nil
}

func isOctal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}
