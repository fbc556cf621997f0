#!/usr/bin/env bash
# The ledger's ingest benchmark (issue 6, docs/ledger.md): pre-signs receipts (50,000 by default),
# then prints receipts verified and stored per second three ways (the lines starting "LEDGER"):
# verification alone, in process (no HTTP), and over HTTP to the ledger on 127.0.0.1:0 with
# batches of 1000 from 2 connections. Target: >= 5,000/s over HTTP on 2 cores.
#   bash bench/ledger.sh [--receipts N] [--connections C] [--batch B] [--budget-s S]
# Release build first (not timed); the run itself gives up after 15 minutes whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --quiet --release --features native --example ledger_ingest
exec timeout --kill-after=10 900 target/release/examples/ledger_ingest "$@"
