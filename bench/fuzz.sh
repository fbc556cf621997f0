#!/usr/bin/env bash
# Runs cargo-fuzz targets (fuzz/README.md) for a bounded time and prints what they did.
#
#   bash bench/fuzz.sh                        receipt_decode for 60 s
#   bash bench/fuzz.sh TARGET [SECONDS]       one target (`cargo +nightly fuzz list --fuzz-dir fuzz`)
#   bash bench/fuzz.sh all [SECONDS]          every target, SECONDS each
#   bash bench/fuzz.sh short [SECONDS]        every target, SECONDS each (default 10), only if the
#                                             nightly toolchain and cargo-fuzz are already there:
#                                             otherwise prints "skipped: ..." and exits 0
#
# Except in `short` mode, installs only what is missing, quietly: the nightly toolchain (cargo-fuzz
# needs -Z flags for the sanitizer and coverage instrumentation) and cargo-fuzz. Each run reads
# the committed seeds fuzz/seeds/TARGET/ and the crash regressions fuzz/regressions/TARGET/, and
# grows the git-ignored working corpus fuzz/corpus/TARGET/ (seeded from the test vectors by
# fuzz/seed-corpus.mjs when node is there); it uses fuzz/dicts/TARGET.dict when there is one.
# Exits non-zero if a target crashed; the crashing input is in fuzz/artifacts/TARGET/.
# Extra libFuzzer options can be passed in FUZZ_ARGS, e.g. FUZZ_ARGS='-jobs=2 -workers=2'.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

target="${1:-receipt_decode}"
if [ "$target" = short ]; then secs="${2:-10}"; else secs="${2:-60}"; fi
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [TARGET|all|short] [SECONDS]" >&2; exit 2 ;; esac

if [ "$target" = short ]; then
  # For test scripts: never installs anything, never fails for lack of tools.
  if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz short: skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
  fi
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz short: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
    exit 0
  fi
else
  if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal >/dev/null
  fi
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    # --locked: cargo-fuzz's own tested dependency versions. Built with the default toolchain.
    cargo install cargo-fuzz --locked --quiet
  fi
fi

fuzz() { cargo +nightly fuzz "$@" --fuzz-dir fuzz; }

if [ "$target" = all ] || [ "$target" = short ]; then
  mapfile -t targets < <(fuzz list)
else
  targets=("$target")
fi

# Several targets: build them all in one cargo call (both cores, one link phase) rather than one
# by one inside `fuzz run`, which then finds them built.
if [ "${#targets[@]}" -gt 1 ]; then
  echo "==== fuzz: building ${#targets[@]} targets ===="
  fuzz build
fi

log="$(mktemp -t seedtab-fuzz.XXXXXX)"
trap 'rm -f "$log"' EXIT
status=0
summary=()
for t in "${targets[@]}"; do
  if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
    echo "no fuzz target $t (fuzz/fuzz_targets/$t.rs); targets: $(fuzz list | tr '\n' ' ')" >&2
    exit 2
  fi
  mkdir -p "fuzz/corpus/$t"
  if command -v node >/dev/null 2>&1; then node fuzz/seed-corpus.mjs "$t"; fi
  # The first directory receives new inputs; the committed ones are only read.
  dirs=("fuzz/corpus/$t")
  for d in "fuzz/seeds/$t" "fuzz/regressions/$t"; do [ -d "$d" ] && dirs+=("$d"); done
  args=(-max_total_time="$secs" -timeout=10 -print_final_stats=1)
  [ -f "fuzz/dicts/$t.dict" ] && args+=(-dict="fuzz/dicts/$t.dict")
  # Per-target libFuzzer options (fuzz/README.md, "Adding a target").
  case "$t" in
    # Anything over 512 bytes is refused before parsing: a little beyond covers that check
    # without wasting executions on kilobytes of input.
    receipt_decode) args+=(-max_len=640) ;;
    # A script of steps, each a few bytes; 200 steps at most are read.
    tracker_state | ut_metadata) args+=(-max_len=2048) ;;
  esac
  # FUZZ_ARGS is split on spaces on purpose: it is a list of libFuzzer options.
  # shellcheck disable=SC2206
  args+=(${FUZZ_ARGS:-})
  echo "==== fuzz $t for ${secs}s ===="
  rc=0
  # Build time is not counted in max_total_time; the outer timeout is the last resort for a hang.
  timeout --kill-after=10 $((secs + 1200)) \
    cargo +nightly fuzz run --fuzz-dir fuzz "$t" "${dirs[@]}" -- "${args[@]}" 2>&1 | tee "$log" || rc=$?
  execs=$(awk '/^stat::number_of_executed_units/ {print $NF}' "$log" | tail -n1)
  # The last status line: coverage (edges), features, corpus.
  last() { awk -v k="$1" '/^#[0-9]+/ {for (i = 1; i < NF; i++) if ($i == k) c = $(i + 1)} END {print c}' "$log"; }
  corpus=$(last corp:)
  cov=$(last cov:)
  ft=$(last ft:)
  crash=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n1 | sed 's/Test unit written to //' || true)
  if [ "$rc" -eq 0 ]; then
    summary+=("ok     $t: ${execs:-?} executions in ${secs}s, no crash; cov ${cov:-?} ft ${ft:-?}; corpus now ${corpus:-?} (inputs/size)")
  else
    status=1
    summary+=("FAILED $t (exit $rc): ${execs:-?} executions${crash:+; crashing input: $crash}")
  fi
done
echo
echo "==== fuzz results ===="
printf '  %s\n' "${summary[@]}"
exit "$status"
