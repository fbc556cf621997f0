#!/usr/bin/env bash
# The tracker load benchmark (issue 9): seedtab's WebSocket tracker against bittorrent-tracker 11's
# server, the same workload in the same run (examples/tracker_load.rs explains every phase).
#   bash bench/tracker.sh [--peers 2000] [--swarms 200] [--seconds 10] [--rate 500]
#       [--max-peers 20000] [--ramp-step 4000] [--only seedtab|bittorrent-tracker] [--no-pin]
#       [--tracker-arg ARG]... [--out bench/results/tracker.json]   (--help: all options)
#   bash bench/tracker.sh --no-build ...   # use target/release/seedtab and the example as they are
# Builds target/release/seedtab (features native) and the example first (not timed) unless
# --no-build. Raises the open-file limit to 65536 if it may (each connection is a descriptor in the
# generator and one in the tracker; a hard limit of 20000, as in this container, caps the ramp at
# 19800 connections: the generator says so). Loopback only. The
# whole run is killed after 20 minutes whatever happens (`timeout`, whole process group, so the
# spawned trackers go too).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
build=1
if [[ "${1:-}" == "--no-build" ]]; then build=0; shift; fi
if (( build )); then
  cargo build --quiet --release --features native --bin seedtab --example tracker_load
fi
[[ -x target/release/seedtab ]] || { echo "target/release/seedtab missing (build without --no-build)" >&2; exit 1; }
[[ -x target/release/examples/tracker_load ]] || { echo "target/release/examples/tracker_load missing" >&2; exit 1; }
[[ -d node_modules/bittorrent-tracker ]] || { echo "node_modules/bittorrent-tracker missing: npm ci" >&2; exit 1; }
if ! ulimit -n 65536 2>/dev/null; then
  ulimit -n "$(ulimit -Hn)" || true
  echo "note: open-file limit is $(ulimit -n); the ramp stops below it" >&2
fi
exec timeout --kill-after=10 1200 target/release/examples/tracker_load "$@"
