package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// checkNodes walks the YAML document against the Config type before it is
// decoded, so that every unknown field and every value of the wrong type is
// reported at once, by its field path (policies[0].hourlly) with its line,
// rather than as yaml.v3's first "field hourlly not found in type
// config.Policy".
func checkNodes(doc *yaml.Node, lines map[string]int) Errors {
	var errs Errors
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	checkNode(doc, reflect.TypeOf(Config{}), "", &errs, lines)
	return errs
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func checkNode(n *yaml.Node, t reflect.Type, path string, errs *Errors, lines map[string]int) {
	lines[path] = n.Line
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Tag == "!!null" {
		return // left out: the default
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t == reflect.TypeOf(time.Duration(0)) {
		checkLeaf(n, t, path, errs)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, nodeErr(n, path, "want a mapping (field: value), got %s", describe(n)))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, nodeErr(k, join(path, k.Value), "unknown field%s", suggest(k.Value, fields)))
				continue
			}
			checkNode(v, ft, join(path, k.Value), errs, lines)
			lines[join(path, k.Value)] = k.Line // the key's line, not its value's
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, nodeErr(n, path, "want a mapping (name: value), got %s", describe(n)))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkNode(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs, lines)
			lines[join(path, n.Content[i].Value)] = n.Content[i].Line
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, nodeErr(n, path, "want a list (- item), got %s", describe(n)))
			return
		}
		for i, v := range n.Content {
			checkNode(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs, lines)
		}
	default:
		checkLeaf(n, t, path, errs)
	}
}

// checkLeaf decodes one value alone into its Go type; the type's own
// UnmarshalYAML (Days) speaks for itself.
func checkLeaf(n *yaml.Node, t reflect.Type, path string, errs *Errors) {
	if n.Kind != yaml.ScalarNode {
		*errs = append(*errs, nodeErr(n, path, "want a single value (%s), got %s", kindName(t), describe(n)))
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		var te *yaml.TypeError
		msg := err.Error()
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = fmt.Sprintf("want %s, got %q", kindName(t), n.Value)
		}
		*errs = append(*errs, nodeErr(n, path, "%s", msg))
	}
}

func kindName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration like 30s, 15m or 24h"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "text"
	}
	return t.String()
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// yamlFields maps the YAML names of t's fields (inline structs flattened)
// to their types, as yaml.v3 names them.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// suggest names the known field closest to a misspelt one.
func suggest(got string, fields map[string]reflect.Type) string {
	best, bestD := "", 3 // at most two edits away, or a shared prefix
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if d := editDistance(got, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return fmt.Sprintf(" (known: %s)", strings.Join(names, ", "))
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is Levenshtein's, on bytes (field names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func nodeErr(n *yaml.Node, path, format string, args ...any) error {
	if path == "" {
		path = "(top level)"
	}
	return &FieldError{Field: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// Errors is every problem found in a config, in file order where known.
type Errors []error

func (e Errors) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(err.Error())
	}
	if len(e) > 1 {
		fmt.Fprintf(&b, "\n(%d problems)", len(e))
	}
	return b.String()
}

// Unwrap lets errors.As find each FieldError.
func (e Errors) Unwrap() []error { return e }

func (e *Errors) add(err error) {
	if err == nil {
		return
	}
	var more Errors
	if errors.As(err, &more) {
		*e = append(*e, more...)
		return
	}
	*e = append(*e, err)
}

func (e Errors) err() error {
	if len(e) == 0 {
		return nil
	}
	sort.SliceStable(e, func(i, j int) bool { return lineOf(e[i]) < lineOf(e[j]) })
	return e
}

func lineOf(err error) int {
	var fe *FieldError
	if errors.As(err, &fe) && fe.Line > 0 {
		return fe.Line
	}
	return 1 << 30 // semantic errors without a line: after the others
}
