package zfsexec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Vdev is one line of a zpool status/import config tree.
type Vdev struct {
	Name     string
	State    string // ONLINE, DEGRADED, FAULTED, UNAVAIL, AVAIL (spare); "" for section headers (logs, cache, spares)
	Read     uint64
	Write    uint64
	Cksum    uint64
	Notes    string // "(resilvering)", "4.39M resilvered", "was /dev/x", "cannot open"
	Children []*Vdev
}

// ScanFunction is what a scan does.
type ScanFunction string

const (
	ScanNone     ScanFunction = ""
	ScanScrub    ScanFunction = "scrub"
	ScanResilver ScanFunction = "resilver"
)

// ScanState is where a scan is.
type ScanState string

const (
	ScanStateNone       ScanState = "none"
	ScanStateInProgress ScanState = "in_progress"
	ScanStateFinished   ScanState = "finished"
	ScanStateCanceled   ScanState = "canceled"
	ScanStatePaused     ScanState = "paused"
)

// ScanStatus is the parsed `scan:` (OpenZFS) or `scrub:` (zfs-fuse) line.
type ScanStatus struct {
	Function ScanFunction
	State    ScanState
	Percent  float64 // while in progress
	Repaired uint64  // bytes repaired (scrub) or resilvered; approximate when printed scaled
	Errors   uint64  // when finished
	Raw      string  // the whole section, for logs
}

// InProgress reports a running scan.
func (s ScanStatus) InProgress() bool { return s.State == ScanStateInProgress }

// PoolStatus is one pool of `zpool status` (or one candidate of `zpool import`).
type PoolStatus struct {
	Name   string
	ID     uint64 // zpool import only
	State  string
	Status string // the explanatory "status:" text, "" when healthy
	Action string
	Scan   ScanStatus
	Vdevs  []*Vdev // the pool's root vdev, then logs/cache/spares sections
	Errors string  // "No known data errors"
}

// Walk visits every vdev depth first.
func (s PoolStatus) Walk(f func(*Vdev)) {
	var walk func([]*Vdev)
	walk = func(vs []*Vdev) {
		for _, v := range vs {
			f(v)
			walk(v.Children)
		}
	}
	walk(s.Vdevs)
}

// Healthy is true when the pool and every device are ONLINE (spares AVAIL)
// with no read/write/checksum errors and no known data errors.
func (s PoolStatus) Healthy() bool {
	ok := s.State == "ONLINE" && (s.Errors == "" || s.Errors == "No known data errors")
	s.Walk(func(v *Vdev) {
		if v.State != "" && v.State != "ONLINE" && v.State != "AVAIL" {
			ok = false
		}
		if v.Read+v.Write+v.Cksum > 0 {
			ok = false
		}
	})
	return ok
}

// ImportCandidate is a pool `zpool import` could import.
type ImportCandidate = PoolStatus

var statusKeys = map[string]bool{"pool": true, "id": true, "state": true, "status": true, "action": true, "see": true,
	"scan": true, "scrub": true, "config": true, "errors": true, "remove": true, "checkpoint": true, "expand": true, "comment": true}

var statusKeyRe = regexp.MustCompile(`^ *([a-z]+): ?(.*)$`)

// parseStatus reads `zpool status` or `zpool import` output: "key: value"
// sections with tab-indented continuation lines, and the config tree.
func parseStatus(out []byte) ([]PoolStatus, error) {
	const cmd = "zpool status"
	var pools []PoolStatus
	var cur *PoolStatus
	key := ""
	var text map[string][]string
	var stack []*Vdev // stack[d] is the last vdev at depth d
	finish := func() error {
		if cur == nil {
			return nil
		}
		cur.Status = strings.Join(text["status"], " ")
		cur.Action = strings.Join(text["action"], " ")
		cur.Errors = strings.Join(text["errors"], " ")
		scan := text["scan"]
		if scan == nil {
			scan = text["scrub"]
		}
		cur.Scan = parseScan(strings.Join(scan, "\n"))
		if cur.Scan.Repaired == 0 && cur.Scan.Function != ScanNone {
			cur.Scan.Repaired = deviceRepaired(*cur)
		}
		pools = append(pools, *cur)
		return nil
	}
	for i, line := range outputLines(out) {
		if m := statusKeyRe.FindStringSubmatch(line); m != nil && statusKeys[m[1]] {
			key = m[1]
			val := strings.TrimSpace(m[2])
			switch key {
			case "pool":
				if err := finish(); err != nil {
					return nil, err
				}
				cur = &PoolStatus{Name: val}
				text = map[string][]string{}
				stack = nil
			case "id":
				if cur == nil {
					return nil, &ParseError{cmd, i + 1, line, "id before pool"}
				}
				id, err := parseUint(cmd, i+1, line, "id", val)
				if err != nil {
					return nil, err
				}
				cur.ID = id
			case "state":
				if cur == nil {
					return nil, &ParseError{cmd, i + 1, line, "state before pool"}
				}
				cur.State = val
			}
			if cur == nil {
				return nil, &ParseError{cmd, i + 1, line, "section before pool:"}
			}
			if val != "" {
				text[key] = append(text[key], val)
			}
			continue
		}
		if cur == nil {
			if strings.TrimSpace(line) == "" {
				continue
			}
			return nil, &ParseError{cmd, i + 1, line, "text before pool:"}
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if key != "config" {
			text[key] = append(text[key], strings.TrimSpace(line))
			continue
		}
		if !strings.HasPrefix(line, "\t") {
			return nil, &ParseError{cmd, i + 1, line, "config line without leading tab"}
		}
		body := line[1:]
		f := strings.Fields(body)
		if len(f) >= 2 && f[0] == "NAME" && f[1] == "STATE" {
			continue
		}
		indent := len(body) - len(strings.TrimLeft(body, " "))
		if indent%2 != 0 {
			return nil, &ParseError{cmd, i + 1, line, "odd indentation"}
		}
		depth := indent / 2
		v, err := parseVdevLine(cmd, i+1, line, f)
		if err != nil {
			return nil, err
		}
		if depth > len(stack) {
			return nil, &ParseError{cmd, i + 1, line, "indented deeper than its parent"}
		}
		stack = append(stack[:depth], v)
		if depth == 0 {
			cur.Vdevs = append(cur.Vdevs, v)
		} else {
			parent := stack[depth-1]
			parent.Children = append(parent.Children, v)
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return pools, nil
}

// parseVdevLine reads "name state read write cksum [notes]" (status) or
// "name state [notes]" (import), or a bare section name ("logs").
func parseVdevLine(cmd string, lineNo int, line string, f []string) (*Vdev, error) {
	v := &Vdev{Name: f[0]}
	if len(f) == 1 {
		return v, nil
	}
	v.State = f[1]
	if len(f) >= 5 && isCount(f[2]) && isCount(f[3]) && isCount(f[4]) {
		var err error
		counts := []*uint64{&v.Read, &v.Write, &v.Cksum}
		for j, c := range counts {
			if *c, err = parseHumanSize(f[2+j]); err != nil {
				return nil, &ParseError{cmd, lineNo, line, fmt.Sprintf("error count %q: %v", f[2+j], err)}
			}
		}
		v.Notes = strings.Join(f[5:], " ")
		return v, nil
	}
	v.Notes = strings.Join(f[2:], " ")
	return v, nil
}

// isCount: "0", "12", "1.2K" (scaled counts without -p).
func isCount(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	_, err := parseHumanSize(s)
	return err == nil
}

var (
	scanErrorsRe   = regexp.MustCompile(`with (\d+) errors`)
	scanPercentRe  = regexp.MustCompile(`([\d.]+)% done`)
	scanRepairedRe = regexp.MustCompile(`(?:repaired|resilvered) ([\d.]+[KMGTPE]?B?) in|([\d.]+[KMGTPE]?B?) (?:repaired|resilvered),`)
)

// parseScan reads both spellings:
//
//	OpenZFS:  "scrub repaired 0B in 00:00:01 with 0 errors on ...",
//	          "resilver in progress since ...\n... 1.62M resilvered, 43.45% done, ..."
//	zfs-fuse: "resilver completed after 0h0m with 0 errors on ...",
//	          "scrub in progress for 0h0m, 12.34% done, 0h1m to go", "none requested"
func parseScan(s string) ScanStatus {
	st := ScanStatus{State: ScanStateNone, Raw: s}
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "none requested") {
		return st
	}
	switch {
	case strings.HasPrefix(s, "scrub"):
		st.Function = ScanScrub
	case strings.HasPrefix(s, "resilver"):
		st.Function = ScanResilver
	}
	switch {
	case strings.Contains(s, "in progress"):
		st.State = ScanStateInProgress
	case strings.Contains(s, "canceled") || strings.Contains(s, "stopped"):
		st.State = ScanStateCanceled
	case strings.Contains(s, "paused"):
		st.State = ScanStatePaused
	case strings.Contains(s, " with ") && strings.Contains(s, "errors"):
		st.State = ScanStateFinished
	}
	if m := scanPercentRe.FindStringSubmatch(s); m != nil {
		st.Percent, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := scanErrorsRe.FindStringSubmatch(s); m != nil {
		st.Errors, _ = strconv.ParseUint(m[1], 10, 64)
	}
	if m := scanRepairedRe.FindStringSubmatch(s); m != nil {
		v := m[1]
		if v == "" {
			v = m[2]
		}
		st.Repaired, _ = parseHumanSize(v)
	}
	return st
}

// deviceRepaired sums the per-device "4.39M resilvered"/"1K repaired" notes
// zfs-fuse prints instead of a pool-level figure.
func deviceRepaired(s PoolStatus) uint64 {
	var sum uint64
	s.Walk(func(v *Vdev) {
		f := strings.Fields(v.Notes)
		if len(f) == 2 && (f[1] == "resilvered" || f[1] == "repaired") {
			if n, err := parseHumanSize(f[0]); err == nil {
				sum += n
			}
		}
	})
	return sum
}

// parseImportCandidates reads `zpool import -d dir` (no pool named).
func parseImportCandidates(out []byte) ([]ImportCandidate, error) {
	cs, err := parseStatus(out)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.ID == 0 {
			return nil, &ParseError{Cmd: "zpool import", Reason: fmt.Sprintf("pool %s has no id", c.Name)}
		}
	}
	return cs, nil
}

// parseZpoolGetColumns reads zfs-fuse's `zpool get` (no -H/-p): a header,
// then NAME PROPERTY VALUE SOURCE columns separated by spaces.
func parseZpoolGetColumns(out []byte) ([]Property, error) {
	const cmd = "zpool get"
	lines := outputLines(out)
	if len(lines) == 0 {
		return nil, &ParseError{Cmd: cmd, Reason: "empty output"}
	}
	if h := strings.Fields(lines[0]); len(h) != 4 || h[0] != "NAME" || h[3] != "SOURCE" {
		return nil, &ParseError{cmd, 1, lines[0], "want header NAME PROPERTY VALUE SOURCE"}
	}
	var ps []Property
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 4 {
			return nil, &ParseError{cmd, i + 2, line, fmt.Sprintf("want 4 columns, got %d", len(f))}
		}
		ps = append(ps, Property{f[0], f[1], strings.Join(f[2:len(f)-1], " "), f[len(f)-1]})
	}
	return ps, nil
}

// poolInfoFromProps fills PoolInfo from size/allocated/free/health/capacity
// rows; values may be exact (-p) or scaled ("740M", "3%") on zfs-fuse.
func poolInfoFromProps(name string, ps []Property) (PoolInfo, error) {
	const cmd = "zpool get"
	pi := PoolInfo{Name: name}
	got := 0
	for _, p := range ps {
		var err error
		switch p.Property {
		case "size":
			pi.Size, err = parseHumanSize(p.Value)
		case "allocated":
			pi.Alloc, err = parseHumanSize(p.Value)
		case "free":
			pi.Free, err = parseHumanSize(p.Value)
		case "health":
			pi.Health = p.Value
		case "capacity":
			pi.Capacity, err = strconv.Atoi(strings.TrimSuffix(p.Value, "%"))
		default:
			continue
		}
		if err != nil {
			return pi, &ParseError{Cmd: cmd, Reason: fmt.Sprintf("%s=%q: %v", p.Property, p.Value, err)}
		}
		got++
	}
	if got != 5 {
		return pi, &ParseError{Cmd: cmd, Reason: fmt.Sprintf("pool %s: got %d of 5 properties", name, got)}
	}
	return pi, nil
}
