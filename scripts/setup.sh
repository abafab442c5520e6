#!/usr/bin/env bash
# Installs everything zcloud's demo and tests need on a fresh Debian machine
# (as root): Debian packages, and pinned Go tools built into the user's cache
# dir. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/zcloud"
BIN="$CACHE/bin"
mkdir -p "$BIN"
export PATH="$BIN:/usr/local/go/bin:$PATH"

log() { printf '[setup] %s\n' "$*" >&2; }

# Debian packages: zfs-fuse (a real ZFS that runs here), OpenSSH (target
# hosts in tests), mbuffer (benchmark baseline), age and jq (the
# restore-by-hand test follows docs/restore-by-hand.md with them), systemd
# (systemd-analyze).
need=()
command -v zfs-fuse >/dev/null 2>&1 || [ -x /usr/sbin/zfs-fuse ] || need+=(zfs-fuse)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v mbuffer >/dev/null 2>&1 || need+=(mbuffer)
command -v age >/dev/null 2>&1 || need+=(age)
command -v jq >/dev/null 2>&1 || need+=(jq)
# systemd-analyze verifies the units in systemd/ (go test ./systemd).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# moto_server stands in for AWS. It comes with the machine image (PyPI is
# not reachable here); Debian's python3-moto is the fallback.
if ! command -v moto_server >/dev/null 2>&1; then
  log "moto_server missing: installing Debian's python3-moto"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-moto python3-flask python3-flask-cors >/dev/null || true
  command -v moto_server >/dev/null 2>&1 || { log "moto_server is still missing"; exit 1; }
fi

# Pinned Go tools, built once into the cache dir (the Temporal CLI takes
# about 8 minutes to build the first time on 2 cores).
install_tool() { # name module@version
  local name=$1 mod=$2 stamp="$BIN/.$1.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$mod" ]; then return; fi
  log "go install $mod (first time only)"
  GOBIN="$BIN" GOFLAGS=-buildvcs=false go install "$mod"
  echo "$mod" >"$stamp"
}
install_tool temporal github.com/temporalio/cli/cmd/temporal@v1.5.1
install_tool ec2-metadata-mock github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@v1.13.0

# promtool checks and unit-tests the example alert rules (go test ./metrics).
# Only the binary is taken from Debian's prometheus package: no Prometheus
# server is installed or started.
if ! command -v promtool >/dev/null 2>&1 && [ ! -x "$BIN/promtool" ]; then
  log "promtool from Debian's prometheus package"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    apt-get update -qq
    (cd "$tmp" && apt-get download prometheus >/dev/null)
  fi
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
  install -m 0755 "$tmp/usr/bin/promtool" "$BIN/promtool"
  rm -rf "$tmp"
fi

log "ok: tools in $BIN"
