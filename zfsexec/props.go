package zfsexec

import (
	"sort"
	"strings"

	"zcloud/zfsname"
)

// Props is a set of validated property assignments. Build with Set.
type Props struct{ m map[zfsname.PropName]string }

// Set validates and records name=value.
func (p *Props) Set(name, value string) error {
	n, err := zfsname.ParsePropName(name)
	if err != nil {
		return err
	}
	v, err := zfsname.ParsePropValue(n, value)
	if err != nil {
		return err
	}
	if p.m == nil {
		p.m = map[zfsname.PropName]string{}
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
func (p Props) Get(name zfsname.PropName) (string, bool) { v, ok := p.m[name]; return v, ok }

// args renders "flag name=value" pairs in name order (deterministic argv).
func (p Props) args(flag string) []string {
	names := make([]string, 0, len(p.m))
	for n := range p.m {
		names = append(names, string(n))
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		out = append(out, flag, n+"="+p.m[zfsname.PropName(n)])
	}
	return out
}

func propList(names []zfsname.PropName) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ",")
}
