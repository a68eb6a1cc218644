#!/usr/bin/env bash
# Larger images on a small budget: train a small DCGAN and an SRCNN upscaler on the same data,
# then generate at 28x28 and upscale to 56x56 in one command; finally measure the upscaler
# against bicubic on the test split.
#   bash examples/generate_then_upscale.sh [DATASET] [RUN_PREFIX]
# GANCLI_EXAMPLE_STEPS=N trains each model N steps (the tests use this).
set -euo pipefail
dataset=${1:-fashion-mnist}
prefix=${2:-runs/$dataset}
if [[ -n "${GANCLI_EXAMPLE_STEPS:-}" ]]; then gan=(--steps "$GANCLI_EXAMPLE_STEPS"); sr=(--steps "$GANCLI_EXAMPLE_STEPS"); limit=50
else gan=(--epochs 5); sr=(--epochs 1); limit=1000; fi

gancli train "$dataset" --arch dcgan "${gan[@]}" --out "$prefix-dcgan"
gancli train "$dataset" --arch srcnn --scale 2 "${sr[@]}" --out "$prefix-srcnn"
gancli sample --checkpoint "$prefix-dcgan" --n 16 --seed 0 --upscale "$prefix-srcnn" --out "$prefix-big.png"
gancli upscale --benchmark "$dataset" --limit "$limit" --model "$prefix-srcnn"
echo "56x56 samples: $prefix-big.png"
