package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var yamlBlockRe = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// Every YAML config example in the docs passes `config check` as printed,
// so a user who copies one starts from something that works.
func TestDocsExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range yamlBlockRe.FindAllSubmatch(b, -1) {
			if !wholeConfig(m[1]) {
				continue // a fragment of a nested section (targets.NAME.ec2)
			}
			n++
			if _, err := Parse(m[1]); err != nil {
				t.Errorf("%s, yaml block %d:\n%s\n%v", f, i+1, strings.TrimSpace(string(m[1])), err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no yaml examples found in the docs")
	}
}

// wholeConfig: a block whose top-level keys include a config section.
func wholeConfig(b []byte) bool {
	var top map[string]any
	if yaml.Unmarshal(b, &top) != nil {
		return true // let Parse report it
	}
	sections := yamlFields(reflect.TypeOf(Config{}))
	for k := range top {
		if _, ok := sections[k]; ok {
			return true
		}
	}
	return false
}
