package bootstrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeScript(t *testing.T, o Options) string {
	t.Helper()
	s, err := Script(o)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "zcloud-bootstrap")
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScriptIsValidShell(t *testing.T) {
	p := writeScript(t, Defaults())
	if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
	s, _ := Script(Defaults())
	// It travels in the user data with the host key: EC2 allows 16 KiB.
	if len(s) > 10<<10 {
		t.Errorf("script is %d bytes: leaves too little of EC2's 16 KiB user data", len(s))
	}
}

// The plan is the arithmetic the script does on the instance's memory,
// checked on the sizes of common small and large instance types.
func TestScriptPlan(t *testing.T) {
	p := writeScript(t, Defaults())
	for _, c := range []struct {
		name   string
		memKiB string
		want   string
	}{
		// 1 GiB (t3.micro): half would leave less than the 1 GiB reserve,
		// so the ARC gets its floor, and swap is added.
		{"1GiB", "1048576", "mem_mib=1024 arc_max=134217728 swap_mib=2048"},
		// 2 GiB: half leaves exactly the reserve.
		{"2GiB", "2097152", "mem_mib=2048 arc_max=1073741824 swap_mib=2048"},
		// t3.medium's MemTotal (a little under 4 GiB): still small.
		{"t3.medium", "3944512", "mem_mib=3852 arc_max=2019557376 swap_mib=2048"},
		// 4 GiB and up: no swap.
		{"4GiB", "4194304", "mem_mib=4096 arc_max=2147483648 swap_mib=0"},
		{"16GiB", "16777216", "mem_mib=16384 arc_max=8589934592 swap_mib=0"},
		// 1.5 GiB: half is 768, reserve wins: 512 MiB.
		{"1.5GiB", "1572864", "mem_mib=1536 arc_max=536870912 swap_mib=2048"},
	} {
		out, err := exec.Command("sh", p, "--plan="+c.memKiB).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != c.want {
			t.Errorf("%s: plan %q, want %q", c.name, got, c.want)
		}
	}
	// This machine's own memory is read from /proc/meminfo.
	out, err := exec.Command("sh", p, "--plan").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "mem_mib=") {
		t.Fatalf("--plan on this machine: %v %q", err, out)
	}
	// Other options change the plan.
	o := Defaults()
	o.ARCMaxPercent, o.SwapBelowMiB = 25, 0
	out, err = exec.Command("sh", writeScript(t, o), "--plan=16777216").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "mem_mib=16384 arc_max=4294967296 swap_mib=0" {
		t.Fatalf("25%%, no swap: %v %q", err, out)
	}
}

func TestScriptRefusesBadOptions(t *testing.T) {
	for name, mod := range map[string]func(*Options){
		"percent 0":       func(o *Options) { o.ARCMaxPercent = 0 },
		"percent 95":      func(o *Options) { o.ARCMaxPercent = 95 },
		"floor 64":        func(o *Options) { o.ARCFloorMiB = 64 },
		"relative swap":   func(o *Options) { o.SwapFile = "swapfile" },
		"shell in swap":   func(o *Options) { o.SwapFile = "/swap$(id)" },
		"space in swap":   func(o *Options) { o.SwapFile = "/swap file" },
		"dotdot in swap":  func(o *Options) { o.SwapFile = "/../etc/passwd" },
		"swap without mb": func(o *Options) { o.SwapMiB = 0 },
	} {
		o := Defaults()
		mod(&o)
		if _, err := Script(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// No swap at all needs no swap file.
	o := Defaults()
	o.SwapBelowMiB, o.SwapMiB, o.SwapFile = 0, 0, ""
	if _, err := Script(o); err != nil {
		t.Errorf("no swap: %v", err)
	}
}
