package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestExampleParses(t *testing.T) {
	c, err := Parse(Example)
	if err != nil {
		t.Fatal(err)
	}
	if c.Targets["backup1"].SSH.Host != "backup.example.org" || c.Replications[0].TargetDataset != "backup/data" {
		t.Fatalf("unexpected: %+v", c)
	}
	// Every section is shown, an EC2 target among the targets.
	var top map[string]any
	if err := yaml.Unmarshal(Example, &top); err != nil {
		t.Fatal(err)
	}
	for name := range yamlFields(reflect.TypeOf(Config{})) {
		if _, ok := top[name]; !ok {
			t.Errorf("the example has no %s: section", name)
		}
	}
	if c.Targets["nightly"].EC2 == nil || len(c.Pools) == 0 || c.Notify.Webhook == nil {
		t.Errorf("the example lacks an EC2 target, a pool or notify")
	}
}

func TestEmptyFileRefused(t *testing.T) {
	for _, y := range []string{"", "\n", "# only a comment\n"} {
		if _, err := Parse([]byte(y)); !errors.Is(err, ErrEmpty) {
			t.Errorf("%q: got %v, want ErrEmpty", y, err)
		}
	}
	c, err := Parse([]byte("temporal:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Temporal.TaskQueue != "zcloud" || c.Temporal.Address != "127.0.0.1:7233" {
		t.Fatalf("defaults not applied: %+v", c.Temporal)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	base := `
targets:
  b:
    ssh: {host: h, identity_file: /k, host_key: "ssh-ed25519 AAAA"}
`
	cases := []struct{ yaml, field string }{
		{"log: {level: loud}", "log.level"},
		{base + "replications: [{source: 'tank/a;rm', target: b, target_dataset: x/y}]", "replications[0].source"},
		{base + "replications: [{source: tank/a, target: nope, target_dataset: x/y}]", "replications[0].target"},
		{"targets: {b: {ssh: {host: h, identity_file: /k}}}", "targets.b.ssh"},
		{"targets: {b: {transport: carrier-pigeon, ssh: {host: h, identity_file: /k, host_key: k}}}", "targets.b.transport"},
		{"targets: {b: {ssh: {host: h, port: 70000, identity_file: /k, host_key: k}}}", "targets.b.ssh.port"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%q: got %v, want error naming %s", tc.yaml, err, tc.field)
		}
	}
}

func TestUnknownFieldRefused(t *testing.T) {
	_, err := Parse([]byte("temporal: {adress: x}"))
	if err == nil || !strings.Contains(err.Error(), "adress") {
		t.Fatalf("got %v", err)
	}
}

func TestEnvironmentOverridesTemporal(t *testing.T) {
	t.Setenv("ZCLOUD_TEMPORAL_ADDRESS", "temporal.internal:7233")
	t.Setenv("ZCLOUD_TEMPORAL_TASK_QUEUE", "zq")
	c, err := Parse([]byte("temporal: {address: 127.0.0.1:1}"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Temporal.Address != "temporal.internal:7233" || c.Temporal.TaskQueue != "zq" {
		t.Fatalf("env not applied: %+v", c.Temporal)
	}
}

// Bad input found at `config check`, not after the data was sent.
func TestBadInputRefusedAtCheck(t *testing.T) {
	target := func(name, extra string) string {
		return "targets:\n  '" + name + "':\n    ssh: {host: h, identity_file: /k, host_key: k}\n" + extra
	}
	long := "backup/" + strings.Repeat("d", 240) // valid alone, too long with @zcloud_<time>
	cases := []struct{ yaml, field, want string }{
		{target("bad name", ""), "targets.bad name", "zcloud-NAME"},
		{target("a:b", ""), "targets.a:b", "target name"},
		{target("b", "    receiver_path: /usr/local/bin/zcloud;id\n"), "targets.b.receiver_path", "';'"},
		{target("b", "    receiver_path: /opt/$(id)/zcloud\n"), "targets.b.receiver_path", "'$'"},
		{target("b", "replications: [{source: tank/a, target: b, target_dataset: "+long+"}]\n"), "replications[0].target_dataset", "longer than 255"},
		{target("b", "replications: [{source: tank/a, target_dataset: x/y}]\n"), "replications[0].target", "required"},
		{target("b", "replications: [{source: tank/données, target: b, target_dataset: x/y}]\n"), "replications[0].source", "'é'"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want error naming %s with %q", tc.yaml, err, tc.field, tc.want)
		}
	}
	if err := CheckSnapshotFits("backup/" + strings.Repeat("d", 200)); err != nil {
		t.Errorf("a name that fits refused: %v", err)
	}
}

// Structural errors name the field path and line, suggest the field meant,
// and come all at once.
func TestYAMLErrorsNameThePathAndComeAllAtOnce(t *testing.T) {
	y := `temporal:
  adress: x
policies:
  - dataset: tank/a
    hourlly: 24
    daily: lots
archive:
  datasets:
    - dataset: tank/a
      cycle: 30
`
	_, err := Parse([]byte(y))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"line 2: temporal.adress: unknown field (did you mean address?)",
		"line 5: policies[0].hourlly: unknown field (did you mean hourly?)",
		`line 6: policies[0].daily: want a whole number, got "lots"`,
		"line 10: archive.datasets[0].cycle: ",
		"(4 problems)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "config.Policy") || strings.Contains(msg, "not found in type") {
		t.Errorf("Go type names leak into the message:\n%s", msg)
	}
}

// Semantic errors are all reported too, each with the line of its field.
func TestSemanticErrorsAllAtOnceWithLines(t *testing.T) {
	y := `log: {level: loud}
targets:
  b:
    ssh: {host: h, identity_file: /k, host_key: k}
replications:
  - source: tank/a
    target_dataset: x/y
  - source: tank/b
    target: nope
    target_dataset: x/z
`
	_, err := Parse([]byte(y))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("got %d errors, want 3:\n%v", len(errs), err)
	}
	msg := err.Error()
	for _, want := range []string{
		"line 1: log.level: must be",
		`line 6: replications[0].target: required: the name of a target under targets: (known: b)`,
		`line 9: replications[1].target: no target named "nope" (known: b)`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}
