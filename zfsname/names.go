// Package zfsname validates ZFS names (datasets, snapshots, bookmarks,
// pools, devices, hold tags, mapper names, resume tokens) into typed values.
// It does no I/O, so workflow code and config can use it; zfsexec builds
// commands from these types.
package zfsname

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ZFS limits a full name (pool/fs@snap) to 255 bytes (ZFS_MAX_DATASET_NAME_LEN - 1).
const maxNameLen = 255

// InvalidNameError says which name was refused and why. It is a permanent
// error: retrying with the same input can never succeed.
type InvalidNameError struct {
	Kind   string // "dataset", "snapshot", "bookmark", "pool", "device"
	Name   string
	Reason string
}

func (e *InvalidNameError) Error() string {
	return fmt.Sprintf("invalid %s name %q: %s", e.Kind, e.Name, e.Reason)
}

// IsInvalidName reports whether err is (or wraps) an InvalidNameError.
func IsInvalidName(err error) bool {
	var e *InvalidNameError
	return errors.As(err, &e)
}

// validComponentChar is the ZFS name grammar (zfs_namecheck.c valid_char):
// alphanumerics plus '-', '_', '.', ':' and ' '. zcloud refuses the space as
// well: it is legal in ZFS but a classic source of quoting bugs, and no
// deployment we target uses it.
func validComponentChar(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '_' || c == '.' || c == ':'
}

func checkComponent(kind, full, comp string) error {
	if comp == "" {
		return &InvalidNameError{kind, full, "empty component"}
	}
	if comp == "." || comp == ".." {
		return &InvalidNameError{kind, full, "component may not be '.' or '..'"}
	}
	for i := 0; i < len(comp); i++ {
		if !validComponentChar(comp[i]) {
			return &InvalidNameError{kind, full, "character " + charAt(comp, i) + " is not allowed (letters, digits, - _ . : only)"}
		}
	}
	return nil
}

func checkFilesystemPath(kind, full, path string) error {
	if path == "" {
		return &InvalidNameError{kind, full, "empty name"}
	}
	if len(full) > maxNameLen {
		return &InvalidNameError{kind, full, fmt.Sprintf("longer than %d bytes", maxNameLen)}
	}
	if strings.HasPrefix(path, "-") {
		return &InvalidNameError{kind, full, "may not start with '-'"}
	}
	parts := strings.Split(path, "/")
	if err := checkPoolName(kind, full, parts[0]); err != nil {
		return err
	}
	for _, p := range parts[1:] {
		if err := checkComponent(kind, full, p); err != nil {
			return err
		}
	}
	return nil
}

// reservedPoolNames are refused by zpool create (zfs_namecheck.c pool_namecheck).
var reservedPoolNames = []string{"mirror", "raidz", "draid", "spare", "log"}

func checkPoolName(kind, full, name string) error {
	if err := checkComponent(kind, full, name); err != nil {
		return err
	}
	c := name[0]
	if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
		return &InvalidNameError{kind, full, "pool name must begin with a letter"}
	}
	for _, r := range reservedPoolNames {
		if strings.HasPrefix(name, r) {
			return &InvalidNameError{kind, full, fmt.Sprintf("pool name may not begin with reserved word %q", r)}
		}
	}
	if len(name) >= 2 && name[0] == 'c' && name[1] >= '0' && name[1] <= '9' {
		return &InvalidNameError{kind, full, "pool name may not look like a disk (c[0-9]...)"}
	}
	return nil
}

// Dataset is a validated filesystem or volume name ("tank/data"). The zero
// value is invalid; construct with ParseDataset. It marshals to JSON as a
// plain string and validates again when unmarshalled, so a Temporal payload
// cannot smuggle in a name that bypassed validation.
type Dataset struct{ name string }

// ParseDataset validates a filesystem/volume name.
func ParseDataset(s string) (Dataset, error) {
	if strings.ContainsAny(s, "@#") {
		return Dataset{}, &InvalidNameError{Kind: "dataset", Name: s, Reason: "a dataset name may not contain '@' or '#'"}
	}
	if err := checkFilesystemPath("dataset", s, s); err != nil {
		return Dataset{}, err
	}
	return Dataset{s}, nil
}

// MustDataset is ParseDataset for constants and tests.
func MustDataset(s string) Dataset {
	d, err := ParseDataset(s)
	if err != nil {
		panic(err)
	}
	return d
}

func (d Dataset) String() string { return d.name }
func (d Dataset) IsZero() bool   { return d.name == "" }

// Pool returns the pool the dataset lives in.
func (d Dataset) Pool() Pool { return Pool{strings.SplitN(d.name, "/", 2)[0]} }

// Parent returns the dataset above d; false for a pool's root dataset.
func (d Dataset) Parent() (Dataset, bool) {
	i := strings.LastIndexByte(d.name, '/')
	if i < 0 {
		return Dataset{}, false
	}
	return Dataset{d.name[:i]}, true
}

// Child returns d/name, validated.
func (d Dataset) Child(name string) (Dataset, error) { return ParseDataset(d.name + "/" + name) }

// Snapshot returns d@name, validated.
func (d Dataset) Snapshot(name string) (Snapshot, error) { return ParseSnapshot(d.name + "@" + name) }

// Bookmark returns d#name, validated.
func (d Dataset) Bookmark(name string) (Bookmark, error) { return ParseBookmark(d.name + "#" + name) }

// IsAncestorOf reports whether other is below d in the hierarchy.
func (d Dataset) IsAncestorOf(other Dataset) bool {
	return strings.HasPrefix(other.name, d.name+"/")
}

// Rel returns other's path relative to d ("" for d itself) and whether other is d or below it.
func (d Dataset) Rel(other Dataset) (string, bool) {
	if other.name == d.name {
		return "", true
	}
	if d.IsAncestorOf(other) {
		return other.name[len(d.name)+1:], true
	}
	return "", false
}

func (d Dataset) MarshalJSON() ([]byte, error) { return json.Marshal(d.name) }
func (d *Dataset) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		*d = Dataset{}
		return nil
	}
	v, err := ParseDataset(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
func (d Dataset) MarshalText() ([]byte, error) { return []byte(d.name), nil }
func (d *Dataset) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Dataset{}
		return nil
	}
	v, err := ParseDataset(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Snapshot is a validated "dataset@name".
type Snapshot struct {
	ds   Dataset
	name string
}

// ParseSnapshot validates "dataset@snap".
func ParseSnapshot(s string) (Snapshot, error) {
	i := strings.IndexByte(s, '@')
	if i < 0 {
		return Snapshot{}, &InvalidNameError{Kind: "snapshot", Name: s, Reason: "missing '@'"}
	}
	if len(s) > maxNameLen {
		return Snapshot{}, &InvalidNameError{Kind: "snapshot", Name: s, Reason: fmt.Sprintf("longer than %d bytes", maxNameLen)}
	}
	if strings.Contains(s[:i], "#") {
		return Snapshot{}, &InvalidNameError{Kind: "snapshot", Name: s, Reason: "'#' is not allowed"}
	}
	if err := checkFilesystemPath("snapshot", s, s[:i]); err != nil {
		return Snapshot{}, err
	}
	if err := checkComponent("snapshot", s, s[i+1:]); err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Dataset{s[:i]}, s[i+1:]}, nil
}

// MustSnapshot is ParseSnapshot for constants and tests.
func MustSnapshot(s string) Snapshot {
	v, err := ParseSnapshot(s)
	if err != nil {
		panic(err)
	}
	return v
}

func (s Snapshot) String() string {
	if s.name == "" {
		return ""
	}
	return s.ds.name + "@" + s.name
}
func (s Snapshot) Dataset() Dataset { return s.ds }
func (s Snapshot) Name() string     { return s.name }
func (s Snapshot) IsZero() bool     { return s.name == "" }

// On returns the snapshot with the same short name on another dataset.
func (s Snapshot) On(d Dataset) Snapshot { return Snapshot{d, s.name} }

func (s Snapshot) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	if str == "" {
		*s = Snapshot{}
		return nil
	}
	v, err := ParseSnapshot(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Bookmark is a validated "dataset#name".
type Bookmark struct {
	ds   Dataset
	name string
}

// ParseBookmark validates "dataset#bookmark".
func ParseBookmark(s string) (Bookmark, error) {
	i := strings.IndexByte(s, '#')
	if i < 0 {
		return Bookmark{}, &InvalidNameError{Kind: "bookmark", Name: s, Reason: "missing '#'"}
	}
	if len(s) > maxNameLen {
		return Bookmark{}, &InvalidNameError{Kind: "bookmark", Name: s, Reason: fmt.Sprintf("longer than %d bytes", maxNameLen)}
	}
	if strings.Contains(s[:i], "@") {
		return Bookmark{}, &InvalidNameError{Kind: "bookmark", Name: s, Reason: "'@' is not allowed"}
	}
	if err := checkFilesystemPath("bookmark", s, s[:i]); err != nil {
		return Bookmark{}, err
	}
	if err := checkComponent("bookmark", s, s[i+1:]); err != nil {
		return Bookmark{}, err
	}
	return Bookmark{Dataset{s[:i]}, s[i+1:]}, nil
}

func (b Bookmark) String() string {
	if b.name == "" {
		return ""
	}
	return b.ds.name + "#" + b.name
}
func (b Bookmark) Dataset() Dataset { return b.ds }
func (b Bookmark) Name() string     { return b.name }

func (b Bookmark) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }
func (b *Bookmark) UnmarshalJSON(data []byte) error {
	var str string
	if err := json.Unmarshal(data, &str); err != nil {
		return err
	}
	if str == "" {
		*b = Bookmark{}
		return nil
	}
	v, err := ParseBookmark(str)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Pool is a validated pool name.
type Pool struct{ name string }

// ParsePool validates a pool name.
func ParsePool(s string) (Pool, error) {
	if len(s) > maxNameLen {
		return Pool{}, &InvalidNameError{Kind: "pool", Name: s, Reason: fmt.Sprintf("longer than %d bytes", maxNameLen)}
	}
	if err := checkPoolName("pool", s, s); err != nil {
		return Pool{}, err
	}
	return Pool{s}, nil
}

func (p Pool) String() string               { return p.name }
func (p Pool) Root() Dataset                { return Dataset{p.name} }
func (p Pool) MarshalJSON() ([]byte, error) { return json.Marshal(p.name) }
func (p *Pool) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		*p = Pool{}
		return nil
	}
	v, err := ParsePool(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Device is a validated absolute device or file path for zpool commands.
type Device struct{ path string }

// ParseDevice accepts absolute paths made of safe characters only.
func ParseDevice(s string) (Device, error) {
	if !strings.HasPrefix(s, "/") {
		return Device{}, &InvalidNameError{Kind: "device", Name: s, Reason: "must be an absolute path"}
	}
	if len(s) > 4096 {
		return Device{}, &InvalidNameError{Kind: "device", Name: s, Reason: "path too long"}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(validComponentChar(c) || c == '/' || c == '+' || c == '=') {
			return Device{}, &InvalidNameError{Kind: "device", Name: s, Reason: "character " + charAt(s, i) + " is not allowed"}
		}
	}
	if strings.Contains(s, "/../") || strings.HasSuffix(s, "/..") {
		return Device{}, &InvalidNameError{Kind: "device", Name: s, Reason: "'..' is not allowed"}
	}
	return Device{s}, nil
}

func (d Device) String() string               { return d.path }
func (d Device) MarshalJSON() ([]byte, error) { return json.Marshal(d.path) }
func (d *Device) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		*d = Device{}
		return nil
	}
	v, err := ParseDevice(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MapperName is a validated device-mapper name ("zc-vol0abc"): it becomes
// /dev/mapper/<name>.
type MapperName string

// ParseMapperName accepts 1..100 of [A-Za-z0-9_.-], not starting with '-' or '.'.
func ParseMapperName(s string) (MapperName, error) {
	if s == "" || len(s) > 100 {
		return "", &InvalidNameError{Kind: "mapper", Name: s, Reason: "must be 1..100 characters"}
	}
	if s[0] == '-' || s[0] == '.' {
		return "", &InvalidNameError{Kind: "mapper", Name: s, Reason: "may not start with '-' or '.'"}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-') {
			return "", &InvalidNameError{Kind: "mapper", Name: s, Reason: "character " + charAt(s, i) + " is not allowed"}
		}
	}
	return MapperName(s), nil
}

// Device returns /dev/mapper/<name>, the node to give zpool create.
func (m MapperName) Device() Device { return Device{"/dev/mapper/" + string(m)} }

// HoldTag is a validated hold tag ("zcloud-repl-backup1").
type HoldTag string

// ParseHoldTag accepts 1..200 characters from the ZFS name alphabet, not
// starting with '-'.
func ParseHoldTag(s string) (HoldTag, error) {
	if s == "" || len(s) > 200 {
		return "", &InvalidNameError{Kind: "hold tag", Name: s, Reason: "must be 1..200 characters"}
	}
	if s[0] == '-' {
		return "", &InvalidNameError{Kind: "hold tag", Name: s, Reason: "may not start with '-'"}
	}
	for i := 0; i < len(s); i++ {
		if !validComponentChar(s[i]) {
			return "", &InvalidNameError{Kind: "hold tag", Name: s, Reason: "character " + charAt(s, i) + " is not allowed (letters, digits, - _ . : only)"}
		}
	}
	return HoldTag(s), nil
}

// ResumeToken is a validated receive_resume_token ("1-a0851331b-c8-789c...").
type ResumeToken string

// ParseResumeToken accepts the token alphabet: hex digits and '-'.
func ParseResumeToken(s string) (ResumeToken, error) {
	if len(s) < 3 || len(s) > 1<<16 || !strings.HasPrefix(s, "1-") {
		return "", &InvalidNameError{Kind: "resume token", Name: s, Reason: "want 1-<hex>-<hex>-<hex>"}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-') {
			return "", &InvalidNameError{Kind: "resume token", Name: s, Reason: "character " + charAt(s, i) + " is not allowed"}
		}
	}
	return ResumeToken(s), nil
}

// PropName is a validated ZFS property name ("compression", "user:tag",
// "feature@async_destroy" is not accepted here: pool features are read, not set).
type PropName string

// ParsePropName accepts [a-z0-9:._-]+ not starting with '-'.
func ParsePropName(s string) (PropName, error) {
	if s == "" || len(s) > 256 {
		return "", &InvalidNameError{"property", s, "must be 1..256 characters"}
	}
	if s[0] == '-' {
		return "", &InvalidNameError{"property", s, "may not start with '-'"}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '.' || c == '_' || c == '-') {
			return "", &InvalidNameError{"property", s, "character " + charAt(s, i) + " is not allowed (a-z 0-9 : . _ - only)"}
		}
	}
	return PropName(s), nil
}

// ParsePropValue refuses values that would corrupt one-line-per-record
// output: control characters (newline, tab, NUL). Everything else is safe:
// the value always travels inside one "name=value" argv element.
func ParsePropValue(name PropName, v string) (string, error) {
	if len(v) > 8192 {
		return "", &InvalidNameError{"property value", string(name), "longer than 8192 bytes"}
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "", &InvalidNameError{"property value", string(name), fmt.Sprintf("control character %q is not allowed", r)}
		}
	}
	return v, nil
}

// charAt quotes the character starting at byte i of s for an error message:
// the whole UTF-8 character ('é' in "données"), not its first byte ('Ã'), or
// the byte in hex when s is not valid UTF-8 there.
func charAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf(`'\x%02x'`, s[i])
	}
	return fmt.Sprintf("%q", r)
}
