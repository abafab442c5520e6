package zfsexec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"zcloud/zfsname"
)

// Zpool runs zpool commands on one host.
type Zpool struct {
	R    Runner
	Caps Capabilities
}

func (z Zpool) run(ctx context.Context, argv ...string) (Result, error) {
	return z.R.Run(ctx, Cmd{Argv: argv})
}

// Redundancy is the vdev type of a layout.
type Redundancy string

const (
	Stripe Redundancy = "stripe" // no redundancy: each device its own vdev
	Mirror Redundancy = "mirror"
	RaidZ1 Redundancy = "raidz1"
	RaidZ2 Redundancy = "raidz2"
	RaidZ3 Redundancy = "raidz3"
)

// minWidth is the fewest devices a vdev of each type may have.
var minWidth = map[Redundancy]int{Stripe: 1, Mirror: 2, RaidZ1: 2, RaidZ2: 3, RaidZ3: 4}

// Layout is vdevs × width devices of one redundancy ("2 × raidz1 of 3").
type Layout struct {
	Redundancy Redundancy
	Width      int // devices per vdev (1 for Stripe)
}

// VdevArgs groups devices into the layout's vdevs: "raidz1 d1 d2 d3 raidz1 d4 d5 d6".
func (l Layout) VdevArgs(devs []zfsname.Device) ([]string, error) {
	min, ok := minWidth[l.Redundancy]
	if !ok {
		return nil, fmt.Errorf("zpool layout: unknown redundancy %q", l.Redundancy)
	}
	width := l.Width
	if l.Redundancy == Stripe && width == 0 {
		width = 1
	}
	if width < min {
		return nil, fmt.Errorf("zpool layout: %s needs at least %d devices per vdev, got %d", l.Redundancy, min, width)
	}
	if len(devs) == 0 || len(devs)%width != 0 {
		return nil, fmt.Errorf("zpool layout: %d devices do not fill vdevs of %d", len(devs), width)
	}
	seen := map[string]bool{}
	var args []string
	for i, d := range devs {
		if d.String() == "" {
			return nil, errors.New("zpool layout: empty device")
		}
		if seen[d.String()] {
			return nil, fmt.Errorf("zpool layout: device %s given twice", d)
		}
		seen[d.String()] = true
		if i%width == 0 && l.Redundancy != Stripe {
			args = append(args, string(l.Redundancy))
		}
		args = append(args, d.String())
	}
	return args, nil
}

// PoolCreateOptions for Create. Ashift 0 means 12 (4 KiB sectors, right
// for EBS and modern disks); autoexpand is always on so grown volumes count.
type PoolCreateOptions struct {
	Force      bool   // -f: use devices that look in use
	Mountpoint string // -m: absolute path or "none"; "" = /<pool>
	Ashift     int
	FSProps    Props // -O: root filesystem properties
}

// CreateArgv builds zpool create.
func (z Zpool) CreateArgv(p zfsname.Pool, l Layout, devs []zfsname.Device, o PoolCreateOptions) ([]string, error) {
	vdevs, err := l.VdevArgs(devs)
	if err != nil {
		return nil, err
	}
	ashift := o.Ashift
	if ashift == 0 {
		ashift = 12
	}
	if ashift < 9 || ashift > 16 {
		return nil, fmt.Errorf("zpool create: ashift %d out of range 9..16", ashift)
	}
	argv := []string{"zpool", "create"}
	if o.Force {
		argv = append(argv, "-f")
	}
	argv = append(argv, "-o", fmt.Sprintf("ashift=%d", ashift), "-o", "autoexpand=on")
	argv = append(argv, o.FSProps.args("-O")...)
	if o.Mountpoint != "" {
		if o.Mountpoint != "none" {
			if _, err := zfsname.ParseDevice(o.Mountpoint); err != nil {
				return nil, fmt.Errorf("zpool create: mountpoint: %w", err)
			}
		}
		argv = append(argv, "-m", o.Mountpoint)
	}
	argv = append(argv, p.String())
	return append(argv, vdevs...), nil
}

// Create makes pool p from devs laid out as l.
func (z Zpool) Create(ctx context.Context, p zfsname.Pool, l Layout, devs []zfsname.Device, o PoolCreateOptions) error {
	argv, err := z.CreateArgv(p, l, devs, o)
	if err != nil {
		return err
	}
	_, err = z.R.Run(ctx, Cmd{Argv: argv})
	return err
}

// Destroy destroys pool p and everything in it.
func (z Zpool) Destroy(ctx context.Context, p zfsname.Pool, force bool) error {
	argv := []string{"zpool", "destroy"}
	if force {
		argv = append(argv, "-f")
	}
	_, err := z.R.Run(ctx, Cmd{Argv: append(argv, p.String())})
	return err
}

// Export exports p (unmounts, marks it free for another host).
func (z Zpool) Export(ctx context.Context, p zfsname.Pool, force bool) error {
	argv := []string{"zpool", "export"}
	if force {
		argv = append(argv, "-f")
	}
	_, err := z.R.Run(ctx, Cmd{Argv: append(argv, p.String())})
	return err
}

// ImportOptions for Import and ImportCandidates.
type ImportOptions struct {
	Dirs []zfsname. // -d: directories (or device nodes) to search; none = default
		Device
	Force bool // -f: import a pool last used by another host
}

func (o ImportOptions) dirArgs() []string {
	var a []string
	for _, d := range o.Dirs {
		a = append(a, "-d", d.String())
	}
	return a
}

// Import imports p by name.
func (z Zpool) Import(ctx context.Context, p zfsname.Pool, o ImportOptions) error {
	argv := append([]string{"zpool", "import"}, o.dirArgs()...)
	if o.Force {
		argv = append(argv, "-f")
	}
	_, err := z.R.Run(ctx, Cmd{Argv: append(argv, p.String())})
	return err
}

// ImportCandidates lists pools that could be imported (zpool import without
// a name). None found is an empty list, not an error.
func (z Zpool) ImportCandidates(ctx context.Context, o ImportOptions) ([]ImportCandidate, error) {
	argv := append([]string{"zpool", "import"}, o.dirArgs()...)
	res, err := z.R.Run(ctx, Cmd{Argv: argv})
	if err != nil {
		var ee *ExitError
		// OpenZFS says "no pools available to import"; zfs-fuse exits 1
		// saying nothing at all.
		if errors.As(err, &ee) && ee.Code == 1 && (strings.Contains(ee.Stderr, "no pools available") ||
			strings.TrimSpace(ee.Stderr) == "" && len(res.Stdout) == 0) {
			return nil, nil
		}
		return nil, err
	}
	return parseImportCandidates(res.Stdout)
}

// Replace replaces old with new and starts a resilver (wait with Wait).
func (z Zpool) Replace(ctx context.Context, p zfsname.Pool, old, new zfsname.Device, force bool) error {
	argv := []string{"zpool", "replace"}
	if force {
		argv = append(argv, "-f")
	}
	_, err := z.R.Run(ctx, Cmd{Argv: append(argv, p.String(), old.String(), new.String())})
	return err
}

// OnlineExpand brings devs online with -e: grow into their larger size.
func (z Zpool) OnlineExpand(ctx context.Context, p zfsname.Pool, devs ...zfsname.Device) error {
	if len(devs) == 0 {
		return errors.New("zpool online -e: no device given")
	}
	if err := z.Caps.unsupported(z.Caps.OnlineExpand, "zpool online -e"); err != nil {
		return err
	}
	argv := []string{"zpool", "online", "-e", p.String()}
	for _, d := range devs {
		argv = append(argv, d.String())
	}
	_, err := z.R.Run(ctx, Cmd{Argv: argv})
	return err
}

// Scrub starts a scrub of p.
func (z Zpool) Scrub(ctx context.Context, p zfsname.Pool) error {
	_, err := z.run(ctx, "zpool", "scrub", p.String())
	return err
}

// StopScrub cancels a running scrub (ErrNoActiveScrub on OpenZFS if none).
func (z Zpool) StopScrub(ctx context.Context, p zfsname.Pool) error {
	_, err := z.run(ctx, "zpool", "scrub", "-s", p.String())
	return err
}

// Status returns p's parsed status. OpenZFS gets -p (exact error counts).
func (z Zpool) Status(ctx context.Context, p zfsname.Pool) (PoolStatus, error) {
	argv := []string{"zpool", "status"}
	if z.Caps.ListParsable {
		argv = append(argv, "-p")
	}
	res, err := z.R.Run(ctx, Cmd{Argv: append(argv, p.String())})
	if err != nil {
		return PoolStatus{}, err
	}
	sts, err := parseStatus(res.Stdout)
	if err != nil {
		return PoolStatus{}, err
	}
	if len(sts) != 1 {
		return PoolStatus{}, &ParseError{Cmd: "zpool status", Reason: fmt.Sprintf("want 1 pool, got %d", len(sts))}
	}
	return sts[0], nil
}

// WaitActivity is what Wait waits for.
type WaitActivity string

const (
	WaitResilver WaitActivity = "resilver"
	WaitScrub    WaitActivity = "scrub"
)

// Wait blocks until no activity of kind a runs on p. With `zpool wait` (OpenZFS
// 2.x) it runs that; otherwise it polls Status every interval (default 2s).
// Cancelling ctx stops waiting (and kills zpool wait).
func (z Zpool) Wait(ctx context.Context, p zfsname.Pool, a WaitActivity, interval time.Duration) (PoolStatus, error) {
	if a != WaitResilver && a != WaitScrub {
		return PoolStatus{}, fmt.Errorf("zpool wait: unknown activity %q", a)
	}
	if z.Caps.ZpoolWait {
		// -t resilver returns before the replacing vdev is detached (an
		// async step after the resilver); "replace" waits for that too.
		t := string(a)
		if a == WaitResilver {
			t = "resilver,replace"
		}
		if _, err := z.run(ctx, "zpool", "wait", "-t", t, p.String()); err != nil {
			return PoolStatus{}, err
		}
		return z.Status(ctx, p)
	}
	if interval <= 0 {
		interval = 2 * time.Second
	}
	for {
		st, err := z.Status(ctx, p)
		if err != nil {
			return st, err
		}
		if !st.busyWith(a) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// busyWith reports whether a scrub/resilver of kind a is still running. A
// resilver also counts while a replacing vdev remains.
func (s PoolStatus) busyWith(a WaitActivity) bool {
	if s.Scan.InProgress() && s.Scan.Function == ScanFunction(a) {
		return true
	}
	if a == WaitResilver {
		busy := false
		s.Walk(func(v *Vdev) {
			if v.Name == "replacing" || strings.HasPrefix(v.Name, "replacing-") {
				busy = true
			}
		})
		return busy
	}
	return false
}

// PoolInfo is one row of zpool list (sizes in bytes).
type PoolInfo struct {
	Name     string
	Size     uint64
	Alloc    uint64
	Free     uint64
	Health   string
	Capacity int // percent
}

// Get reads pool properties (`zpool get -Hp`; zfs-fuse: the column form).
func (z Zpool) Get(ctx context.Context, p zfsname.Pool, props ...zfsname.PropName) ([]Property, error) {
	list := "all"
	if len(props) > 0 {
		list = propList(props)
	}
	if z.Caps.ListParsable {
		res, err := z.run(ctx, "zpool", "get", "-Hp", list, p.String())
		if err != nil {
			return nil, err
		}
		return parseGet(res.Stdout)
	}
	res, err := z.run(ctx, "zpool", "get", list, p.String())
	if err != nil {
		return nil, err
	}
	return parseZpoolGetColumns(res.Stdout)
}

// List reads size/usage/health of p.
func (z Zpool) List(ctx context.Context, p zfsname.Pool) (PoolInfo, error) {
	ps, err := z.Get(ctx, p, "size", "allocated", "free", "health", "capacity")
	if err != nil {
		return PoolInfo{}, err
	}
	return poolInfoFromProps(p.String(), ps)
}
