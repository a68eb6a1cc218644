"""Sample quality per training recipe at a fixed CPU budget: classifier-FID next to the real-data floor.

For each recipe, DCGAN (or the recipe's architecture) trains on the dataset for the same CPU time, then `gancli eval`'s
metrics are computed with a classifier gancli trained on the same data (offline, no Inception).
The real-data floor is the score of held-out real images against the same reference.

    python benchmarks/quality.py --dataset fashion-mnist --minutes 4 [--recipes default,ema,...] [--n 10000]

The budget is CPU time (process time divided by torch's thread count), so other work on the
machine slows the wall clock but not the comparison. Results: a table, and OUT/quality.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gancli import training
from gancli.config import TrainConfig
from gancli.evaluate import evaluate
from gancli.features import ClassifierExtractor
from gancli.runs import last_checkpoint_path
from gancli.loading import open_model

RECIPES: dict[str, dict] = {
    "default": {},
    "ema": {"ema": 0.999},
    "ttur": {"lr_g": 1e-4, "lr_d": 4e-4},
    "hinge-sn": {"loss": "hinge", "spectral_norm": True, "lr_g": 1e-4, "lr_d": 4e-4},
    "wgan-gp": {"loss": "wgan-gp", "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9},
    "augment": {"augment": "color,translation,cutout"},
    "bf16": {"precision": "bf16"},  # the default recipe in bfloat16: does the speed cost quality?
    # the later generations, with their own defaults (gancli train applies them; TrainConfig needs them spelled out)
    "sagan": {"arch": "sagan", "loss": "hinge", "lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9},
    "progan": {"arch": "progan", "image_size": 32, "loss": "wgan-gp", "lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0, "beta2": 0.99,
               "phase_steps": 80},  # growth done after 560 steps, well inside a 4-minute budget
    "stylegan": {"arch": "stylegan", "image_size": 32, "lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0, "beta2": 0.99},
}
EXTRA = ("bf16", "sagan", "progan", "stylegan")  # run only when asked for


def cpu_clock() -> float:
    """CPU seconds of this process per thread: wall seconds on an otherwise idle machine."""
    return time.process_time() / torch.get_num_threads()


def train_classifier(dataset: str, out: Path, epochs: int) -> Path:
    path = last_checkpoint_path(out)
    if not path.is_file():
        config = TrainConfig(arch="classifier", dataset=dataset, image_size=28, channels=1, epochs=epochs, batch_size=64)
        training.train(config, out, "cpu")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--minutes", type=float, default=4.0, help="CPU budget per recipe")
    parser.add_argument("--recipes", default=",".join(r for r in RECIPES if r not in EXTRA), help=f"some of {', '.join(RECIPES)}")
    parser.add_argument("--n", type=int, default=10_000, help="generated images per evaluation")
    parser.add_argument("--classifier-epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    args = parser.parse_args()
    out = args.out / args.dataset
    device = torch.device("cpu")
    classifier = train_classifier(args.dataset, out / "classifier", args.classifier_epochs)
    extractor = ClassifierExtractor(classifier, device)
    print(f"Extractor: {extractor.identity}", flush=True)
    results = {}
    for name in args.recipes.split(","):
        run_dir = out / name
        if not last_checkpoint_path(run_dir).is_file():
            recipe = {"arch": "dcgan", "image_size": 28} | RECIPES[name]
            config = TrainConfig(dataset=args.dataset, steps=10**7, sample_every=500, **recipe)
            training.train(config, run_dir, "cpu", time_limit=args.minutes * 60, clock=cpu_clock)
        model = open_model(run_dir, "generator", "cpu")
        result = evaluate(model.net, model.config, extractor, args.n, seed=0, device=device)
        results[name] = {"steps": model.step, **result.scores}
        results["real floor"] = {"steps": 0, **result.floor}
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    print(f"\n{args.dataset}, DCGAN 28x28 unless named, {args.minutes:g} CPU-minutes per recipe, {args.n:,} samples; {result.reference}")
    print(f"{'recipe':<12}{'steps':>7}{'FID':>9}{'KID':>9}{'prec.':>7}{'recall':>7}{'classes':>8}{'class KL':>9}")
    for name, r in results.items():
        print(f"{name:<12}{r['steps']:>7}{r['FID']:>9.2f}{r['KID']:>9.3f}{r['precision']:>7.3f}{r['recall']:>7.3f}"
              f"{r.get('classes_covered', 0):>8.0f}{r.get('class_KL', float('nan')):>9.4f}")  # fmt: skip
    (out / "quality.json").write_text(json.dumps({"extractor": extractor.identity, "minutes": args.minutes, "results": results}, indent=1))


if __name__ == "__main__":
    main()
