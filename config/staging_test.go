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
	enc := base + "staging:\n  - {source: tank/a, dataset: tank/stg/a, names: encrypt, names_key: stg-names, recipients: [" + pub + "]}\n"
	if c, err := Parse([]byte(enc)); err != nil || c.Staging[0].NamesKey != "stg-names" {
		t.Fatalf("names: encrypt: %v", err)
	}
	after := base + "policies:\n  - {dataset: tank/a, schedule: 1h, hourly: 24}\nstaging:\n  - {source: tank/a, dataset: tank/stg/a, after_snapshot: true, recipients: [" + pub + "]}\n"
	if c, err := Parse([]byte(after)); err != nil || !c.Staging[0].AfterSnapshot {
		t.Fatalf("after_snapshot: %v", err)
	}
	for yaml, want := range map[string]string{
		"staging:\n  - {source: tank/a, dataset: tank/stg/a, after_snapshot: true, recipients: [" + pub + "]}\n":               "no policies",
		"staging:\n  - {source: tank/a, dataset: tank/stg/a, after_snapshot: true, schedule: 1h, recipients: [" + pub + "]}\n": "choose one",
		"staging:\n  - {source: tank/a, dataset: tank/stg/a, recipients: [AGE-SECRET-KEY-1QQQ]}\n":                             "private key",
		"staging:\n  - {source: tank/a, dataset: tank/stg/a}\n":                                                                "at least one",
		"staging:\n  - {source: tank/a, dataset: tank/a, recipients: [" + pub + "]}\n":                                         "itself",
		"staging:\n  - {source: tank/a, dataset: tank/b, names: encrypt, recipients: [" + pub + "]}\n":                         "names_key",
		"staging:\n  - {source: tank/a, dataset: tank/b, names: hide, names_key: k, recipients: [" + pub + "]}\n":              "keep or encrypt",
		"staging:\n  - {source: tank/a, dataset: tank/b, names_key: k, recipients: [" + pub + "]}\n":                           "only used",
		"staging:\n  - {source: tank/a, dataset: tank/b, names: encrypt, names_key: ../k, recipients: [" + pub + "]}\n":        "names_key",
		"staging:\n  - {source: 'tank/a;x', dataset: tank/b, recipients: [" + pub + "]}\n":                                     "source",
	} {
		_, err := Parse([]byte(base + yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error about %q", yaml, err, want)
		}
	}
}
