#!/usr/bin/env bash
# Measure a GAN offline: train gancli's MNIST classifier (the feature extractor), train DCGAN with the moving
# average of G and FID tracked during training, then score the final generator against the real-data floor.
#   bash examples/evaluate.sh [RUN_DIR]
# GANCLI_EXAMPLE_STEPS=N trains N steps and scores 200 images (the tests use this).
set -euo pipefail
run=${1:-runs/mnist-dcgan-eval}
steps=${GANCLI_EXAMPLE_STEPS:-}
if [[ -n "$steps" ]]; then cls=(--steps 20); gan=(--steps "$steps" --eval-every "$steps" --eval-n 100); n=(--n 200 --force)  # a 20-step classifier: forced
else cls=(--epochs 2); gan=(--epochs 5 --eval-every 500); n=(--n 10000); fi

gancli train mnist --arch classifier "${cls[@]}" --out "$run-classifier"
gancli train mnist --arch dcgan --ema "${gan[@]}" --eval-classifier "$run-classifier" --out "$run"
gancli eval "$run" --classifier "$run-classifier" "${n[@]}"
echo "Scores: $run/eval.json; FID during training: $run/metrics.csv; lowest-FID checkpoint: $run/checkpoints/best.safetensors"
