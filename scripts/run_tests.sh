#!/usr/bin/env bash
# The README's second command (and CI's): set up, build, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j"$(nproc)" dltrain
make -j"$(nproc)" test
