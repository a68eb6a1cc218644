"""Small datasets: cdcgan 28x28 on balanced Fashion-MNIST subsets, the same CPU time each, with --augment none, diff and
ada, and with --init from a run on MNIST digits and from one on the full Fashion-MNIST training set; then whether the
2,000-image run's images help a classifier (gancli eval --usefulness).

    python benchmarks/small_data.py --init-mnist RUN --init-fmnist RUN [--sizes 500,2000] [--minutes 3] [--seeds 0]

FID and class coverage use gancli's classifier trained on the full Fashion-MNIST training set (as benchmarks/quality.py),
against the full test split. The subsets are written as image folders (class sub-folders), as a user's data would be.
The budget is CPU time (process time / threads). Results: tables, and OUT/small_data.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from quality import cpu_clock, train_classifier  # noqa: E402


def write_subset(out: Path, size: int) -> Path:
    """The first size/10 training images of each Fashion-MNIST class, as PNGs in class folders."""
    from PIL import Image

    from gancli.data.datasets import NAMED_DATASETS, load_dataset

    folder = out / f"fashion-{size}"
    if folder.is_dir():
        return folder
    data = load_dataset("fashion-mnist", 28)
    names = NAMED_DATASETS["fashion-mnist"].class_names
    for k, name in enumerate(names):
        (folder / name).mkdir(parents=True)
        for i, index in enumerate((data.labels == k).nonzero().flatten()[: size // len(names)].tolist()):
            Image.fromarray(data.images[index, 0].numpy(), mode="L").save(folder / name / f"{i:04d}.png")
    return folder


def train_run(data: Path, run_dir: Path, minutes: float, seed: int, **options) -> None:
    """gancli train DATA --arch cdcgan --recipe small-fast [options], for `minutes` of CPU time."""
    from gancli.cli.progress import TrainingDisplay
    from gancli.store.runs import last_checkpoint_path
    from gancli.training import loop
    from gancli.training.plan import plan_training
    from gancli.training.start import train_options

    if last_checkpoint_path(run_dir).is_file():
        return
    values = dict(dataset=str(data), arch="cdcgan", recipe="small-fast", image_size=28, steps=10**7, sample_every=500, seed=seed,
                  outdir=run_dir, device="cpu", **options)  # fmt: skip
    config, run_dir, _, notices = plan_training(train_options() | values, set(values))
    with TrainingDisplay() as display:  # the time limit on the CPU clock, as benchmarks/quality.py does
        loop.train(config, run_dir, "cpu", display, time_limit=minutes * 60, clock=cpu_clock, notices=notices)


def scores(run_dir: Path, extractor, n: int) -> dict:
    from gancli.evaluation.evaluate import evaluate
    from gancli.use.loading import open_model

    model = open_model(run_dir, "generator", "cpu")
    config = model.config.with_changes(dataset="fashion-mnist", data_dir="")  # the full test split as the reference
    result = evaluate(model.net, config, extractor, n, seed=0, device=torch.device("cpu"))
    return {"steps": model.step, "FID": result.scores["FID"], "classes_covered": result.scores.get("classes_covered"),
            "class_KL": result.scores.get("class_KL"), "recall": result.scores.get("recall")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init-mnist", type=Path, required=True, help="a cdcgan small-fast run on MNIST digits")
    parser.add_argument("--init-fmnist", type=Path, required=True, help="a cdcgan small-fast run on the full Fashion-MNIST training set")
    parser.add_argument("--sizes", default="500,2000")
    parser.add_argument("--minutes", type=float, default=3.0, help="CPU minutes per run")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--n", type=int, default=10_000, help="generated images per FID")
    parser.add_argument("--usefulness-steps", type=int, default=1000)
    parser.add_argument("--usefulness-seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/small_data"))
    args = parser.parse_args()
    import gancli
    from gancli.evaluation.features import ClassifierExtractor

    args.out.mkdir(parents=True, exist_ok=True)
    extractor = ClassifierExtractor(train_classifier("fashion-mnist", args.out / "classifier", 1), torch.device("cpu"))
    rows = {
        "--augment none": {},
        "--augment diff": {"augment": "diff"},
        "--augment ada": {"augment": "ada"},
        "--init MNIST run": {"init": str(args.init_mnist)},
        "--init Fashion-MNIST run": {"init": str(args.init_fmnist)},
        "--init Fashion-MNIST run, --augment ada": {"init": str(args.init_fmnist), "augment": "ada"},
    }
    results: dict[str, dict[str, list[dict]]] = {}
    for size in map(int, args.sizes.split(",")):
        data = write_subset(args.out, size)
        for name, options in rows.items():
            for seed in map(int, args.seeds.split(",")):
                run_dir = args.out / f"{size}-{name.replace('--', '').replace(' ', '-').replace(',', '')}-seed{seed}"
                train_run(data, run_dir, args.minutes, seed, **options)
                row = scores(run_dir, extractor, args.n)
                if options.get("augment") == "ada":
                    import csv

                    with open(run_dir / "metrics.csv") as f:
                        row["final_p"] = float(list(csv.DictReader(f))[-1]["ada_p"])
                results.setdefault(str(size), {}).setdefault(name, []).append(row)
                print(f"{size} {name} seed {seed}: {json.dumps(row)}", flush=True)
    (args.out / "small_data.json").write_text(json.dumps(results, indent=1))
    for size, table in results.items():
        print(f"\nFashion-MNIST, {size} training images (balanced), cdcgan --recipe small-fast, {args.minutes:g} CPU-minutes each; "
              f"FID of {args.n:,} samples against the test split; seeds {args.seeds} (mean, ± half the range)")  # fmt: skip
        print("| run | steps | FID | classes | class KL | recall | final p |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, runs in table.items():
            def cell(key, fmt):
                values = [r[key] for r in runs if r.get(key) is not None]
                if not values:
                    return ""
                mean = sum(values) / len(values)
                return format(mean, fmt) + (f" ± {(max(values) - min(values)) / 2:{fmt}}" if len(values) > 1 else "")

            print(f"| {name} | {cell('steps', '.0f')} | {cell('FID', '.2f')} | {cell('classes_covered', '.0f')} | {cell('class_KL', '.3f')} | "
                  f"{cell('recall', '.3f')} | {cell('final_p', '.3f')} |")  # fmt: skip

    size = max(map(int, args.sizes.split(",")))
    best = min(results[str(size)], key=lambda name: sum(r["FID"] for r in results[str(size)][name]))
    run_dir = args.out / f"{size}-{best.replace('--', '').replace(' ', '-').replace(',', '')}-seed{args.seeds.split(',')[0]}"
    started = time.perf_counter()
    print(f"\nUsefulness of the {size}-image run with the best FID ({best}), {args.usefulness_steps} classifier steps, "
          f"{args.usefulness_seeds} seeds for the first row, 1 for the others:")  # fmt: skip
    table = {}
    for label, kw in (("EMA weights, N = real per class", {"seeds": args.usefulness_seeds}), ("last-step weights (no EMA)", {"ema": False}),
                      ("EMA, N = 3x real per class", {"per_class": 3 * size // 10})):  # fmt: skip
        result = gancli.usefulness(run_dir, test="fashion-mnist", steps=args.usefulness_steps, device="cpu", save=False, **kw)
        table[label] = result
        print(f"{label}: " + json.dumps({c: result.accuracy[c] for c in result.accuracy}), flush=True)
    print("| synthetic images | (a) real | (b) synthetic only (CAS) | (c) real + synthetic | (c) - (a), points |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, r in table.items():
        print(f"| {label} | {100 * r.mean('real'):.1f} ± {100 * r.spread('real'):.1f} | {100 * r.mean('synthetic'):.1f} ± {100 * r.spread('synthetic'):.1f} | "
              f"{100 * r.mean('real+synthetic'):.1f} ± {100 * r.spread('real+synthetic'):.1f} | {100 * r.change:+.1f} |")  # fmt: skip
    first = next(iter(table.values()))
    print("CAS per class: " + ", ".join(f"{n} {100 * sum(s[k] for s in first.class_accuracy) / len(first.class_accuracy):.0f}%"
                                        for k, n in enumerate(first.class_names)))  # fmt: skip
    print(f"usefulness: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
