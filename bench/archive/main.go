// Command archive benchmarks zcloud's archive pipeline (age encryption +
// SHA-256 of plain and stored bytes + split into parts + local-store
// write) against sha256sum of the same stream, the floor of the work, and
// measures the pipeline's peak RSS (VmHWM, reported by a child process
// running only the pipeline) for streams many times the part size.
//
//	go run ./bench/archive -size 4GiB
//
// With -parity K+M it compares the pipeline without parity and with
// Reed-Solomon parity K+M (part objects + parity objects) instead: runs
// interleaved, medians reported, and peak RSS of each.
//
//	go run ./bench/archive -size 2GiB -parity 10+2 -runs 5
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"

	"zcloud/archive"
	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
)

func main() {
	var (
		sizeS     = flag.String("size", "4GiB", "stream size for the throughput runs")
		partS     = flag.String("part", "16MiB", "part size of the local store")
		parallel  = flag.Int("parallel", 2, "parts written at once")
		dir       = flag.String("dir", "", "work directory (input file and store); default a temp dir")
		input     = flag.String("input", "", "stream file to use instead of a generated one")
		runs      = flag.Int("runs", 2, "runs of each throughput measurement; the best is reported")
		rssMult   = flag.String("rss", "10,40", "stream sizes for the RSS runs, in part sizes")
		child     = flag.Bool("child", false, "internal: run one pipeline on a generated stream and exit")
		keepInput = flag.Bool("keep", false, "keep the generated input file")
		parityS   = flag.String("parity", "", "K+M: compare the pipeline without and with Reed-Solomon parity K+M")
	)
	flag.Parse()
	size, err := parseSize(*sizeS)
	check(err)
	part, err := parseSize(*partS)
	check(err)
	if *dir == "" {
		*dir, err = os.MkdirTemp("", "zcloud-bench-")
		check(err)
		defer os.RemoveAll(*dir)
	}
	var spec archive.ParitySpec
	if *parityS != "" {
		_, err := fmt.Sscanf(*parityS, "%d+%d", &spec.Data, &spec.Parity)
		check(err)
		spec.PartSize = part
		check(spec.Check())
	}
	if *child {
		_, err := pipeline(&genReader{n: size, r: rand.NewChaCha8([32]byte{1})}, filepath.Join(*dir, "child-store"), part, *parallel, spec)
		check(err)
		// VmHWM of our own address space. rusage's ru_maxrss is not usable:
		// Go starts children with CLONE_VM, so the kernel charges the
		// parent's peak RSS (here: the in-process throughput runs) to the
		// child at exec.
		fmt.Println(vmHWM())
		return
	}

	path := *input
	if path == "" {
		path = filepath.Join(*dir, "stream.bin")
		fmt.Fprintf(os.Stderr, "writing %s of pseudo-random data to %s\n", human(size), path)
		check(writeInput(path, size))
		if !*keepInput {
			defer os.Remove(path)
		}
	}
	st, err := os.Stat(path)
	check(err)
	size = st.Size()

	fmt.Printf("CPU: %d cores (GOMAXPROCS %d), %s/%s, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("stream: %s (%d bytes), part size %s, %d parts in parallel\n\n", human(size), size, human(part), *parallel)
	if spec.On() {
		compareParity(path, *dir, size, part, *parallel, *runs, spec, *rssMult)
		return
	}

	// CPU seconds of the best run: wall time on a shared machine swings
	// with other load, CPU per byte much less.
	cpu := map[string]time.Duration{}
	best := func(name string, f func() (time.Duration, error)) time.Duration {
		var b time.Duration
		for i := 0; i < *runs; i++ {
			c0 := selfCPU()
			d, err := f()
			check(err)
			if b == 0 || d < b {
				b = d
				cpu[name] = selfCPU() - c0
			}
		}
		return b
	}
	floor := best("sha256sum", func() (time.Duration, error) {
		start := time.Now()
		cmd := exec.Command("sha256sum", path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("sha256sum: %v %s", err, out)
		}
		d := time.Since(start)
		cpu["sha256sum-child"] = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return d, nil
	})
	cpu["sha256sum"] = cpu["sha256sum-child"]
	goSHA := best("go", func() (time.Duration, error) {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		start := time.Now()
		h := sha256.New()
		_, err = io.CopyBuffer(h, f, make([]byte, 1<<20))
		return time.Since(start), err
	})
	pipe := best("pipeline", func() (time.Duration, error) {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		storeDir := filepath.Join(*dir, "store")
		defer os.RemoveAll(storeDir)
		start := time.Now()
		_, err = pipeline(f, storeDir, part, *parallel, archive.ParitySpec{})
		return time.Since(start), err
	})

	rate := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }
	perGiB := func(name string) float64 { return cpu[name].Seconds() / (float64(size) / (1 << 30)) }
	fmt.Println("| work on the same stream | time | MB/s | vs sha256sum | CPU s/GiB |")
	fmt.Println("|---|---:|---:|---:|---:|")
	fmt.Printf("| `sha256sum` (floor) | %.2fs | %.0f | 1.00× | %.2f |\n", floor.Seconds(), rate(floor), perGiB("sha256sum"))
	fmt.Printf("| Go crypto/sha256, one pass | %.2fs | %.0f | %.2f× | %.2f |\n", goSHA.Seconds(), rate(goSHA), floor.Seconds()/goSHA.Seconds(), perGiB("go"))
	fmt.Printf("| pipeline: age + SHA-256 ×3 (plain, stored, per part) + local store | %.2fs | %.0f | %.2f× | %.2f |\n\n",
		pipe.Seconds(), rate(pipe), floor.Seconds()/pipe.Seconds(), perGiB("pipeline"))

	fmt.Println("| stream (generated, child process) | stream / part size | peak RSS (VmHWM) |")
	fmt.Println("|---|---:|---:|")
	for _, m := range strings.Split(*rssMult, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(m))
		check(err)
		n := int64(k) * part
		cmd := exec.Command(os.Args[0], "-child", "-size", strconv.FormatInt(n, 10), "-part", strconv.FormatInt(part, 10),
			"-parallel", strconv.Itoa(*parallel), "-dir", *dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		check(err)
		kb, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		check(err)
		fmt.Printf("| %s | %d× | %s |\n", human(n), k, human(kb*1024))
		os.RemoveAll(filepath.Join(*dir, "child-store"))
	}
}

// compareParity runs the pipeline without and with parity, interleaved
// (off, on, off, on, ...) so that a change in the machine's load hits both
// alike, and prints the medians, then each one's peak RSS.
func compareParity(path, dir string, size, part int64, parallel, runs int, spec archive.ParitySpec, rssMult string) {
	fmt.Printf("load average before: %s", loadavg())
	one := func(sp archive.ParitySpec) (time.Duration, time.Duration) {
		f, err := os.Open(path)
		check(err)
		defer f.Close()
		storeDir := filepath.Join(dir, "store")
		defer os.RemoveAll(storeDir)
		c0, start := selfCPU(), time.Now()
		_, err = pipeline(f, storeDir, part, parallel, sp)
		check(err)
		return time.Since(start), selfCPU() - c0
	}
	var wall, cpu [2][]time.Duration
	for i := 0; i < runs; i++ {
		for j, sp := range []archive.ParitySpec{{}, spec} {
			w, c := one(sp)
			wall[j], cpu[j] = append(wall[j], w), append(cpu[j], c)
			fmt.Fprintf(os.Stderr, "run %d %s: %.2fs\n", i+1, []string{"no parity", "parity " + spec.String()}[j], w.Seconds())
		}
	}
	fmt.Printf("load average after:  %s\n", loadavg())
	if runs == 0 {
		rssTable(dir, part, parallel, spec, rssMult)
		return
	}
	gib := float64(size) / (1 << 30)
	fmt.Printf("| pipeline into the local store (median of %d interleaved runs) | time | MB/s | CPU s/GiB | stored |\n", runs)
	fmt.Println("|---|---:|---:|---:|---:|")
	for j, name := range []string{"no parity (one object)", fmt.Sprintf("parity %s (part objects + parity objects)", spec)} {
		w, c := median(wall[j]), median(cpu[j])
		stored := "1.00×"
		if j == 1 {
			stored = fmt.Sprintf("%.2f×", 1+float64(spec.Parity)/float64(spec.Data))
		}
		fmt.Printf("| %s | %.2fs | %.0f | %.2f | %s |\n", name, w.Seconds(), float64(size)/w.Seconds()/1e6, c.Seconds()/gib, stored)
	}
	fmt.Printf("\nall runs (s): no parity %s; parity %s\n\n", secs(wall[0]), secs(wall[1]))
	rssTable(dir, part, parallel, spec, rssMult)
}

// rssTable runs each pipeline on generated streams of the given multiples
// of the part size in a child process and prints their peak RSS.
func rssTable(dir string, part int64, parallel int, spec archive.ParitySpec, rssMult string) {
	fmt.Println("| stream (generated, child process) | stream / part size | peak RSS, no parity | peak RSS, parity " + spec.String() + " |")
	fmt.Println("|---|---:|---:|---:|")
	for _, m := range strings.Split(rssMult, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(m))
		check(err)
		n := int64(k) * part
		var rss [2]int64
		for j, ps := range []string{"", spec.String()} {
			args := []string{"-child", "-size", strconv.FormatInt(n, 10), "-part", strconv.FormatInt(part, 10),
				"-parallel", strconv.Itoa(parallel), "-dir", dir}
			if ps != "" {
				args = append(args, "-parity", ps)
			}
			cmd := exec.Command(os.Args[0], args...)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			check(err)
			rss[j], err = strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
			check(err)
			os.RemoveAll(filepath.Join(dir, "child-store"))
		}
		fmt.Printf("| %s | %d× | %s | %s |\n", human(n), k, human(rss[0]*1024), human(rss[1]*1024))
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func secs(d []time.Duration) string {
	var out []string
	for _, x := range d {
		out = append(out, fmt.Sprintf("%.2f", x.Seconds()))
	}
	return strings.Join(out, " ")
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	check(err)
	return string(b)
}

// pipeline archives r into a local store at dir, as an archive run does.
func pipeline(r io.Reader, dir string, part int64, parallel int, spec archive.ParitySpec) (archive.UploadResult, error) {
	st, err := local.New(dir, local.Options{PartSize: part, Parallel: parallel})
	if err != nil {
		return archive.UploadResult{}, err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return archive.UploadResult{}, err
	}
	return archive.Upload(context.Background(), archive.UploadInput{
		Store: st, Key: "bench/tank/data/c1/full-0000000000000001.zfs.age", Source: r,
		Recipients: []age.Recipient{id.Recipient()}, Class: objstore.Glacier,
		Parity: spec, Parallel: parallel,
	})
}

// genReader yields n pseudo-random bytes (incompressible, like encrypted
// or compressed datasets, and cheap to make).
type genReader struct {
	n int64
	r *rand.ChaCha8
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	g.r.Read(p)
	g.n -= int64(len(p))
	return len(p), nil
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmHWM is this process's peak resident set in KiB (/proc/self/status).
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	check(err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			check(err)
			return kb
		}
	}
	check(fmt.Errorf("no VmHWM in /proc/self/status"))
	return 0
}

func writeInput(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(f, &genReader{n: n, r: rand.NewChaCha8([32]byte{7})}, make([]byte, 4<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f * float64(u.mult)), err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
