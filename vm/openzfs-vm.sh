#!/usr/bin/env bash
# openzfs-vm.sh — build, boot and stop a small qemu VM running real OpenZFS 2.3
# (Debian bookworm kernel + bookworm-backports OpenZFS), OpenSSH and cryptsetup,
# for zcloud's integration tests. See vm/README.md.
#
#   openzfs-vm.sh build                       build (or reuse) the cached image
#   openzfs-vm.sh start [options]             boot a VM in the background
#   openzfs-vm.sh stop  --run-dir DIR         clean shutdown, then kill if needed
#   openzfs-vm.sh ssh   --run-dir DIR [cmd]   ssh into a running VM as root
#   openzfs-vm.sh env   --run-dir DIR         print the running VM's vm.env
#
# Nothing is installed into the host's ZFS: zfs-dkms and zfsutils-linux are
# never apt-installed here (installing zfs-dkms removes zfs-fuse). Packages for
# the guest are downloaded with a private apt configuration and unpacked with
# dpkg -x; the kernel module is built from the zfs-dkms source against the
# unpacked kernel headers.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_DIR=$SCRIPT_DIR/guest
CACHE=${ZCLOUD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zcloud/vm}
DEBIAN_MIRROR=${ZCLOUD_VM_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${ZCLOUD_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
JOBS=${ZCLOUD_VM_JOBS:-2}

log() { printf '%s openzfs-vm: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- host tools

# need_host_packages CMD:PKG ... installs the Debian packages whose command is
# missing. It never installs anything ZFS-related on the host.
need_host_packages() {
	local want=() pair
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || want+=("${pair#*:}")
	done
	[ ${#want[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing host packages (${want[*]}); run as root or install them"
	log "installing host packages: ${want[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o DPkg::Lock::Timeout=600 "${want[@]}" >&2 ||
		{ apt-get update -q -o DPkg::Lock::Timeout=600 >&2 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			-o DPkg::Lock::Timeout=600 "${want[@]}" >&2; }
}

run_tools() {
	need_host_packages qemu-system-x86_64:qemu-system-x86 ssh:openssh-client \
		ssh-keygen:openssh-client cpio:cpio socat:socat
}

build_tools() {
	run_tools
	need_host_packages gcc:gcc make:make depmod:kmod zstd:zstd dpkg-deb:dpkg \
		ldconfig:libc-bin awk:mawk perl:perl-base
	# libc6-dev has no command to look for: check its header.
	[ -e /usr/include/stdio.h ] || need_host_packages "/usr/include/stdio.h:libc6-dev"
}

# ---------------------------------------------------------------- private apt

APT_DIR=$CACHE/apt
apt_opts() {
	printf '%s\n' \
		-o "Dir::Etc::SourceList=$APT_DIR/sources.list" \
		-o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d" \
		-o "Dir::Etc::Preferences=$APT_DIR/preferences" \
		-o "Dir::Etc::PreferencesParts=$APT_DIR/preferences.d" \
		-o "Dir::State=$APT_DIR/state" \
		-o "Dir::State::status=$APT_DIR/empty-status" \
		-o "Dir::Cache=$APT_DIR/cache" \
		-o "APT::Get::List-Cleanup=0" \
		-o "APT::Install-Recommends=0" \
		-o "APT::Install-Suggests=0" \
		-o "Debug::NoLocking=1" \
		-o "APT::Sandbox::User=root"
}
xapt_get() { local o; mapfile -t o < <(apt_opts); apt-get "${o[@]}" "$@"; }
xapt_cache() { local o; mapfile -t o < <(apt_opts); apt-cache "${o[@]}" "$@"; }

apt_setup() {
	mkdir -p "$APT_DIR"/{sources.list.d,preferences.d,state/lists/partial,cache/archives/partial}
	: >"$APT_DIR/empty-status"
	: >"$APT_DIR/preferences"
	cat >"$APT_DIR/sources.list.new" <<-EOF
		deb $DEBIAN_MIRROR bookworm main contrib
		deb $DEBIAN_MIRROR bookworm-updates main contrib
		deb $DEBIAN_SECURITY bookworm-security main contrib
		deb $DEBIAN_MIRROR bookworm-backports main contrib
	EOF
	mv "$APT_DIR/sources.list.new" "$APT_DIR/sources.list"
	log "apt-get update (private lists under $APT_DIR)"
	xapt_get -q update >&2
}

# resolve sets KABI (e.g. 6.1.0-56) and ZFS_DEB (e.g. 2.3.2-2~bpo12+2) from the
# package lists: Debian bookworm's current kernel ABI, bookworm-backports' OpenZFS.
resolve() {
	KABI=${ZCLOUD_VM_KABI:-}
	if [ -z "$KABI" ]; then
		local v
		v=$(xapt_cache -q show linux-image-amd64/bookworm-security 2>/dev/null | awk '/^Depends:/{print; exit}' || true)
		[ -n "$v" ] || v=$(xapt_cache -q show linux-image-amd64/bookworm 2>/dev/null | awk '/^Depends:/{print; exit}')
		KABI=$(printf '%s\n' "$v" | grep -o 'linux-image-[0-9.]*-[0-9]*-amd64' | head -1 | sed 's/^linux-image-//; s/-amd64$//')
	fi
	[ -n "$KABI" ] || die "cannot resolve the bookworm kernel ABI"
	ZFS_DEB=$(xapt_cache -q show zfsutils-linux/bookworm-backports 2>/dev/null | awk '/^Version:/{print $2; exit}')
	[ -n "$ZFS_DEB" ] || die "cannot find zfsutils-linux in bookworm-backports (contrib)"
	case $ZFS_DEB in 2.3.*) ;; *) die "bookworm-backports has OpenZFS $ZFS_DEB, want 2.3.x" ;; esac
	ZFS_UPSTREAM=${ZFS_DEB%%-*}
}

guest_hash() {
	(cd "$SCRIPT_DIR" && find guest -type f | LC_ALL=C sort | xargs sha256sum && sha256sum openzfs-vm.sh) |
		sha256sum | cut -c1-12
}

# ---------------------------------------------------------------- build

# pkg_file NAME prints the cached .deb of a package apt just resolved.
pkg_file() {
	local f
	f=$(ls "$APT_DIR"/cache/archives/"$1"_*.deb 2>/dev/null | sort -V | tail -1)
	[ -n "$f" ] || die "no downloaded .deb for $1"
	printf '%s\n' "$f"
}

# download_closure LISTFILE PKG... downloads PKG and its dependencies (computed
# against an empty dpkg status, so the closure is complete) and writes the
# package names to LISTFILE.
download_closure() {
	local list=$1; shift
	xapt_get -q -s install "$@" 2>/dev/null | awk '/^Inst /{print $2}' | LC_ALL=C sort >"$list.new"
	[ -s "$list.new" ] || { xapt_get -s install "$@" >&2 || true; die "cannot resolve packages: $*"; }
	xapt_get -q -y -d install "$@" >&2
	mv "$list.new" "$list"
}

build_module() {
	local out=$CACHE/zfs-kmod/${KABI}-amd64_zfs-${ZFS_DEB}
	MODDIR=$out
	[ -e "$out/.done" ] && { log "zfs.ko for $KABI-amd64 / $ZFS_DEB cached"; return 0; }
	local work=$CACHE/work/kmod.$$
	rm -rf "$work"; mkdir -p "$work/root"
	local kb
	kb=$(xapt_cache -q depends "linux-headers-$KABI-amd64" | grep -o 'linux-kbuild-[0-9.]*' | head -1)
	[ -n "$kb" ] || die "cannot find the linux-kbuild package for $KABI"
	(cd "$APT_DIR/cache/archives" && xapt_get -q download "linux-headers-$KABI-amd64" \
		"linux-headers-$KABI-common" "$kb" "zfs-dkms/bookworm-backports" >&2)
	local p
	for p in "linux-headers-$KABI-amd64" "linux-headers-$KABI-common" "$kb" "zfs-dkms"; do
		dpkg-deb -x "$(pkg_file "$p")" "$work/root"
	done
	local src=$work/root/usr/src
	# The -amd64 headers include the -common Makefile by absolute path.
	sed -i "s|include /usr/src/|include $src/|" "$src/linux-headers-$KABI-amd64/Makefile"
	local zsrc=$src/zfs-$ZFS_UPSTREAM
	[ -d "$zsrc" ] || die "zfs-dkms source not at $zsrc"
	log "building zfs.ko $ZFS_UPSTREAM for $KABI-amd64 (configure + make -j$JOBS; ~12-20 min on 2 cores)"
	(cd "$zsrc" && nice -n 10 ./configure --disable-dependency-tracking --prefix=/usr \
		--with-config=kernel --with-linux="$src/linux-headers-$KABI-common" \
		--with-linux-obj="$src/linux-headers-$KABI-amd64" >"$work/configure.log" 2>&1) ||
		{ tail -40 "$work/configure.log" >&2; die "zfs configure failed (log: $work/configure.log)"; }
	(cd "$zsrc" && nice -n 10 make -C module -j"$JOBS" >"$work/make.log" 2>&1) ||
		{ tail -40 "$work/make.log" >&2; die "zfs module build failed (log: $work/make.log)"; }
	rm -rf "$out.tmp"; mkdir -p "$out.tmp"
	cp "$zsrc/module/spl.ko" "$zsrc/module/zfs.ko" "$out.tmp/"
	strip --strip-debug "$out.tmp"/*.ko
	touch "$out.tmp/.done"
	rm -rf "$out"; mv "$out.tmp" "$out"
	rm -rf "$work"
	log "zfs.ko built: $out"
}

# Kernel modules the guest loads (their dependencies come along), besides
# zfs; crypto/ and arch/x86/crypto/ are copied whole for cryptsetup.
GUEST_MODULES="virtio_pci virtio_blk virtio_net virtio_rng dm_mod dm_crypt button
algif_skcipher algif_hash af_alg"
GUEST_MODULE_DIRS="crypto arch/x86/crypto"
build_image() {
	local key=$1 out=$CACHE/$1
	local work=$CACHE/work/image.$$
	rm -rf "$work"; mkdir -p "$work/sysroot" "$work/root"
	local pkgs="linux-image-$KABI-amd64 zfsutils-linux/bookworm-backports
		libzfs6linux/bookworm-backports libzpool6linux/bookworm-backports
		libnvpair3linux/bookworm-backports libuutil3linux/bookworm-backports
		openssh-server openssh-sftp-server cryptsetup-bin udev kmod busybox-static
		coreutils util-linux"
	# shellcheck disable=SC2086
	download_closure "$work/pkgs" $pkgs
	log "unpacking $(wc -l <"$work/pkgs") packages"
	local p
	while read -r p; do
		case $p in usrmerge|perl|perl-base|perl-modules-*|libperl*|python3*|libpython3*|initramfs-tools*|klibc-utils|libklibc|linux-base) continue ;; esac
		dpkg-deb -x "$(pkg_file "$p")" "$work/sysroot"
	done <"$work/pkgs"
	local sr=$work/sysroot r=$work/root kver=$KABI-amd64
	cp "$sr/boot/vmlinuz-$kver" "$work/vmlinuz"

	# The root file system: the unpacked packages minus documentation, kernel
	# modules (added selectively below) and the kernel image.
	tar -C "$sr" --exclude=./usr/share/doc --exclude=./usr/share/man \
		--exclude=./usr/share/locale --exclude=./usr/share/info --exclude=./usr/share/lintian \
		--exclude=./usr/share/zoneinfo --exclude=./usr/share/bash-completion \
		--exclude=./lib/udev/hwdb.d --exclude=./usr/lib/udev/hwdb.d \
		--exclude=./lib/modules --exclude=./usr/lib/modules --exclude=./boot \
		--exclude=./lib/firmware --exclude=./usr/lib/firmware -cf - . | tar -C "$r" -xf -
	local m=$r/lib/modules/$kver
	mkdir -p "$m/kernel" "$m/extra"
	cp "$sr/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$m/"
	depmod -b "$sr" "$kver"
	local rel mod
	for rel in $GUEST_MODULE_DIRS; do
		mkdir -p "$m/kernel/$(dirname "$rel")"
		cp -a "$sr/lib/modules/$kver/kernel/$rel" "$m/kernel/$(dirname "$rel")/"
	done
	for mod in $GUEST_MODULES; do
		modprobe -d "$sr" -S "$kver" --show-depends "$mod" | awk '$1 == "insmod" {print $2}'
	done | sort -u | while read -r rel; do
		rel=${rel#"$sr/lib/modules/$kver/"}
		mkdir -p "$m/$(dirname "$rel")"
		cp "$sr/lib/modules/$kver/$rel" "$m/$rel"
	done
	cp "$MODDIR/spl.ko" "$MODDIR/zfs.ko" "$m/extra/"
	depmod -b "$r" "$kver"

	# busybox provides what the packages do not (sh, ip, init, poweroff, ...).
	local app
	for app in $("$r/bin/busybox" --list-full); do
		[ -e "$r/$app" ] || [ -L "$r/$app" ] || [ -e "$r/usr/$app" ] || [ -e "$r/${app#usr/}" ] ||
			{ mkdir -p "$r/$(dirname "$app")"; ln -s /bin/busybox "$r/$app"; }
	done
	[ -e "$r/bin/sh" ] || ln -sf busybox "$r/bin/sh"

	# zcloud's guest files.
	install -m 0755 "$GUEST_DIR/init" "$r/init"
	mkdir -p "$r/etc/zcloud" "$r/etc/ssh/authorized_keys" "$r/root" "$r/proc" "$r/sys" \
		"$r/dev" "$r/run" "$r/tmp" "$r/var/log" "$r/etc/modprobe.d" "$r/etc/zfs"
	install -m 0755 "$GUEST_DIR/rc.sysinit" "$GUEST_DIR/rc.shutdown" "$r/etc/zcloud/"
	install -m 0644 "$GUEST_DIR/inittab" "$r/etc/inittab"
	install -m 0644 "$GUEST_DIR/sshd_config" "$r/etc/ssh/sshd_config"
	install -m 0644 "$GUEST_DIR/passwd" "$r/etc/passwd"
	install -m 0644 "$GUEST_DIR/group" "$r/etc/group"
	install -m 0600 "$GUEST_DIR/shadow" "$r/etc/shadow"
	install -m 0644 "$GUEST_DIR/modprobe-zfs.conf" "$r/etc/modprobe.d/zfs.conf"
	rm -f "$r"/etc/ssh/ssh_host_*
	chmod 0700 "$r/root"
	printf 'zcloud-vm\n' >"$r/etc/hostname"
	printf '127.0.0.1 localhost zcloud-vm\n' >"$r/etc/hosts"
	ldconfig -r "$r"
	for app in zfs zpool cryptsetup sha256sum cat sh sshd; do
		[ -e "$r/bin/$app" ] || [ -e "$r/sbin/$app" ] || [ -e "$r/usr/bin/$app" ] || [ -e "$r/usr/sbin/$app" ] ||
			die "guest lacks $app"
	done

	log "packing initramfs"
	# Uncompressed by default: under TCG, decompressing costs more boot time
	# than copying the larger file (ZCLOUD_VM_INITRD_COMPRESS=zstd to compress).
	(cd "$r" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
		case ${ZCLOUD_VM_INITRD_COMPRESS:-none} in
		zstd) zstd -q -T"$JOBS" -3 ;;
		*) cat ;;
		esac >"$work/initrd.img"
	rm -rf "$out.tmp"; mkdir -p "$out.tmp"
	mv "$work/vmlinuz" "$work/initrd.img" "$out.tmp/"
	cp "$work/pkgs" "$out.tmp/packages"
	{
		echo "KABI=$KABI"
		echo "KERNEL=$kver"
		echo "ZFS_DEB=$ZFS_DEB"
		echo "GUEST_HASH=${key##*_}"
		echo "BUILT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$out.tmp/manifest"
	touch "$out.tmp/.done"
	rm -rf "$out"; mv "$out.tmp" "$out"
	rm -rf "$work"
	log "image built: $out ($(du -sh "$out/initrd.img" | cut -f1) initramfs)"
}

# cmd_build prints the image directory. It does not touch the network when an
# image for the last resolved versions and the current guest files exists
# (ZCLOUD_VM_REFRESH=1 re-resolves the package versions first).
cmd_build() {
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.build.lock"
	flock 9
	local h key
	h=$(guest_hash)
	if [ "${ZCLOUD_VM_REFRESH:-0}" != 1 ] && [ -r "$CACHE/resolved" ]; then
		# shellcheck disable=SC1091
		. "$CACHE/resolved"
		key=${KABI}-amd64_zfs-${ZFS_DEB}_$h
		if [ -e "$CACHE/$key/.done" ]; then
			printf '%s\n' "$CACHE/$key"
			return 0
		fi
	fi
	build_tools
	apt_setup
	resolve
	printf 'KABI=%q\nZFS_DEB=%q\n' "$KABI" "$ZFS_DEB" >"$CACHE/resolved"
	key=${KABI}-amd64_zfs-${ZFS_DEB}_$h
	if [ ! -e "$CACHE/$key/.done" ]; then
		local t0=$SECONDS
		build_module
		build_image "$key"
		log "build took $((SECONDS - t0)) s"
	fi
	printf '%s\n' "$CACHE/$key"
}

# ---------------------------------------------------------------- start/stop

free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	die "no free port found"
}

usage_start() {
	cat >&2 <<-EOF
	usage: openzfs-vm.sh start [--run-dir DIR] [--disks N] [--disk-size SIZE]
	         [--disk SERIAL:SIZE]... [--ssh-port PORT] [--forward HOSTPORT:GUESTPORT]...
	         [--memory MiB] [--cpus N] [--timeout SECONDS] [--watch-pid PID]
	Disk serials are EBS-like volume ids of at most 20 characters (virtio-blk's
	limit), e.g. vol0123456789abcdef0; the guest sees /dev/disk/by-id/virtio-SERIAL.
	Prints the run directory's vm.env (also written to DIR/vm.env).
	--watch-pid: stop the VM when process PID exits (e.g. a killed go test).
	EOF
}

cmd_start() {
	local run_dir="" ndisks=0 disk_size=1G ssh_port="" mem=${ZCLOUD_VM_MEMORY:-2048}
	local cpus=${ZCLOUD_VM_CPUS:-2} timeout=${ZCLOUD_VM_BOOT_TIMEOUT:-300}
	local disks=() fwds=() watch_pid=""
	while [ $# -gt 0 ]; do
		case $1 in
		--run-dir) run_dir=$2; shift 2 ;;
		--disks) ndisks=$2; shift 2 ;;
		--disk-size) disk_size=$2; shift 2 ;;
		--disk) disks+=("$2"); shift 2 ;;
		--ssh-port) ssh_port=$2; shift 2 ;;
		--forward) fwds+=("$2"); shift 2 ;;
		--memory) mem=$2; shift 2 ;;
		--cpus) cpus=$2; shift 2 ;;
		--timeout) timeout=$2; shift 2 ;;
		--watch-pid) watch_pid=$2; shift 2 ;;
		-h|--help) usage_start; exit 0 ;;
		*) usage_start; die "unknown option $1" ;;
		esac
	done
	local i
	for i in $(seq 1 "$ndisks"); do disks+=("$(printf 'vol%017x' "$i"):$disk_size"); done

	run_tools
	local img
	img=$(cmd_build)
	local created=0
	if [ -z "$run_dir" ]; then
		run_dir=$(mktemp -d "${TMPDIR:-/tmp}/zcloud-vm.XXXXXX")
		created=1
	else
		[ ! -e "$run_dir/qemu.pid" ] || die "$run_dir already has a VM (qemu.pid)"
		[ -d "$run_dir" ] || { mkdir -p "$run_dir"; created=1; }
	fi
	run_dir=$(cd "$run_dir" && pwd)
	[ "$created" = 1 ] && touch "$run_dir/.created-by-openzfs-vm"
	local R=$run_dir
	: >"$R/files"
	track() { printf '%s\n' "$@" >>"$R/files"; }

	# Per-run keys: the guest's host key and root's authorized key go into a
	# small extra cpio archive prepended to the cached initramfs, so the host
	# key is known before the first connection.
	rm -f "$R/ssh_host_ed25519_key" "$R/ssh_host_ed25519_key.pub" "$R/id_ed25519" "$R/id_ed25519.pub"
	ssh-keygen -q -t ed25519 -N '' -C zcloud-vm-host -f "$R/ssh_host_ed25519_key"
	ssh-keygen -q -t ed25519 -N '' -C zcloud-vm-client -f "$R/id_ed25519"
	track ssh_host_ed25519_key ssh_host_ed25519_key.pub id_ed25519 id_ed25519.pub
	local kd=$R/keys.d
	rm -rf "$kd"; mkdir -p "$kd/etc/ssh/authorized_keys"
	cp "$R/ssh_host_ed25519_key" "$kd/etc/ssh/"
	cp "$R/ssh_host_ed25519_key.pub" "$kd/etc/ssh/"
	cp "$R/id_ed25519.pub" "$kd/etc/ssh/authorized_keys/root"
	chmod 0600 "$kd/etc/ssh/ssh_host_ed25519_key"
	(cd "$kd" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$R/keys.cpio"
	cat "$R/keys.cpio" "$img/initrd.img" >"$R/initrd.img"
	rm -rf "$kd" "$R/keys.cpio"
	track initrd.img

	mkdir -p "$R/disks"
	track disks
	local drive_args=() d serial size
	for d in "${disks[@]}"; do
		serial=${d%%:*}; size=${d#*:}
		[[ $serial =~ ^[A-Za-z0-9_-]{1,20}$ ]] || die "disk serial '$serial': want 1-20 of [A-Za-z0-9_-]"
		truncate -s "$size" "$R/disks/$serial.img"
		drive_args+=(-drive "file=$R/disks/$serial.img,if=none,id=drv-$serial,format=raw,cache=unsafe,discard=unmap"
			-device "virtio-blk-pci,drive=drv-$serial,serial=$serial,id=dev-$serial")
	done

	local host_pub
	host_pub=$(cut -d' ' -f1,2 "$R/ssh_host_ed25519_key.pub")
	local attempt port
	track qemu.pid qmp.sock monitor.sock console.log known_hosts ssh_config vm.env
	for attempt in 1 2 3 4 5; do
		port=${ssh_port:-$(free_port)}
		local net="user,id=net0,hostfwd=tcp:127.0.0.1:$port-:22" f
		for f in "${fwds[@]}"; do net+=",hostfwd=tcp:127.0.0.1:${f%%:*}-:${f#*:}"; done
		rm -f "$R/qemu.pid" "$R/qmp.sock" "$R/monitor.sock"
		: >"$R/console.log"
		if qemu-system-x86_64 -name zcloud-openzfs -accel tcg,thread=multi -machine pc -cpu max \
			-smp "$cpus" -m "$mem" -no-reboot \
			-kernel "$img/vmlinuz" -initrd "$R/initrd.img" \
			-append "console=ttyS0 panic=-1 loglevel=4 net.ifnames=0 rdinit=/init" \
			-display none -serial "file:$R/console.log" \
			-qmp "unix:$R/qmp.sock,server=on,wait=off" \
			-monitor "unix:$R/monitor.sock,server=on,wait=off" \
			-netdev "$net" -device virtio-net-pci,netdev=net0 \
			-device virtio-rng-pci \
			"${drive_args[@]}" \
			-daemonize -pidfile "$R/qemu.pid" 2>"$R/qemu.err"; then
			break
		fi
		[ -n "$ssh_port" ] && { cat "$R/qemu.err" >&2; die "qemu failed to start"; }
		grep -qi 'forward' "$R/qemu.err" || { cat "$R/qemu.err" >&2; die "qemu failed to start"; }
		log "port $port busy, retrying"
	done
	[ -s "$R/qemu.pid" ] || die "qemu did not start"
	rm -f "$R/qemu.err"
	printf '[127.0.0.1]:%s %s\n' "$port" "$host_pub" >"$R/known_hosts"
	cat >"$R/ssh_config" <<-EOF
		Host zcloud-vm
		  HostName 127.0.0.1
		  Port $port
		  User root
		  IdentityFile $R/id_ed25519
		  IdentitiesOnly yes
		  UserKnownHostsFile $R/known_hosts
		  StrictHostKeyChecking yes
		  HostKeyAlgorithms ssh-ed25519
		  BatchMode yes
		  ConnectTimeout 10
		  ServerAliveInterval 15
		  LogLevel ERROR
	EOF
	local serials=""
	for d in "${disks[@]}"; do serials+="${serials:+ }${d%%:*}"; done
	{
		echo "ZCLOUD_VM_RUN_DIR=$R"
		echo "ZCLOUD_VM_IMAGE=$img"
		echo "ZCLOUD_VM_PID=$(cat "$R/qemu.pid")"
		echo "ZCLOUD_VM_SSH_HOST=127.0.0.1"
		echo "ZCLOUD_VM_SSH_PORT=$port"
		echo "ZCLOUD_VM_SSH_USER=root"
		echo "ZCLOUD_VM_SSH_KEY=$R/id_ed25519"
		echo "ZCLOUD_VM_HOST_KEY=$host_pub"
		echo "ZCLOUD_VM_KNOWN_HOSTS=$R/known_hosts"
		echo "ZCLOUD_VM_SSH_CONFIG=$R/ssh_config"
		echo "ZCLOUD_VM_QMP=$R/qmp.sock"
		echo "ZCLOUD_VM_MONITOR=$R/monitor.sock"
		echo "ZCLOUD_VM_CONSOLE=$R/console.log"
		echo "ZCLOUD_VM_DISK_DIR=$R/disks"
		echo "ZCLOUD_VM_DISKS=$serials"
		for f in "${fwds[@]}"; do echo "ZCLOUD_VM_FORWARD_${f#*:}=${f%%:*}"; done
	} >"$R/vm.env"

	if [ -n "$watch_pid" ]; then
		setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -e "$2/qemu.pid" ]; do sleep 2; done
			[ -e "$2/qemu.pid" ] && exec "$3" stop --run-dir "$2"' watcher "$watch_pid" "$R" "$SCRIPT_DIR/openzfs-vm.sh" \
			</dev/null >/dev/null 2>&1 &
		echo $! >"$R/watcher.pid"
		track watcher.pid
	fi
	log "VM booting (pid $(cat "$R/qemu.pid"), ssh 127.0.0.1:$port, run dir $R)"
	local t0=$SECONDS
	while :; do
		if ! kill -0 "$(cat "$R/qemu.pid")" 2>/dev/null; then
			tail -30 "$R/console.log" >&2
			die "qemu exited during boot (console: $R/console.log)"
		fi
		if ssh -F "$R/ssh_config" -o ConnectTimeout=5 zcloud-vm true 2>/dev/null; then
			break
		fi
		if [ $((SECONDS - t0)) -ge "$timeout" ]; then
			tail -30 "$R/console.log" >&2
			cmd_stop --run-dir "$R" >&2 || true
			die "SSH did not answer within ${timeout}s"
		fi
		sleep 1
	done
	log "SSH ready after $((SECONDS - t0)) s"
	cat "$R/vm.env"
}

qmp() { # qmp SOCKET COMMAND-JSON
	printf '{"execute":"qmp_capabilities"}\n%s\n' "$2" |
		timeout 10 socat - "UNIX-CONNECT:$1" >/dev/null 2>&1
}

cmd_stop() {
	local run_dir=""
	while [ $# -gt 0 ]; do
		case $1 in
		--run-dir) run_dir=$2; shift 2 ;;
		*) die "unknown option $1" ;;
		esac
	done
	[ -n "$run_dir" ] || die "stop needs --run-dir"
	[ -d "$run_dir" ] || { log "no run dir $run_dir"; return 0; }
	local R pid=""
	R=$(cd "$run_dir" && pwd)
	[ -s "$R/qemu.pid" ] && pid=$(cat "$R/qemu.pid")
	alive() { [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qa qemu "/proc/$pid/cmdline" 2>/dev/null; }
	waitgone() { local i; for i in $(seq 1 "$1"); do alive || return 0; sleep 1; done; ! alive; }
	if [ -s "$R/watcher.pid" ] && [ "$(cat "$R/watcher.pid")" != "$$" ]; then
		kill "$(cat "$R/watcher.pid")" 2>/dev/null || true
	fi
	if alive; then
		log "stopping VM (pid $pid)"
		# 1. clean: busybox poweroff runs rc.shutdown (zpool export -a, sync).
		timeout 20 ssh -F "$R/ssh_config" zcloud-vm 'poweroff' >/dev/null 2>&1 || true
		if ! waitgone 90; then
			log "guest did not power off; asking qemu to quit"
			qmp "$R/qmp.sock" '{"execute":"quit"}' || true
			if ! waitgone 10; then
				kill -TERM "$pid" 2>/dev/null || true
				waitgone 5 || kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
	fi
	# Remove only what start created.
	if [ -e "$R/.created-by-openzfs-vm" ]; then
		rm -rf "$R"
	elif [ -e "$R/files" ]; then
		local f
		while read -r f; do rm -rf "${R:?}/$f"; done <"$R/files"
		rm -f "$R/files"
	fi
	log "stopped"
}

cmd_ssh() {
	[ "${1:-}" = --run-dir ] || die "usage: openzfs-vm.sh ssh --run-dir DIR [command...]"
	local R=$2; shift 2
	exec ssh -F "$R/ssh_config" zcloud-vm "$@"
}

cmd_env() {
	[ "${1:-}" = --run-dir ] || die "usage: openzfs-vm.sh env --run-dir DIR"
	cat "$2/vm.env"
}

case ${1:-} in
build) shift; cmd_build "$@" ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
ssh) shift; cmd_ssh "$@" ;;
env) shift; cmd_env "$@" ;;
*)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
