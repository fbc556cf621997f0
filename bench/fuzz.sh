#!/usr/bin/env bash
# Runs a cargo-fuzz target (fuzz/README.md) for a bounded time and prints what it did.
#
#   bash bench/fuzz.sh                        receipt_decode for 60 s
#   bash bench/fuzz.sh TARGET [SECONDS]       one target (`cargo +nightly fuzz list --fuzz-dir fuzz`)
#   bash bench/fuzz.sh all [SECONDS]          every target, SECONDS each
#
# Installs only what is missing, quietly: the nightly toolchain (cargo-fuzz needs -Z flags for
# the sanitizer and coverage instrumentation) and cargo-fuzz. Seeds fuzz/corpus/TARGET from the
# test vectors (fuzz/seed-corpus.mjs) and uses fuzz/dicts/TARGET.dict when there is one.
# Exits non-zero if a target crashed; the crashing input is in fuzz/artifacts/TARGET/.
# Extra libFuzzer options can be passed in FUZZ_ARGS, e.g. FUZZ_ARGS='-jobs=2 -workers=2'.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

target="${1:-receipt_decode}"
secs="${2:-60}"
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [TARGET|all] [SECONDS]" >&2; exit 2 ;; esac

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal >/dev/null
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  # --locked: cargo-fuzz's own tested dependency versions. Built with the default toolchain.
  cargo install cargo-fuzz --locked --quiet
fi

fuzz() { cargo +nightly fuzz "$@" --fuzz-dir fuzz; }

if [ "$target" = all ]; then
  mapfile -t targets < <(fuzz list)
else
  targets=("$target")
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
  node fuzz/seed-corpus.mjs "$t"
  args=(-max_total_time="$secs" -timeout=10 -print_final_stats=1)
  [ -f "fuzz/dicts/$t.dict" ] && args+=(-dict="fuzz/dicts/$t.dict")
  # Per-target libFuzzer options (fuzz/README.md, "Adding a target").
  case "$t" in
    # Anything over 512 bytes is refused before parsing: a little beyond covers that check
    # without wasting executions on kilobytes of input.
    receipt_decode) args+=(-max_len=640) ;;
  esac
  # FUZZ_ARGS is split on spaces on purpose: it is a list of libFuzzer options.
  # shellcheck disable=SC2206
  args+=(${FUZZ_ARGS:-})
  echo "==== fuzz $t for ${secs}s ===="
  rc=0
  # Build time is not counted in max_total_time; the outer timeout is the last resort for a hang.
  timeout --kill-after=10 $((secs + 1200)) \
    cargo +nightly fuzz run --fuzz-dir fuzz "$t" -- "${args[@]}" 2>&1 | tee "$log" || rc=$?
  execs=$(awk '/^stat::number_of_executed_units/ {print $NF}' "$log" | tail -n1)
  corpus=$(awk '/^#[0-9]+/ {for (i = 1; i < NF; i++) if ($i == "corp:") c = $(i + 1)} END {print c}' "$log")
  crash=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n1 | sed 's/Test unit written to //' || true)
  if [ "$rc" -eq 0 ]; then
    summary+=("ok     $t: ${execs:-?} executions in ${secs}s, no crash; corpus now ${corpus:-?} (inputs/size)")
  else
    status=1
    summary+=("FAILED $t (exit $rc): ${execs:-?} executions${crash:+; crashing input: $crash}")
  fi
done
echo
echo "==== fuzz results ===="
printf '  %s\n' "${summary[@]}"
exit "$status"
