#!/usr/bin/env bash
# Install what is missing, build, and serve the web app + WebSocket tracker.
#   scripts/run.sh                       http://127.0.0.1:8080/
#   scripts/run.sh --addr 0.0.0.0:9000   any `seedtab serve` options
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
args=("$@")
has_addr=0
for a in "${args[@]}"; do
  case "$a" in --addr|--addr=*) has_addr=1 ;; esac
done
[ "$has_addr" -eq 1 ] || args=(--addr 127.0.0.1:8080 "${args[@]}")
has_www=0
for a in "${args[@]}"; do
  case "$a" in --www|--www=*) has_www=1 ;; esac
done
[ "$has_www" -eq 1 ] || args+=(--www www/dist)
exec target/release/seedtab serve "${args[@]}"
