#!/usr/bin/env bash
# The whole check, as CI runs it (.ci/run): setup, format, lints, Rust tests, build,
# then the browser end-to-end tests in a network namespace of our own (DESIGN.md §5).
# Every section runs even after an earlier one failed (except the browser tests, which need
# the build); the script exits non-zero if anything failed and ends with a plain
# "summary: N passed, N failed, N skipped" line counting Rust and browser tests.
#
#   SEEDTAB_SKIP_BROWSER=1   skip the browser tests
#   SEEDTAB_FAIL_FAST=1      stop at the first failed section
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

T0=$SECONDS
LOGDIR="$(mktemp -d -t seedtab-test.XXXXXX)"
trap 'rm -rf "$LOGDIR"' EXIT

failed_sections=()
results=()
passed=0 failed=0 skipped=0

# section NAME KIND CMD...: header, run with output teed to a log, record the outcome.
# KIND says which test counts to read from the output: cargo, node, or - (none).
# A failed section adds 1 to the failures unless its own failed tests were counted.
section() {
  local name="$1" kind="$2"; shift 2
  local t=$SECONDS
  echo
  echo "==== $name ===="
  local rc=0
  "$@" 2>&1 | tee "$LOGDIR/section.log" || rc=$?
  local secs=$((SECONDS - t))
  local counted_failures=0
  case "$kind" in
    cargo) counted_failures=$(count cargo) ;;
    node) counted_failures=$(count node) ;;
    *) echo "0 0 0" > "$LOGDIR/counts" ;;
  esac
  local p f s
  read -r p f s < "$LOGDIR/counts"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$rc" -eq 0 ]; then
    results+=("ok    ${secs}s  $name")
  else
    results+=("FAIL  ${secs}s  $name (exit $rc)")
    failed_sections+=("$name")
    [ "$counted_failures" -gt 0 ] || failed=$((failed + 1))
    echo "==== $name: FAILED (exit $rc) ===="
    if [ "${SEEDTAB_FAIL_FAST:-0}" = 1 ]; then finish; fi
  fi
  return 0
}

# count cargo|node: write "passed failed skipped" of the last section to $LOGDIR/counts, print failed.
#   cargo test / wasm-bindgen-test: "test result: ok. N passed; N failed; N ignored; ..."
#   node --test (TAP):              "# pass N", "# fail N", "# cancelled N", "# skipped N", "# todo N"
count() {
  if [ "$1" = cargo ]; then
    awk '/^test result:/ {
        for (k = 1; k < NF; k++) {
          if ($(k+1) ~ /^passed/) p += $k; if ($(k+1) ~ /^failed/) f += $k; if ($(k+1) ~ /^ignored/) i += $k
        } } END { print p+0, f+0, i+0 }' "$LOGDIR/section.log" > "$LOGDIR/counts"
  else
    awk '/^# pass / {p += $3} /^# fail / {f += $3} /^# cancelled / {f += $3}
        /^# skipped / {s += $3} /^# todo / {s += $3} END { print p+0, f+0, s+0 }' "$LOGDIR/section.log" > "$LOGDIR/counts"
  fi
  awk '{ print $2 }' "$LOGDIR/counts"
}

finish() {
  echo
  echo "==== results ($((SECONDS - T0)) s in all) ===="
  printf '  %s\n' "${results[@]}"
  echo "summary: $passed passed, $failed failed, $skipped skipped"
  if [ ${#failed_sections[@]} -gt 0 ]; then exit 1; fi
  exit 0
}

section "setup" - bash scripts/setup.sh
if [ ${#failed_sections[@]} -gt 0 ]; then finish; fi

section "rustfmt" - cargo fmt --all --check -- --color never
section "clippy (native)" - cargo clippy --all-targets --features native -- -D warnings
section "clippy (wasm32)" - cargo clippy --target wasm32-unknown-unknown --all-targets -- -D warnings
section "cargo test" cargo cargo test --features native --no-fail-fast
# Every fuzz target for a few seconds from its committed seeds (the seeds themselves are replayed
# by tests/fuzz_seeds.rs above); long runs: bash bench/fuzz.sh all 600.
section "fuzz (short)" - bash bench/fuzz.sh short 3

build_ok=1
section "build" - bash scripts/build.sh || true
case "${failed_sections[*]:-}" in *build*) build_ok=0 ;; esac

# in_netns CMD...: run inside the test namespace (WebRTC needs its default route; DESIGN.md §5).
in_netns() {
  local ns="${SEEDTAB_NETNS:-seedtab-test}"
  if bash tests/browser/netns.sh up; then
    ip netns exec "$ns" "$@"
  else
    echo "WARNING: cannot create network namespace $ns (not root?): running without it;" \
      "WebRTC tests need an interface with a default route and will fail otherwise" >&2
    "$@"
  fi
}

# Rust tests that run in the browser (wasm-bindgen-test), when there are any.
if grep -rqs --include='*.rs' 'wasm_bindgen_test' src tests; then
  section "wasm tests (headless chromium)" cargo in_netns \
    wasm-pack test --headless --chromedriver /usr/bin/chromedriver --mode no-install
fi

browser_tests() {
  # Each test sets its own timeout; this bounds the whole run should a hook or Chromium hang.
  in_netns timeout --kill-after=10 1500 \
    node --test --test-concurrency=1 --test-reporter=tap tests/browser/
}
if [ "${SEEDTAB_SKIP_BROWSER:-0}" = 1 ]; then
  echo; echo "==== browser tests: skipped (SEEDTAB_SKIP_BROWSER=1) ===="
elif [ "$build_ok" -eq 1 ]; then
  section "browser tests" node browser_tests
else
  echo; echo "==== browser tests: not run (build failed) ===="
  results+=("SKIP      browser tests (build failed)")
fi

finish
