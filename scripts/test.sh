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

# section NAME CMD...: header, run with output teed to a log, record the outcome.
section() {
  local name="$1"; shift
  local t=$SECONDS
  echo
  echo "==== $name ===="
  local rc=0
  "$@" 2>&1 | tee "$LOGDIR/section.log" || rc=$?
  local secs=$((SECONDS - t))
  if [ "$rc" -eq 0 ]; then
    results+=("ok    ${secs}s  $name")
  else
    results+=("FAIL  ${secs}s  $name (exit $rc)")
    failed_sections+=("$name")
    echo "==== $name: FAILED (exit $rc) ===="
    if [ "${SEEDTAB_FAIL_FAST:-0}" = 1 ]; then finish; fi
  fi
  return 0
}

# Add the counts from `cargo test` ("test result: ok. N passed; N failed; N ignored; ...").
count_cargo() {
  local p f i
  read -r p f i < <(awk '/^test result:/ {
      for (k = 1; k <= NF; k++) {
        if ($(k+1) ~ /^passed/) p += $k; if ($(k+1) ~ /^failed/) f += $k; if ($(k+1) ~ /^ignored/) i += $k
      } } END { print p+0, f+0, i+0 }' "$LOGDIR/section.log")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + i))
}

# Add the counts from node's test runner (TAP: "# pass N", "# fail N", ...).
count_node() {
  local p f s
  read -r p f s < <(awk '/^# pass / {p += $3} /^# fail / {f += $3} /^# cancelled / {f += $3}
      /^# skipped / {s += $3} /^# todo / {s += $3} END { print p+0, f+0, s+0 }' "$LOGDIR/section.log")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

finish() {
  echo
  echo "==== results ($((SECONDS - T0)) s in all) ===="
  printf '  %s\n' "${results[@]}"
  if [ ${#failed_sections[@]} -gt 0 ] && [ "$failed" -eq 0 ]; then
    # A section failed without a failing test to show for it (fmt, clippy, build, a crash).
    failed=${#failed_sections[@]}
  fi
  echo "summary: $passed passed, $failed failed, $skipped skipped"
  if [ ${#failed_sections[@]} -gt 0 ]; then exit 1; fi
  exit 0
}

section "setup" bash scripts/setup.sh
if [ ${#failed_sections[@]} -gt 0 ]; then finish; fi

section "rustfmt" cargo fmt --all --check
section "clippy (native)" cargo clippy --all-targets --features native -- -D warnings
section "clippy (wasm32)" cargo clippy --target wasm32-unknown-unknown --all-targets -- -D warnings
section "cargo test" cargo test --features native
count_cargo

build_ok=1
section "build" bash scripts/build.sh || true
case "${failed_sections[*]:-}" in *build*) build_ok=0 ;; esac

browser_tests() {
  local ns="${SEEDTAB_NETNS:-seedtab-test}"
  if bash tests/browser/netns.sh up; then
    ip netns exec "$ns" node --test --test-concurrency=1 tests/browser/
  else
    echo "WARNING: cannot create network namespace $ns (not root?): running without it;" \
      "WebRTC tests need an interface with a default route and will fail otherwise" >&2
    node --test --test-concurrency=1 tests/browser/
  fi
}
if [ "${SEEDTAB_SKIP_BROWSER:-0}" = 1 ]; then
  echo; echo "==== browser tests: skipped (SEEDTAB_SKIP_BROWSER=1) ===="
elif [ "$build_ok" -eq 1 ]; then
  section "browser tests" browser_tests
  count_node
else
  echo; echo "==== browser tests: not run (build failed) ===="
  results+=("SKIP      browser tests (build failed)")
fi

finish
