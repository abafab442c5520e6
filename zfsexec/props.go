package zfsexec

import (
	"fmt"
	"sort"
	"strings"
)

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

// MustPropName is ParsePropName for constants.
func MustPropName(s string) PropName {
	p, err := ParsePropName(s)
	if err != nil {
		panic(err)
	}
	return p
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

// Props is a set of validated property assignments. Build with Set.
type Props struct{ m map[PropName]string }

// Set validates and records name=value.
func (p *Props) Set(name, value string) error {
	n, err := ParsePropName(name)
	if err != nil {
		return err
	}
	v, err := ParsePropValue(n, value)
	if err != nil {
		return err
	}
	if p.m == nil {
		p.m = map[PropName]string{}
	}
	p.m[n] = v
	return nil
}

// MustProps builds Props from pairs for constants and tests.
func MustProps(kv ...string) Props {
	var p Props
	for i := 0; i+1 < len(kv); i += 2 {
		if err := p.Set(kv[i], kv[i+1]); err != nil {
			panic(err)
		}
	}
	return p
}

func (p Props) Len() int { return len(p.m) }

// Get returns the value set for name.
func (p Props) Get(name PropName) (string, bool) { v, ok := p.m[name]; return v, ok }

// args renders "flag name=value" pairs in name order (deterministic argv).
func (p Props) args(flag string) []string {
	names := make([]string, 0, len(p.m))
	for n := range p.m {
		names = append(names, string(n))
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		out = append(out, flag, n+"="+p.m[PropName(n)])
	}
	return out
}

func propList(names []PropName) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ",")
}
