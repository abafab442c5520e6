package config

import (
	"strings"
	"testing"
)

func TestStagingValidation(t *testing.T) {
	base := "temporal: {address: 'localhost:7233', task_queue: q}\n"
	pub := "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	ok := base + "staging:\n  - {source: tank/a, dataset: tank/stg/a, recipients: [" + pub + "]}\n"
	c, err := Parse([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if s, found := c.StagingFor("tank/a"); !found || s.Names != "keep" {
		t.Fatalf("%+v %v", s, found)
	}
	for yaml, want := range map[string]string{
		"staging:\n  - {source: tank/a, dataset: tank/stg/a, recipients: [AGE-SECRET-KEY-1QQQ]}\n":     "private key",
		"staging:\n  - {source: tank/a, dataset: tank/stg/a}\n":                                        "at least one",
		"staging:\n  - {source: tank/a, dataset: tank/a, recipients: [" + pub + "]}\n":                 "itself",
		"staging:\n  - {source: tank/a, dataset: tank/b, names: encrypt, recipients: [" + pub + "]}\n": "names",
		"staging:\n  - {source: 'tank/a;x', dataset: tank/b, recipients: [" + pub + "]}\n":             "source",
	} {
		_, err := Parse([]byte(base + yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error about %q", yaml, err, want)
		}
	}
}
