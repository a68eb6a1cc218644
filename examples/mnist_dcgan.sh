#!/usr/bin/env bash
# Train a DCGAN on MNIST digits, then sample a 5x5 grid of digits from it.
#   bash examples/mnist_dcgan.sh [RUN_DIR]
# Offline, gancli trains on the bundled MNIST test split (10,000 real digits) and says so.
# GANCLI_EXAMPLE_STEPS=N trains N steps instead of 5 epochs (the tests use this).
set -euo pipefail
run=${1:-runs/mnist-dcgan}
if [[ -n "${GANCLI_EXAMPLE_STEPS:-}" ]]; then length=(--steps "$GANCLI_EXAMPLE_STEPS"); else length=(--epochs 5); fi

gancli train mnist --arch dcgan "${length[@]}" --out "$run"
gancli sample --checkpoint "$run" --n 25 --seed 0 --out "$run/digits.png"
echo "Digits: $run/digits.png"
