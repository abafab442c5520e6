package config

import (
	"strings"
	"testing"
)

func TestBootstrapConfigErrors(t *testing.T) {
	launch := "ami: ami-0123456789abcdef0\n      instance_type: t3.micro\n      "
	for extra, want := range map[string]string{
		launch + "bootstrap: {arc_max_percent: 95}":                                                  "ec2.bootstrap: bootstrap: arc max percent must be 1..90",
		launch + "bootstrap: {swap_file: 'swap'}":                                                    "swap file must be an absolute path",
		launch + "bootstrap: {swap_file: '/a b'}":                                                    "swap file must be an absolute path",
		launch + "bootstrap: {packages: sometimes}":                                                  "ec2.bootstrap.packages: must be install or never",
		"mode: start-stop\n      instance_id: i-0123456789abcdef0\n      bootstrap: {no_swap: true}": "ec2.bootstrap: only for mode: launch-terminate",
	} {
		hostKey := ""
		if strings.Contains(extra, "start-stop") {
			hostKey = `, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"`
		}
		_, err := Parse([]byte(`
targets:
  nightly:
    kind: ec2
    ssh: {user: root, identity_file: /x/id` + hostKey + `}
    ec2:
      region: us-east-1
      pool: backup
      ` + extra + `
replications:
  - {source: tank/data, target: nightly, target_dataset: backup/data}
`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", extra, err, want)
		}
	}
	// The defaults, and no_swap.
	c, err := Parse([]byte(`
targets:
  nightly:
    kind: ec2
    ssh: {user: root, identity_file: /x/id}
    ec2: {region: us-east-1, pool: backup, ami: ami-0123456789abcdef0, instance_type: t3.micro, bootstrap: {no_swap: true}}
replications:
  - {source: tank/data, target: nightly, target_dataset: backup/data}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Targets["nightly"].EC2.Bootstrap
	o := b.Options(false)
	if b.Timeout.String() != "20m0s" || !o.InstallPackages || o.ARCMaxPercent != 50 || o.SwapBelowMiB != 0 || o.SwapMiB != 0 {
		t.Errorf("defaults with no_swap: %+v -> %+v", b, o)
	}
}
