#!/usr/bin/env bash
# Train a DCGAN on your own folder of images (sub-folders become classes), then sample from it
# and put the training-time sample grids side by side.
#   bash examples/image_folder.sh PHOTOS_DIR [RUN_DIR]
# GANCLI_EXAMPLE_STEPS=N trains N steps instead of 20 epochs (the tests use this).
set -euo pipefail
photos=${1:?usage: image_folder.sh PHOTOS_DIR [RUN_DIR]}
run=${2:-runs/$(basename "$photos")-dcgan}
if [[ -n "${GANCLI_EXAMPLE_STEPS:-}" ]]; then length=(--steps "$GANCLI_EXAMPLE_STEPS" --sample-every 1); else length=(--epochs 20); fi

gancli train "$photos" --arch dcgan --image-size 64 "${length[@]}" --out "$run"
gancli sample --checkpoint "$run" --n 16 --seed 0 --out "$run/generated.png"
gancli grid "$run/samples" --out "$run/progress.png"
echo "Generated: $run/generated.png  Training progress: $run/progress.png"
