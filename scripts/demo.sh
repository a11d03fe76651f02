#!/usr/bin/env bash
# scripts/demo.sh - what `make demo` runs.  (Filled in by the nightly-run issue; for now it
# runs the engine benchmark.)
set -euo pipefail
cd "$(dirname "$0")/.."
./rlprice bench engine
