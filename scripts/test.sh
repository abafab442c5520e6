#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, vets, and runs
# every test against real components (zfs-fuse, sshd, moto_server, a
# Temporal dev server). Usage: scripts/test.sh [go test args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The OpenZFS 2.3 VM tier (package vmtests): build or reuse the cached image
# first (a cold build compiles zfs.ko: 11-23 minutes on 2 cores).
vm/openzfs-vm.sh build >/dev/null
export PATH="${XDG_CACHE_HOME:-$HOME/.cache}/zcloud/bin:/usr/local/go/bin:$PATH"

# zfs-fuse is a machine-wide daemon: start it if needed, stop it at the end
# only if this script started it.
started_zfs=""
if ! pgrep -x zfs-fuse >/dev/null; then
  zfs-fuse --no-daemon >/tmp/zcloud-zfs-fuse.log 2>&1 &
  started_zfs=$!
  for _ in $(seq 100); do zpool list -H >/dev/null 2>&1 && break; sleep 0.1; done
fi
cleanup() { [ -n "$started_zfs" ] && kill "$started_zfs" 2>/dev/null || true; }
trap cleanup EXIT

echo "== gofmt / go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
[ -z "$unformatted" ] || { echo "gofmt needed:"; echo "$unformatted"; exit 1; }
go vet ./...

echo "== go test"
# The VM tier (package vmtests) runs its tests one after another under TCG
# emulation: ~20 min here, so leave a slower CI machine room inside its 90.
go test -count=1 -p 2 -timeout 80m "${@:-./...}"
