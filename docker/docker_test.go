// Package docker holds the worker image and the compose file (docs/deploy.md).
// docker cannot pull images on the test machine, so this test checks what
// would make them fail to run: it parses the compose file and the Dockerfile,
// and runs the image's entrypoint with stand-ins for zfs and zcloud.
package docker

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type compose struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		DependsOn   dependsOn         `yaml:"depends_on"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Expose      []string          `yaml:"expose"`
		Devices     []string          `yaml:"devices"`
		Privileged  bool              `yaml:"privileged"`
		NetworkMode string            `yaml:"network_mode"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Restart string `yaml:"restart"`
	} `yaml:"services"`
}

// dependsOn is compose's depends_on in either form: a list of services
// (started, not necessarily healthy) or a map with conditions.
type dependsOn map[string]struct{ Condition string }

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		*d = dependsOn{}
		for _, s := range names {
			(*d)[s] = struct{ Condition string }{"service_started"}
		}
		return nil
	}
	m := map[string]struct{ Condition string }{}
	err := n.Decode(&m)
	*d = m
	return err
}

func readCompose(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("compose.yaml: no services")
	}
	return c
}

// loopbackPort is a published port bound to 127.0.0.1.
var loopbackPort = regexp.MustCompile(`^127\.0\.0\.1:\d+:\d+(/tcp|/udp)?$`)

func TestComposeRunsAsDocumented(t *testing.T) {
	c := readCompose(t)
	w, ok := c.Services["worker"]
	if !ok {
		t.Fatal("no worker service")
	}
	// The worker reaches Temporal by its service name: 127.0.0.1 in a
	// container is the container itself.
	addr := w.Environment["ZCLOUD_TEMPORAL_ADDRESS"]
	host, _, _ := strings.Cut(addr, ":")
	if _, ok := c.Services[host]; !ok {
		t.Errorf("worker's ZCLOUD_TEMPORAL_ADDRESS=%q does not name a service", addr)
	}
	// zfs on the host's pools.
	if !w.Privileged || len(w.Devices) == 0 || !strings.HasPrefix(w.Devices[0], "/dev/zfs:") {
		t.Errorf("worker: privileged=%v devices=%v; zfs needs /dev/zfs", w.Privileged, w.Devices)
	}
	if w.Build == nil || w.Build.Dockerfile == "" {
		t.Fatal("worker: no build")
	}
	if _, err := os.Stat(filepath.Join(w.Build.Context, w.Build.Dockerfile)); err != nil {
		t.Errorf("worker build: %v", err)
	}
	if w.DependsOn[host].Condition != "service_healthy" {
		t.Errorf("worker starts before %s is healthy: %+v", host, w.DependsOn)
	}
	for name, s := range c.Services {
		// Every service says whether it works, and restarts.
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 {
			t.Errorf("%s: no healthcheck", name)
		}
		if s.Restart == "" {
			t.Errorf("%s: no restart policy", name)
		}
		// No unauthenticated port on the network: loopback only.
		for _, p := range s.Ports {
			if !loopbackPort.MatchString(p) {
				t.Errorf("%s publishes %q: bind it to 127.0.0.1 (Temporal, the Web UI and PostgreSQL have no authentication here)", name, p)
			}
		}
		if s.NetworkMode == "host" {
			t.Errorf("%s: network_mode host exposes its ports on every address", name)
		}
		for dep, d := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
			if d.Condition == "service_healthy" && c.Services[dep].Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		// Images are pinned.
		if s.Image != "" && s.Build == nil && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
	}
	if w.Healthcheck == nil {
		return
	}
	if got := strings.Join(w.Healthcheck.Test, " "); !strings.Contains(got, "zcloud worker --check") {
		t.Errorf("worker healthcheck %q does not ask Temporal whether the worker polls", got)
	}
}

// dockerfile is the instructions of a Dockerfile (continuations joined).
func dockerfile(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	cur := ""
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if cur == "" && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if strings.HasSuffix(l, `\`) {
			cur += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		out = append(out, cur+l)
		cur = ""
	}
	return out
}

// The image has a zfs userland, the entrypoint that checks it against the
// host, a health check, and everything it copies exists and is not left
// out of the build context by .dockerignore.
func TestDockerfileBuildsAWorkerThatRunsZFS(t *testing.T) {
	ins := dockerfile(t)
	var final []string // instructions of the last stage
	for _, in := range ins {
		if strings.HasPrefix(in, "FROM ") {
			final = nil
		}
		final = append(final, in)
	}
	all := strings.Join(final, "\n")
	for _, want := range []string{"zfsutils-linux", "openssh-client", "ENTRYPOINT", "HEALTHCHECK", "zcloud\", \"worker\", \"--check"} {
		if !strings.Contains(all, want) {
			t.Errorf("final stage lacks %q", want)
		}
	}
	ignore := dockerignore(t)
	for _, in := range ins {
		f := strings.Fields(in)
		if f[0] != "COPY" || strings.HasPrefix(f[1], "--from") {
			continue
		}
		for _, src := range f[1 : len(f)-1] {
			if src == "." {
				continue
			}
			if _, err := os.Stat(filepath.Join("..", src)); err != nil {
				t.Errorf("COPY %s: %v", src, err)
			}
			if p := ignored(ignore, src); p != "" {
				t.Errorf("COPY %s: left out of the context by .dockerignore %q", src, p)
			}
		}
	}
	// Every package (and embedded file) the binary is built from is in the
	// context.
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{range .EmbedFiles}} {{$.Dir}}/{{.}}{{end}}{{end}}", "../starter").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module outside the repository
		}
		if pat := ignored(ignore, rel); pat != "" {
			t.Errorf("%s is needed by the build but .dockerignore %q leaves it out", rel, pat)
		}
	}
}

func dockerignore(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			pats = append(pats, l)
		}
	}
	for _, must := range []string{".git"} {
		if ignored(pats, must) == "" {
			t.Errorf(".dockerignore does not leave out %s", must)
		}
	}
	return pats
}

// ignored returns the pattern that leaves path (relative to the context)
// out, or "": a pattern matches the path or one of its parent directories;
// "**/" matches at any depth.
func ignored(pats []string, path string) string {
	parts := strings.Split(filepath.ToSlash(path), "/")
	for _, p := range pats {
		deep := strings.HasPrefix(p, "**/")
		pat := strings.TrimPrefix(p, "**/")
		for i := 1; i <= len(parts); i++ {
			for j := 0; j < i; j++ {
				if j > 0 && !deep {
					break
				}
				if ok, _ := filepath.Match(pat, strings.Join(parts[j:i], "/")); ok {
					return p
				}
			}
		}
	}
	return ""
}

// The entrypoint starts the worker only when the image's zfs userland has
// the host module's version. zfs and zcloud are stand-ins (shell scripts)
// here; the versions are those real OpenZFS prints (zfsexec/testdata).
func TestEntrypointChecksZFSVersions(t *testing.T) {
	dir := t.TempDir()
	fake := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fake("zcloud", `echo "zcloud ran: $*"`)
	run := func(versions string, env ...string) (string, error) {
		fake("zfs", "printf '%s\\n' '"+versions+"'")
		cmd := exec.Command("sh", "entrypoint.sh", "worker")
		cmd.Env = append(os.Environ(), append([]string{"PATH=" + dir + ":" + os.Getenv("PATH"),
			"ZCLOUD_BIN=" + filepath.Join(dir, "zcloud"), "ZCLOUD_ZFS_DEVICE=/dev/null"}, env...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("zfs-2.3.2-2~bpo12+2\nzfs-kmod-2.3.2-2~bpo12+2")
	if err != nil || !strings.Contains(out, "zcloud ran: worker") {
		t.Errorf("matching versions: %v\n%s", err, out)
	}
	out, err = run("zfs-2.1.11-1\nzfs-kmod-2.3.2-2~bpo12+2")
	if err == nil || strings.Contains(out, "zcloud ran") || !strings.Contains(out, "userland is 2.1 but the host's zfs kernel module is 2.3") {
		t.Errorf("mismatch: %v\n%s", err, out)
	}
	out, err = run("zfs-2.3.2-1\nzfs-kmod-2.3.2-1", "ZCLOUD_ZFS_DEVICE=/nonexistent/zfs")
	if err == nil || !strings.Contains(out, "/nonexistent/zfs is missing") {
		t.Errorf("no device: %v\n%s", err, out)
	}
	out, err = run("zfs-2.1.11-1\nzfs-kmod-2.3.2-2", "ZCLOUD_ZFS_CHECK=off")
	if err != nil || !strings.Contains(out, "zcloud ran: worker") {
		t.Errorf("check off: %v\n%s", err, out)
	}
}
