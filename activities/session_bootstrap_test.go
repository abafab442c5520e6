package activities

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"zcloud/bootstrap"
	"zcloud/cloud/ec2"
	"zcloud/config"
)

func bootstrapTarget(t *testing.T, extra string) *config.EC2 {
	t.Helper()
	cfg, err := config.Parse([]byte(`
targets:
  nightly:
    kind: ec2
    ssh: {user: root, identity_file: /nonexistent/id_ed25519}
    ec2:
      region: us-east-1
      ami: ami-0123456789abcdef0
      instance_type: t3.micro
      pool: backup
      ` + extra + `
replications:
  - {source: tank/data, target: nightly, target_dataset: backup/data}
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Targets["nightly"].EC2
}

// A launched instance's user data carries the bootstrap script (as
// configured) and runs it at first boot; skip leaves it out.
func TestLaunchUserDataRunsTheBootstrap(t *testing.T) {
	hk, err := ec2.GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	type doc struct {
		Files []struct {
			Path, Permissions, Content string
		} `yaml:"write_files"`
		RunCmd [][]string `yaml:"runcmd"`
	}
	parse := func(e *config.EC2) doc {
		ud, err := launchUserData(e, hk, "ssh-ed25519 AAAA test")
		if err != nil {
			t.Fatal(err)
		}
		if len(ud) > 16<<10 {
			t.Fatalf("user data is %d bytes, EC2 takes 16 KiB", len(ud))
		}
		var d doc
		if err := yaml.Unmarshal([]byte(ud), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}

	e := bootstrapTarget(t, "unlock: {method: luks, key: k, devices: [{device: /dev/nvme1n1, name: zc0}]}\n      bootstrap: {arc_max_percent: 30, swap_file: /var/swap}")
	d := parse(e)
	want := bootstrap.Defaults()
	want.Cryptsetup, want.ARCMaxPercent, want.SwapFile = true, 30, "/var/swap"
	script, err := bootstrap.Script(want)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Files) != 1 || d.Files[0].Path != bootstrap.InstallPath || d.Files[0].Permissions != "0755" || d.Files[0].Content != script {
		t.Fatalf("write_files: %+v", d.Files)
	}
	if len(d.RunCmd) != 1 || strings.Join(d.RunCmd[0], " ") != bootstrap.InstallPath {
		t.Fatalf("runcmd: %v", d.RunCmd)
	}

	d = parse(bootstrapTarget(t, "bootstrap: {skip: true}"))
	if len(d.Files) != 0 || len(d.RunCmd) != 0 {
		t.Fatalf("skip: still bootstraps: %+v", d)
	}
}

// The session's SSH wait covers the bootstrap too (the workflow sizes the
// activity's timeout from the plan).
func TestPlanSessionWaitsForTheBootstrap(t *testing.T) {
	a := &Activities{}
	for _, c := range []struct {
		extra string
		want  string
	}{
		{"ssh_timeout: 2m", "22m0s"},
		{"ssh_timeout: 2m\n      bootstrap: {timeout: 5m}", "7m0s"},
		{"ssh_timeout: 2m\n      bootstrap: {skip: true}", "2m0s"},
	} {
		e := bootstrapTarget(t, c.extra)
		a.Config = &config.Config{Targets: map[string]config.Target{"nightly": {Kind: "ec2", EC2: e}},
			Replications: []config.Replication{{Source: "tank/data", Target: "nightly", TargetDataset: "backup/data"}}}
		p, err := a.PlanSession(t.Context(), "nightly")
		if err != nil {
			t.Fatal(err)
		}
		if p.SSHTimeout.String() != c.want {
			t.Errorf("%q: plan waits %s, want %s", c.extra, p.SSHTimeout, c.want)
		}
		// WaitSSH gets the planned waits, not the config's of the moment.
		if p.Wait == nil || p.Wait.SSH != e.SSHTimeout || p.Wait.SSH+p.Wait.Bootstrap != p.SSHTimeout || (p.Wait.Bootstrap == 0) != e.Bootstrap.Skip {
			t.Errorf("%q: plan's wait %+v", c.extra, p.Wait)
		}
	}
}
