// Command transfer benchmarks zcloud's encrypted parallel transfer against
// ssh and mbuffer on loopback, moving the same stream through each:
//
//	go run ./bench/transfer -size 2GiB [-streams 4] [-cipher aes-256-gcm]
//
// Each side runs as its own OS process (the zcloud sides re-exec this binary),
// so CPU time and peak RSS come from each process's rusage.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

type config struct {
	size      int64
	smallSize int64
	streams   int
	cipher    string
	chunk     int
	window    int
	only      string
	mbufMem   string
	profile   string
	splice    string
	runs      int
	floor     bool

	// Across an emulated WAN (bench/wan sets these): the sending and the
	// receiving side run in these network namespaces, the receiver at host.
	sendNS, recvNS string
	host           string
	seconds        float64 // stream for this long instead of size
	linkMbit       float64 // the link's rate, for "% of link"
	zStreams       []int   // zcloud variants by stream count (0: automatic)
}

func main() {
	var cfg config
	var size, small, role string
	flag.StringVar(&size, "size", "2GiB", "stream size (e.g. 2GiB, 512MiB)")
	flag.StringVar(&small, "small-size", "256MiB", "second, smaller stream size for zcloud, to show receiver RSS does not grow with the stream")
	flag.IntVar(&cfg.streams, "streams", 4, "zcloud parallel TCP connections")
	flag.StringVar(&cfg.cipher, "cipher", "aes-256-gcm", "zcloud cipher: aes-256-gcm or chacha20-poly1305")
	flag.IntVar(&cfg.chunk, "chunk", 0, "zcloud chunk size in bytes (0 = package default)")
	flag.IntVar(&cfg.window, "window", 0, "zcloud receiver window in frames (0 = package default)")
	flag.StringVar(&cfg.only, "only", "zcloud,ssh,mbuffer,mbuffer-pipe", "which transports to run, comma separated (mbuffer-pipe: mbuffer's receiver feeding cat through a pipe, like zfs receive)")
	flag.BoolVar(&cfg.floor, "floor", false, "instead of the comparison, measure each unavoidable step (pipe, TCP, AES-GCM) alone and print the cost floor and throughput ceiling on this machine")
	flag.IntVar(&cfg.runs, "runs", 3, "runs of each transport, interleaved; the table shows the median")
	flag.StringVar(&cfg.mbufMem, "mbuffer-mem", "64M", "mbuffer -m (buffer memory) on both sides")
	flag.StringVar(&cfg.splice, "splice", "always", "zcloud receiver output: always (vmsplice into the command's pipe) or never (write)")
	flag.StringVar(&cfg.profile, "cpuprofile", "", "write CPU profiles of the zcloud send and recv processes to PREFIX.send and PREFIX.recv")
	flag.StringVar(&role, "role", "", "internal: run as the zcloud send or recv process")
	var zStreams string
	flag.StringVar(&cfg.sendNS, "send-netns", "", "run the sending side in this network namespace (bench/wan)")
	flag.StringVar(&cfg.recvNS, "recv-netns", "", "run the receiving side in this network namespace (bench/wan)")
	flag.StringVar(&cfg.host, "host", "127.0.0.1", "the receiving side's address")
	flag.Float64Var(&cfg.seconds, "seconds", 0, "stream for this many seconds (the input ends then) instead of -size")
	flag.Float64Var(&cfg.linkMbit, "link-mbit", 0, "the link's rate in Mbit/s, for a % of link column")
	flag.StringVar(&zStreams, "zcloud-streams", "", "zcloud variants by stream count, comma separated (0: automatic); default: -streams")
	var roleArgs roleFlags
	roleArgs.register()
	flag.Parse()
	cfg.zStreams = []int{cfg.streams}
	if zStreams != "" {
		cfg.zStreams = nil
		for _, f := range strings.Split(zStreams, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				fatal(fmt.Errorf("-zcloud-streams: %w", err))
			}
			cfg.zStreams = append(cfg.zStreams, n)
		}
	}

	if role != "" {
		if err := runRole(role, roleArgs); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", role, err)
			os.Exit(1)
		}
		return
	}
	var err error
	if cfg.size, err = parseSize(size); err != nil {
		fatal(err)
	}
	if cfg.smallSize, err = parseSize(small); err != nil {
		fatal(err)
	}
	if cfg.floor {
		if err := runFloor(cfg); err != nil {
			fatal(err)
		}
		return
	}
	if err := run(cfg); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func run(cfg config) error {
	amount := humanSize(cfg.size)
	if cfg.seconds > 0 {
		amount = fmt.Sprintf("for %gs", cfg.seconds)
	}
	fmt.Printf("stream %s of incompressible data to %s, %d CPUs (%s/%s), %s, %d run(s) each, interleaved\n",
		amount, cfg.host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, cpuModel(), cfg.runs)
	want := func(name string) bool { return strings.Contains(","+cfg.only+",", ","+name+",") }
	type transport struct {
		name string
		run  func() (result, error)
	}
	var transports []transport
	for _, n := range cfg.zStreams {
		c := cfg
		c.streams = n
		transports = append(transports, transport{"zcloud", func() (result, error) { return runZcloud(c, c.size) }})
	}
	transports = append(transports,
		transport{"ssh", func() (result, error) { return runSSH(cfg) }},
		transport{"mbuffer", func() (result, error) { return runMbuffer(cfg, false) }},
		transport{"mbuffer-pipe", func() (result, error) { return runMbuffer(cfg, true) }},
	)
	runs := map[string][]result{}
	var order []string
	for i := range cfg.runs {
		for _, t := range transports {
			if !want(t.name) {
				continue
			}
			r, err := t.run()
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if i == 0 {
				order = append(order, r.name)
			}
			runs[r.name] = append(runs[r.name], r)
			if cfg.runs > 1 {
				fmt.Printf("  run %d %-48s %6s MB/s  %.2f CPU s/GiB  send RSS %.1f MiB  recv RSS %.1f MiB\n", i+1, r.name, mbps(r.mbps()), r.cpuPerGiB(), r.send.rssMiB(), r.recv.rssMiB())
			}
		}
	}
	var results []result
	for _, name := range order {
		results = append(results, median(runs[name]))
	}
	printTable(results, cfg.runs, cfg.linkMbit)
	if want("zcloud") && cfg.seconds == 0 && cfg.smallSize > 0 && cfg.smallSize != cfg.size {
		small, err := runZcloud(cfg, cfg.smallSize)
		if err != nil {
			return fmt.Errorf("zcloud small: %w", err)
		}
		big := runs[results[0].name][0]
		fmt.Printf("\nzcloud receiver peak RSS by stream size (should not grow with it):\n")
		fmt.Printf("  %-10s recv RSS %6.1f MiB   send RSS %6.1f MiB   %7.0f MB/s\n", humanSize(small.bytes), small.recv.rssMiB(), small.send.rssMiB(), small.mbps())
		fmt.Printf("  %-10s recv RSS %6.1f MiB   send RSS %6.1f MiB   %7.0f MB/s\n", humanSize(big.bytes), big.recv.rssMiB(), big.send.rssMiB(), big.mbps())
	}
	return nil
}

// median is the run with the median throughput (the middle one of an odd
// count, the lower middle of an even one), its min and max attached.
func median(rs []result) result {
	sorted := append([]result(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].mbps() < sorted[j].mbps() })
	m := sorted[(len(sorted)-1)/2]
	m.minMBps, m.maxMBps = sorted[0].mbps(), sorted[len(sorted)-1].mbps()
	return m
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
