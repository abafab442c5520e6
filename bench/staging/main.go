// Command staging benchmarks zcloud's file-level staging engine:
//
//   - an initial (full) staging run against Debian's `age` CLI encrypting
//     the same files one by one (`age -r RECIPIENT -o OUT IN` per file);
//   - an incremental run after 1% of the files changed, for two dataset
//     sizes 10x apart: its time should follow the change, not the dataset.
//
// The source is a plain directory (the engine reads a snapshot's directory
// the same way); the incremental's changes are the `zfs diff` lines that
// the change produces (M for each rewritten file).
//
//	go run ./bench/staging -files 1000,10000
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"

	"zcloud/staging"
)

func main() {
	var (
		filesS  = flag.String("files", "1000,10000", "dataset sizes in files (each 1-32 KiB of random bytes)")
		ageCLI  = flag.String("age", "age", "the age CLI for the comparison ('' skips it)")
		dir     = flag.String("dir", "", "work directory (default a temp dir)")
		runs    = flag.Int("runs", 3, "runs of each measurement; the median is reported")
		par     = flag.Int("parallel", 0, "files encrypted at once (0: CPUs)")
		noFsync = flag.Bool("nofsync", false, "skip fsync before renames")
	)
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "zcloud-staging-bench-")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	id, err := age.GenerateX25519Identity()
	check(err)
	fmt.Printf("# %d CPUs, parallel %d, fsync %v, %d runs (median)\n", runtime.NumCPU(), *par, !*noFsync, *runs)
	for _, fs := range strings.Split(*filesS, ",") {
		n, err := strconv.Atoi(fs)
		check(err)
		src := filepath.Join(*dir, fmt.Sprintf("src-%d", n))
		bytes := makeTree(src, n, uint64(n))
		fmt.Printf("\n## %d files, %.1f MiB\n", n, float64(bytes)/(1<<20))

		var full []time.Duration
		var st *staging.Stager
		for r := 0; r < *runs; r++ {
			dst := filepath.Join(*dir, fmt.Sprintf("stg-%d", n))
			os.RemoveAll(dst)
			dropCaches()
			st = &staging.Stager{Source: src, Dir: dst, Options: staging.Options{Recipients: []age.Recipient{id.Recipient()}, Parallel: *par, NoFsync: *noFsync}}
			t0 := time.Now()
			_, err := st.Full(context.Background(), "s0")
			check(err)
			full = append(full, time.Since(t0))
		}
		fmt.Printf("zcloud initial staging:      %8.3f s  (%.0f files/s, %.1f MiB/s)\n", med(full).Seconds(),
			float64(n)/med(full).Seconds(), float64(bytes)/(1<<20)/med(full).Seconds())

		if *ageCLI != "" {
			var cli []time.Duration
			for r := 0; r < *runs; r++ {
				out := filepath.Join(*dir, fmt.Sprintf("age-%d", n))
				os.RemoveAll(out)
				dropCaches()
				cli = append(cli, ageOneByOne(*ageCLI, id.Recipient().String(), src, out))
			}
			fmt.Printf("age CLI, one file at a time: %8.3f s  (%.0f files/s)  -> zcloud is %.1fx\n", med(cli).Seconds(),
				float64(n)/med(cli).Seconds(), med(cli).Seconds()/med(full).Seconds())
		}

		// Incrementals: 1% of the files rewritten each time.
		var inc []time.Duration
		changed := n / 100
		for r := 0; r < *runs; r++ {
			from, to := fmt.Sprintf("s%d", r), fmt.Sprintf("s%d", r+1)
			changes := touch(src, n, changed, uint64(r+1))
			dropCaches()
			t0 := time.Now()
			rep, err := st.Incremental(context.Background(), from, to, changes)
			check(err)
			inc = append(inc, time.Since(t0))
			if rep.Files != changed {
				panic(fmt.Sprintf("incremental staged %d files, want %d", rep.Files, changed))
			}
		}
		fmt.Printf("zcloud incremental, 1%% (%d files) changed: %8.3f s  (%.2f ms per changed file; full run / incremental = %.0f)\n",
			changed, med(inc).Seconds(), float64(med(inc).Microseconds())/1000/float64(changed), med(full).Seconds()/med(inc).Seconds())
	}
}

func name(i int) string { return fmt.Sprintf("d%02d/e%d/f%06d", i%50, i%7, i) }

// makeTree writes n files of 1-32 KiB random bytes and returns the total.
func makeTree(dir string, n int, seed uint64) int64 {
	r := rand.New(rand.NewPCG(seed, 7))
	var total int64
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, name(i))
		check(os.MkdirAll(filepath.Dir(p), 0o755))
		b := make([]byte, 1024+r.IntN(31*1024))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		check(os.WriteFile(p, b, 0o644))
		total += int64(len(b))
	}
	return total
}

// touch rewrites k distinct files and returns the changes zfs diff lists.
func touch(dir string, n, k int, seed uint64) []staging.Change {
	r := rand.New(rand.NewPCG(seed, 11))
	seen := map[int]bool{}
	var cs []staging.Change
	for len(cs) < k {
		i := r.IntN(n)
		if seen[i] {
			continue
		}
		seen[i] = true
		p := filepath.Join(dir, name(i))
		b, err := os.ReadFile(p)
		check(err)
		b[0]++
		check(os.WriteFile(p, b, 0o644))
		cs = append(cs, staging.Change{Kind: 'M', Type: 'F', Path: name(i)})
	}
	return cs
}

// ageOneByOne runs the age CLI once per file, as a shell loop would.
func ageOneByOne(bin, rcpt, src, out string) time.Duration {
	var files []string
	check(filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
		}
		return err
	}))
	t0 := time.Now()
	for _, f := range files {
		rel, _ := filepath.Rel(src, f)
		o := filepath.Join(out, rel)
		check(os.MkdirAll(filepath.Dir(o), 0o755))
		if b, err := exec.Command(bin, "-r", rcpt, "-o", o, f).CombinedOutput(); err != nil {
			panic(fmt.Sprintf("%s: %v %s", bin, err, b))
		}
	}
	return time.Since(t0)
}

// dropCaches writes back dirty pages between runs (the page cache itself
// stays: every run reads warm files, both sides alike).
func dropCaches() { exec.Command("sync").Run() }

func med(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
