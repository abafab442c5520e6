package config

import (
	"time"

	"zcloud/bootstrap"
)

// TargetBootstrap is the first-boot script a launched instance gets in its
// user data (ec2.bootstrap, mode launch-terminate only): it installs zfs and
// cryptsetup when the image lacks them, caps the ZFS ARC for the instance's
// memory and adds swap where memory is small. See docs/target-image.md.
type TargetBootstrap struct {
	// Skip sends no script: the image is prepared as docs/target-image.md
	// describes.
	Skip bool `yaml:"skip"`
	// Packages: install (default; apt-get installs what is missing) or never.
	Packages string `yaml:"packages"`
	// ARCMaxPercent of the memory may hold the ARC (default 50; at least
	// 1 GiB always stays outside it).
	ARCMaxPercent int `yaml:"arc_max_percent"`
	// Below SwapBelowMiB of memory (default 4096) a swap file of SwapMiB
	// (default 2048) is added at SwapFile (default /swapfile; never on ZFS).
	// NoSwap turns swap off.
	SwapBelowMiB int    `yaml:"swap_below_mib"`
	SwapMiB      int    `yaml:"swap_mib"`
	SwapFile     string `yaml:"swap_file"`
	NoSwap       bool   `yaml:"no_swap"`
	// Timeout is how long a session waits for the script once SSH answers
	// (default 20m: on Debian it compiles zfs-dkms).
	Timeout time.Duration `yaml:"timeout"`
}

func (b *TargetBootstrap) applyDefaults() {
	d := bootstrap.Defaults()
	if b.Packages == "" {
		b.Packages = "install"
	}
	if b.ARCMaxPercent == 0 {
		b.ARCMaxPercent = d.ARCMaxPercent
	}
	if b.SwapBelowMiB == 0 {
		b.SwapBelowMiB = d.SwapBelowMiB
	}
	if b.SwapMiB == 0 {
		b.SwapMiB = d.SwapMiB
	}
	if b.SwapFile == "" {
		b.SwapFile = d.SwapFile
	}
	if b.Timeout == 0 {
		b.Timeout = 20 * time.Minute
	}
}

// Options are the script's options; luks says the pool's devices are LUKS
// (so cryptsetup is installed too).
func (b TargetBootstrap) Options(luks bool) bootstrap.Options {
	o := bootstrap.Defaults()
	o.InstallPackages = b.Packages != "never"
	o.Cryptsetup = luks
	o.ARCMaxPercent = b.ARCMaxPercent
	o.SwapBelowMiB, o.SwapMiB, o.SwapFile = b.SwapBelowMiB, b.SwapMiB, b.SwapFile
	if b.NoSwap {
		o.SwapBelowMiB, o.SwapMiB = 0, 0
	}
	return o
}

func (b TargetBootstrap) validate(f string) error {
	if b.Skip {
		return nil
	}
	if b.Packages != "install" && b.Packages != "never" {
		return fieldErr(f+".packages", "must be install or never, not %q", b.Packages)
	}
	if b.Timeout < time.Second {
		return fieldErr(f+".timeout", "must be at least 1s")
	}
	if err := b.Options(false).Validate(); err != nil {
		return fieldErr(f, "%v", err)
	}
	return nil
}
