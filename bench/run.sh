#!/usr/bin/env bash
# Runs the benchmark (bench/README.md): setup and build unless --no-build, then bench/bench.mjs
# inside the test network namespace (WebRTC needs its default route; DESIGN.md §5).
#   bash bench/run.sh                     everything, defaults (100 MiB, 1 run)
#   bash bench/run.sh --no-build --only a,c --runs 3
# Other options go to bench/bench.mjs (--help lists them). Needs root for the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

build=1
args=()
for a in "$@"; do
  if [ "$a" = --no-build ]; then build=0; else args+=("$a"); fi
done

if [ "$build" -eq 1 ]; then
  bash scripts/setup.sh
  bash scripts/build.sh
fi

ns="${SEEDTAB_NETNS:-seedtab-test}"
bash tests/browser/netns.sh up
# The benchmark bounds itself (SEEDTAB_BENCH_BUDGET_S, default 1200 s); this is the last resort
# should node itself hang.
budget="${SEEDTAB_BENCH_BUDGET_S:-1200}"
exec ip netns exec "$ns" timeout --kill-after=10 $((budget + 120)) node bench/bench.mjs "${args[@]}"
