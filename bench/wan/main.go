// Command wan emulates a wide-area link on this machine and benchmarks
// zcloud's transfer against ssh and mbuffer through it:
//
//	go run ./bench/wan -selfcheck                    # the emulator alone
//	go run ./bench/wan -profiles c,b,a -cc cubic,bbr # the comparison (as root)
//
// The link is two network namespaces joined by TUN devices and a forwarder in
// this process (see link.go); the contenders are bench/transfer's, built and
// run with its sending side in one namespace and its receiving side in the
// other. For a CUBIC run the machine's default congestion control
// (net.ipv4.tcp_congestion_control, which new namespaces inherit) is switched
// for the run and restored after; zcloud picks BBR on its own sockets anyway.
// Everything created is removed at the end, also on Ctrl-C.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const ccSysctl = "/proc/sys/net/ipv4/tcp_congestion_control"

func main() {
	var (
		role, addr                  string
		seconds                     float64
		selfcheck                   bool
		profList, ccList, only      string
		zStreams                    string
		runs                        int
		rateOverride, rttOverride   string
		lossOverride, queueOverride string
	)
	flag.StringVar(&role, "role", "", "internal: sink or source (self-check traffic inside a namespace)")
	flag.StringVar(&addr, "addr", "", "internal: address for the role")
	flag.Float64Var(&seconds, "seconds", 30, "seconds each contender streams per run (input is cut after that; at least 30 for the issue's table)")
	flag.BoolVar(&selfcheck, "selfcheck", false, "check the emulator: one TCP flow on a short clean path, and the RTT of a probe on each profile")
	flag.StringVar(&profList, "profiles", "c,b,a", "profiles to run: a (1 Gbit/s, 80 ms, 0.01 %), b (200 Mbit/s, 150 ms, 0.1 %), c (100 Mbit/s, 20 ms, 1 %), or custom (with -rate -rtt -loss)")
	flag.StringVar(&ccList, "cc", "cubic,bbr", "machine default congestion control for the runs, comma separated")
	flag.StringVar(&only, "only", "ssh,mbuffer,zcloud", "contenders (bench/transfer -only)")
	flag.StringVar(&zStreams, "zcloud-streams", "0,1,2,4,8,16", "zcloud stream counts, 0 = automatic (the default)")
	flag.IntVar(&runs, "runs", 3, "interleaved runs of each contender; the table shows the median")
	flag.StringVar(&rateOverride, "rate", "", "custom profile: rate in Mbit/s")
	flag.StringVar(&rttOverride, "rtt", "", "custom profile: round-trip time (e.g. 20ms)")
	flag.StringVar(&lossOverride, "loss", "", "custom profile: loss probability per direction (e.g. 0.01)")
	flag.StringVar(&queueOverride, "queue", "", "bottleneck queue in bytes (default: one bandwidth-delay product)")
	flag.Parse()

	switch role {
	case "sink":
		fatalIf(runSink(addr))
		return
	case "source":
		fatalIf(runSource(addr, seconds))
		return
	case "":
	default:
		fatalIf(errors.New("unknown role " + role))
	}
	if os.Geteuid() != 0 {
		fatalIf(errors.New("needs root (network namespaces, TUN devices, the congestion-control sysctl)"))
	}
	if rateOverride != "" {
		var p profile
		var err error
		p.name = "custom"
		p.rateMbit, err = strconv.ParseFloat(rateOverride, 64)
		fatalIf(err)
		p.rtt, err = time.ParseDuration(rttOverride)
		fatalIf(err)
		if lossOverride != "" {
			p.loss, err = strconv.ParseFloat(lossOverride, 64)
			fatalIf(err)
		}
		profiles["custom"] = p
	}
	if queueOverride != "" {
		q, err := strconv.Atoi(queueOverride)
		fatalIf(err)
		for k, p := range profiles {
			p.queue = q
			profiles[k] = p
		}
	}

	origCC, err := os.ReadFile(ccSysctl)
	fatalIf(err)
	cleanup := func() {
		removeNamespaces()
		os.WriteFile(ccSysctl, origCC, 0o644)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\ninterrupted: removing the namespaces, restoring", ccSysctl)
		cleanup()
		os.Exit(130)
	}()
	defer cleanup()

	if selfcheck {
		fatalIf(runSelfcheck(strings.Split(profList, ",")))
		return
	}
	bin, err := buildTransferBench()
	fatalIf(err)
	defer os.RemoveAll(filepath.Dir(bin))
	for _, name := range strings.Split(profList, ",") {
		p, ok := profiles[name]
		if !ok {
			fatalIf(fmt.Errorf("unknown profile %q", name))
		}
		for _, cc := range strings.Split(ccList, ",") {
			fatalIf(runProfile(bin, p, cc, only, zStreams, runs, seconds))
		}
	}
}

func fatalIf(err error) {
	if err != nil {
		removeNamespaces()
		fmt.Fprintln(os.Stderr, "wan:", err)
		os.Exit(1)
	}
}

// withCC sets the machine's default congestion control (new namespaces
// inherit it) and checks that the namespaces got it.
func withCC(cc string) error {
	if err := os.WriteFile(ccSysctl, []byte(cc), 0o644); err != nil {
		return fmt.Errorf("setting %s to %s: %w", ccSysctl, cc, err)
	}
	return nil
}

func nsCC(ns string) string {
	out, _ := exec.Command("ip", "netns", "exec", ns, "cat", ccSysctl).Output()
	return strings.TrimSpace(string(out))
}

// buildTransferBench builds bench/transfer into a temporary directory.
func buildTransferBench() (string, error) {
	dir, err := os.MkdirTemp("", "zcloud-wan-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "transfer-bench")
	cmd := exec.Command("go", "build", "-o", bin, "./bench/transfer")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building bench/transfer (run from the repository root): %w", err)
	}
	return bin, nil
}

func runProfile(bin string, p profile, cc, only, zStreams string, runs int, seconds float64) error {
	if err := withCC(cc); err != nil {
		return err
	}
	l, err := setupLink(p)
	if err != nil {
		return err
	}
	defer l.close()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\n## profile %s, machine default congestion control %s (in the namespaces: %s), queue %d KiB, load average %s\n",
		p, cc, nsCC(nsSend), p.queueBytes()>>10, strings.Join(strings.Fields(string(load))[:3], " "))
	args := []string{"-send-netns", nsSend, "-recv-netns", nsRecv, "-host", addrRecv,
		"-seconds", fmt.Sprint(seconds), "-runs", strconv.Itoa(runs), "-only", only,
		"-zcloud-streams", zStreams, "-link-mbit", fmt.Sprint(p.rateMbit), "-small-size", "0"}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Printf("%s %s\n", filepath.Base(bin), strings.Join(args, " "))
	err = cmd.Run()
	fmt.Print("link counters:\n" + l.stats())
	return err
}

// runSelfcheck measures, on a short clean path, what one TCP flow reaches
// against the link rate, and on each profile the RTT of a 1-byte echo.
func runSelfcheck(names []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The clean paths get a 1 MiB queue: a one-BDP queue of 2 ms is too
	// short for a single flow's slow start (that is TCP, not the emulator).
	checks := []profile{{name: "clean", rateMbit: 100, rtt: 2 * time.Millisecond, queue: 1 << 20}, {name: "clean", rateMbit: 1000, rtt: 2 * time.Millisecond, queue: 1 << 20}}
	for _, n := range names {
		if p, ok := profiles[n]; ok {
			checks = append(checks, p)
		}
	}
	for _, p := range checks {
		l, err := setupLink(p)
		if err != nil {
			return err
		}
		sinkAddr := net.JoinHostPort(addrRecv, "5201")
		sink := exec.Command("ip", "netns", "exec", nsRecv, self, "-role", "sink", "-addr", sinkAddr)
		sink.Stderr = os.Stderr
		if err := sink.Start(); err != nil {
			l.close()
			return err
		}
		secs := 5.0
		if p.name != "clean" {
			secs = 10
		}
		out, err := exec.Command("ip", "netns", "exec", nsSend, self, "-role", "source", "-addr", sinkAddr, "-seconds", fmt.Sprint(secs)).CombinedOutput()
		sink.Process.Kill()
		sink.Wait()
		fmt.Printf("self-check %s (cc %s): %s", p, nsCC(nsSend), out)
		fmt.Print(l.stats())
		l.close()
		if err != nil {
			return fmt.Errorf("self-check: %v", err)
		}
	}
	return nil
}

// runSink serves the self-check: a connection starting with 'p' is echoed
// byte by byte; one starting with 'd' is counted until EOF and the count
// sent back.
func runSink(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			mode, err := br.ReadByte()
			if err != nil {
				return
			}
			if mode == 'p' {
				io.Copy(c, br)
				return
			}
			n, _ := io.Copy(io.Discard, br)
			fmt.Fprintf(c, "%d\n", n)
		}()
	}
}

// runSource probes the RTT (median of 20 one-byte echoes) and then streams for
// seconds on one TCP connection, printing both.
func runSource(addr string, seconds float64) error {
	var c net.Conn
	var err error
	for range 100 { // the sink may not listen yet: it starts beside us
		if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	c.Write([]byte{'p'})
	var rtts []time.Duration
	b := []byte{0}
	for range 20 {
		t := time.Now()
		if _, err := c.Write(b); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		rtts = append(rtts, time.Since(t))
	}
	c.Close()
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })

	d, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	d.Write([]byte{'d'})
	buf := make([]byte, 1<<20)
	start := time.Now()
	deadline := start.Add(time.Duration(seconds * float64(time.Second)))
	for time.Now().Before(deadline) {
		if _, err := d.Write(buf); err != nil {
			return err
		}
	}
	d.(*net.TCPConn).CloseWrite()
	line, err := bufio.NewReader(d).ReadString('\n')
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	n, _ := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	fmt.Printf("RTT median %v (min %v, max %v); one TCP flow %.1f Mbit/s over %.1f s\n",
		rtts[len(rtts)/2].Round(10*time.Microsecond), rtts[0].Round(10*time.Microsecond), rtts[len(rtts)-1].Round(10*time.Microsecond),
		float64(n)*8/elapsed.Seconds()/1e6, elapsed.Seconds())
	return nil
}
