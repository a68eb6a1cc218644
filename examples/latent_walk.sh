#!/usr/bin/env bash
# Conditional digits and a walk through latent space: train a conditional DCGAN on MNIST, draw a
# grid with one row per digit, export 100 images per digit as an ImageFolder tree (synthetic data
# for augmentation), and walk from seed 1 to 2 to 3 while morphing a 3 into an 8.
#   bash examples/latent_walk.sh [RUN_DIR]
# GANCLI_EXAMPLE_STEPS=N trains N steps instead of 10 epochs (the tests use this).
set -euo pipefail
run=${1:-runs/mnist-cdcgan}
if [[ -n "${GANCLI_EXAMPLE_STEPS:-}" ]]; then length=(--steps "$GANCLI_EXAMPLE_STEPS"); per_class=2; else length=(--epochs 10); per_class=100; fi

gancli train mnist --arch cdcgan "${length[@]}" --out "$run"
gancli sample --checkpoint "$run" --label all --seed 0 --out "$run/classes.png"
gancli sample --checkpoint "$run" --per-class "$per_class" --seed 0 --outdir "$run/synthetic"
gancli interpolate 1 2 3 --frames 8 --checkpoint "$run" --labels 3,8,3 --out "$run/walk.png" --gif "$run/walk.gif"
echo "Class grid: $run/classes.png  ImageFolder: $run/synthetic/  Walk: $run/walk.png, $run/walk.gif"
