#!/usr/bin/env bash
# The README's first command: set up, build, train LeNet on Fashion-MNIST
# (Caffe's LeNet solver, 10,000 iterations) and print the test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j"$(nproc)"
./dltrain train configs/fashion_lenet/net.yaml configs/fashion_lenet/solver.yaml "$@"
