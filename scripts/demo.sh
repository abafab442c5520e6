#!/usr/bin/env bash
# The demo: installs what it needs, then replicates a demo dataset to a
# second pool over SSH on localhost through the Replicate workflow on a real
# Temporal server, and prints what happened and the Web UI address.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="${XDG_CACHE_HOME:-$HOME/.cache}/zcloud/bin:/usr/local/go/bin:$PATH"
BIN="${XDG_CACHE_HOME:-$HOME/.cache}/zcloud/bin"
go build -o "$BIN/zcloud" ./starter
export ZCLOUD_BIN="$BIN/zcloud"
exec go run ./demo "$@"
