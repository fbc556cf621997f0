#!/usr/bin/env bash
# Build everything: the wasm package (pkg/), the web bundle (www/dist/) and the native binary.
#   scripts/build.sh            all three
#   scripts/build.sh wasm|web|native   one part (web needs pkg/ from wasm)
# Expects the tools from scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(wasm web native)

for part in "${parts[@]}"; do
  case "$part" in
    wasm)
      echo "== build: wasm package (pkg/)"
      # --mode no-install: use the wasm-bindgen that setup.sh installed, never download one.
      # wasm-opt is off in Cargo.toml ([package.metadata.wasm-pack.profile.release]).
      wasm-pack --log-level warn build --target bundler --release --mode no-install \
        --out-dir pkg --out-name seedtab
      ;;
    web)
      echo "== build: web bundle (www/dist/)"
      node_modules/.bin/webpack --mode production
      ;;
    native)
      echo "== build: native binary (target/release/seedtab) and the hostile test peer"
      cargo build --release --features native --bin seedtab --example hostile_peer
      ;;
    *)
      echo "usage: $0 [wasm|web|native]..." >&2
      exit 2
      ;;
  esac
done
