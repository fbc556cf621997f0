#!/usr/bin/env bash
# Install what building and testing seedtab needs, and nothing when it is all there.
# Idempotent; non-interactive (CI=true, no stdin); prints one line per thing it installs.
#
#   Debian packages   chromium chromium-driver iproute2   (browser tests, test network namespace)
#                     xvfb   (hidden-tab test: a headful Chromium whose background tabs are throttled)
#                     redis-server   (tests/tracker_redis.rs: tracker instances sharing swarms)
#   rustup            target wasm32-unknown-unknown, components clippy rustfmt
#   cargo install     wasm-bindgen-cli = the wasm-bindgen version in Cargo.lock, wasm-pack,
#                     cargo-fuzz (when the nightly toolchain is there)
#   npm ci            webpack, playwright-core, ... (package-lock.json)
#
# Notes (DESIGN.md §5): wasm-pack must not download wasm-bindgen/wasm-opt (nothing but package
# registries is reachable), so wasm-bindgen-cli is installed here at exactly the locked version,
# WITHOUT --locked (its lockfile names a yanked/missing dependency version). `npm ci` runs with
# --ignore-scripts: webtorrent's dependency ip-set has a broken preinstall script, and
# playwright-core must never download a browser (we use Debian's /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
export PATH="$HOME/.cargo/bin:$PATH"
WASM_PACK_VERSION=0.15.1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

LOG="$(mktemp -t seedtab-setup.XXXXXX)"
trap 'rm -f "$LOG"' EXIT

# run_logged "what" cmd...: run quietly; print "setup: what ... done (Ns)"; show the log on failure.
run_logged() {
  local what="$1"; shift
  local t0=$SECONDS
  printf 'setup: %s ... ' "$what"
  if "$@" >"$LOG" 2>&1 </dev/null; then
    echo "done ($((SECONDS - t0)) s)"
  else
    local rc=$?
    echo "FAILED (exit $rc)"
    tail -n 60 "$LOG" >&2
    exit "$rc"
  fi
}

# --- Debian packages -------------------------------------------------------------------------
missing_debs=()
[ -x /usr/bin/chromium ] || missing_debs+=(chromium)
[ -x /usr/bin/chromedriver ] || missing_debs+=(chromium-driver)
command -v ip >/dev/null 2>&1 || missing_debs+=(iproute2)
[ -x /usr/bin/Xvfb ] || missing_debs+=(xvfb)
command -v redis-server >/dev/null 2>&1 || missing_debs+=(redis-server)
if [ ${#missing_debs[@]} -gt 0 ]; then
  run_logged "apt-get update" $SUDO apt-get update -qq
  run_logged "apt-get install ${missing_debs[*]}" \
    $SUDO apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing_debs[@]}"
fi

# --- Rust toolchain pieces -------------------------------------------------------------------
if ! command -v rustup >/dev/null 2>&1 || ! command -v cargo >/dev/null 2>&1; then
  echo "setup: rustup/cargo not found: install Rust with rustup first" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  run_logged "rustup target add wasm32-unknown-unknown" rustup target add wasm32-unknown-unknown
fi
missing_components=()
cargo clippy --version >/dev/null 2>&1 || missing_components+=(clippy)
cargo fmt --version >/dev/null 2>&1 || missing_components+=(rustfmt)
if [ ${#missing_components[@]} -gt 0 ]; then
  run_logged "rustup component add ${missing_components[*]}" rustup component add "${missing_components[@]}"
fi

# wasm-bindgen-cli must match the wasm-bindgen crate exactly.
bindgen_version=""
if [ -f Cargo.lock ]; then
  bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
fi
if [ -z "$bindgen_version" ]; then
  # No lockfile yet: Cargo.toml pins it with "=X.Y.Z".
  bindgen_version="$(sed -n 's/^wasm-bindgen *= *"=\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)"
fi
if [ -z "$bindgen_version" ]; then
  echo "setup: cannot tell the wasm-bindgen version from Cargo.lock or Cargo.toml" >&2
  exit 1
fi
installed_bindgen="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$installed_bindgen" != "$bindgen_version" ]; then
  run_logged "cargo install wasm-bindgen-cli $bindgen_version (a few minutes)" \
    cargo install --quiet --force wasm-bindgen-cli --version "=$bindgen_version"
fi
if ! command -v wasm-pack >/dev/null 2>&1; then
  run_logged "cargo install wasm-pack $WASM_PACK_VERSION (a few minutes)" \
    cargo install --quiet --locked wasm-pack --version "=$WASM_PACK_VERSION"
fi

# The short fuzz run in scripts/test.sh: cargo-fuzz, where the nightly toolchain it needs is
# installed (it is on this project's machines; without it that run says "skipped").
if rustup toolchain list 2>/dev/null | grep -q '^nightly' && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  run_logged "cargo install cargo-fuzz (a few minutes)" cargo install --quiet --locked cargo-fuzz
fi

# --- npm -------------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: node/npm not found" >&2
  exit 1
fi
# npm ci writes node_modules/.package-lock.json: reinstall when package-lock.json is newer.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  run_logged "npm ci" npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
