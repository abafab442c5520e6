package zfsexec

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseError is machine output that did not have the expected shape: a
// changed ZFS version or a bug, never something to retry.
type ParseError struct {
	Cmd    string // what produced the output ("zfs get")
	LineNo int    // 1-based; 0 when the output as a whole is wrong
	Line   string
	Reason string
}

func (e *ParseError) Error() string {
	if e.LineNo == 0 {
		return fmt.Sprintf("parse %s output: %s", e.Cmd, e.Reason)
	}
	return fmt.Sprintf("parse %s output line %d %q: %s", e.Cmd, e.LineNo, e.Line, e.Reason)
}

// outputLines splits command output into lines without the trailing empty one.
func outputLines(out []byte) []string {
	s := strings.TrimRight(string(out), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// tabFields splits one -H line on tabs and insists on exactly n fields:
// zrepl's rule, so a value with an embedded tab is an error, not a shift.
func tabFields(cmd string, lineNo int, line string, n int) ([]string, error) {
	f := strings.Split(line, "\t")
	if len(f) != n {
		return nil, &ParseError{cmd, lineNo, line, fmt.Sprintf("want %d tab-separated fields, got %d", n, len(f))}
	}
	return f, nil
}

func parseUint(cmd string, lineNo int, line, what, s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &ParseError{cmd, lineNo, line, fmt.Sprintf("%s %q is not an unsigned integer", what, s)}
	}
	return v, nil
}

// parseHumanSize reads sizes like "740M", "4.39M", "0B", "12" (zfs-fuse has
// no -p). The result is approximate for scaled values, exact otherwise.
func parseHumanSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "-" {
		return 0, fmt.Errorf("empty size")
	}
	mult := 1.0
	last := s[len(s)-1]
	if last == 'B' && len(s) > 1 && (s[len(s)-2] < '0' || s[len(s)-2] > '9') {
		s = s[:len(s)-1] // "1.5KB" style: drop the B, keep the unit
		last = s[len(s)-1]
	} else if last == 'B' {
		s = s[:len(s)-1]
		last = '0'
	}
	units := "KMGTPE"
	if i := strings.IndexByte(units, last); i >= 0 {
		for j := 0; j <= i; j++ {
			mult *= 1024
		}
		s = s[:len(s)-1]
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n * uint64(mult), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return uint64(f * mult), nil
}
