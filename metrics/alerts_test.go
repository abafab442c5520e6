package metrics

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"zcloud/internal/testenv"
	"zcloud/searchattr"
)

const alertRules = "../docs/prometheus/zcloud-alerts.yml"

// The example alert rules load into Prometheus's own checker, and fire (or
// stay quiet) on the series in testdata as docs/operations.md says.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool, err := testenv.PromtoolBin()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", alertRules},
		{"test", "rules", "testdata/zcloud-alerts.test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every metric the rules use is one the worker serves, and every kind they
// select is one zcloud sets: a renamed metric or kind cannot leave an
// alert that never fires.
func TestAlertRulesUseServedMetrics(t *testing.T) {
	b, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	served := servedNames(t)
	kinds := []string{searchattr.KindReplicate, searchattr.KindSession, searchattr.KindArchive, searchattr.KindRestore,
		searchattr.KindDrill, searchattr.KindScrub, searchattr.KindGrow}
	metricRE := regexp.MustCompile(`\bzcloud_[a-z_]+\b`)
	kindRE := regexp.MustCompile(`kind=~?"([^"]+)"`)
	n := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			n++
			for _, m := range metricRE.FindAllString(r.Expr, -1) {
				if !served[m] {
					t.Errorf("alert %s uses %s, which the worker does not serve", r.Alert, m)
				}
			}
			for _, k := range kindRE.FindAllStringSubmatch(r.Expr, -1) {
				for _, kind := range strings.Split(k[1], "|") {
					if !slices.Contains(kinds, kind) {
						t.Errorf("alert %s selects kind %q, which no zcloud workflow has", r.Alert, kind)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules found")
	}
}

// servedNames are the metric family names a worker serves once it has
// recorded a run of each outcome.
func servedNames(t *testing.T) map[string]bool {
	m := New()
	now := time.Now()
	m.RunDone(Run{Kind: "replicate", Datasets: []string{"tank/a"}, Tier: "b", Outcome: "ok", Started: now.Add(-time.Minute), Ended: now, Bytes: 1})
	m.RunDone(Run{Kind: "archive", Datasets: []string{"tank/a"}, Tier: "archive", Outcome: "error", Started: now, Ended: now})
	m.SendDone("b", "ssh", 1, time.Second, nil)
	m.SnapshotDestroyed("tank/a")
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
	}
	return out
}
