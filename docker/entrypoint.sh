#!/bin/sh
# Entry point of the zcloud worker image: before `zcloud worker` runs, check
# that the host's ZFS is reachable (/dev/zfs) and that this image's zfs
# userland has the host kernel module's major.minor version (a mismatched
# userland can fail ioctls or misreport pools). ZCLOUD_ZFS_CHECK=off skips
# the check; other commands (zcloud status, ...) run without it.
set -eu
dev=${ZCLOUD_ZFS_DEVICE:-/dev/zfs}
bin=${ZCLOUD_BIN:-/usr/local/bin/zcloud}

if [ "${1:-}" = "worker" ] && [ "${ZCLOUD_ZFS_CHECK:-on}" != "off" ]; then
	if [ ! -c "$dev" ]; then
		echo "zcloud-entrypoint: $dev is missing: load the zfs module on the host and pass the device (devices: [/dev/zfs], privileged: true)" >&2
		exit 1
	fi
	versions=$(zfs version 2>&1) || {
		echo "zcloud-entrypoint: zfs version failed: $versions" >&2
		exit 1
	}
	user=$(printf '%s\n' "$versions" | sed -n 's/^zfs-\([0-9]*\.[0-9]*\).*/\1/p' | head -n1)
	kmod=$(printf '%s\n' "$versions" | sed -n 's/^zfs-kmod-\([0-9]*\.[0-9]*\).*/\1/p' | head -n1)
	if [ -z "$user" ] || [ -z "$kmod" ]; then
		echo "zcloud-entrypoint: cannot read the zfs userland and kernel module versions from 'zfs version':" >&2
		printf '%s\n' "$versions" >&2
		exit 1
	fi
	if [ "$user" != "$kmod" ]; then
		echo "zcloud-entrypoint: this image's zfs userland is $user but the host's zfs kernel module is $kmod: rebuild the image with the ZFS_SUITE whose zfsutils-linux is $kmod (docs/deploy.md), or set ZCLOUD_ZFS_CHECK=off" >&2
		exit 1
	fi
	echo "zcloud-entrypoint: zfs userland $user matches the host's kernel module $kmod" >&2
fi
exec "$bin" "$@"
