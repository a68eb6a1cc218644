"""Data at scale: a folder of JPEGs decoded once, and training from its cache held in memory or read by batch.

Makes a synthetic folder (default 50,000 JPEGs of varied sizes in 10 class folders, a few of them
corrupt) and reports:

  decode     first-run `gancli data` with 1 process and with one per core (wall seconds, files/s)
  hit        the second run: `gancli data` again and `gancli train ... --steps 1` on the cached folder
  memory     peak RSS (GNU time) of training dcgan 64 px on the cache: resident (no budget), read by
             batch under --memory-budget smaller than the data, and "the model's own" (the same run
             on a 512-image folder), so that mapped <= budget + own can be checked
  speed      training img/s of dcgan 64 px from the resident tensor and from the file, in one process,
             alternated --repeats times (medians): the file path should be within 15%

    python benchmarks/data_scale.py [--images 50000] [--budget 256M] [--steps 40] [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CLASSES = 10
CORRUPT = 6  # truncated or not images at all: they must be named as skipped, not stop the run


def make_chunk(args: tuple[Path, int, int]) -> None:
    """JPEGs start..stop-1: a coloured background, a shape, and noise (so JPEG has texture to code)."""
    from PIL import Image, ImageDraw

    folder, start, stop = args
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        w, h = (int(v) for v in rng.integers(48, 257, 2))
        base = rng.integers(0, 256, 3)
        pixels = np.clip(base + rng.normal(0, 18, (h, w, 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(pixels)
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        shape = ImageDraw.Draw(img).ellipse if i % 2 else ImageDraw.Draw(img).rectangle
        shape((x0, y0, x0 + w // 2, y0 + h // 2), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        img.save(folder / f"c{i % CLASSES}" / f"{i:06d}.jpg", quality=90)


def make_folder(folder: Path, count: int) -> None:
    for c in range(CLASSES):
        (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
    chunks = [(folder, s, min(s + 1000, count)) for s in range(0, count, 1000)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(make_chunk, chunks))
    victims = sorted(folder.rglob("*.jpg"))[:: max(1, count // CORRUPT)][:CORRUPT]
    for n, path in enumerate(victims):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3] if n % 2 else b"not a jpeg")


def run(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(peak RSS in MB, wall seconds, stdout) of one command, from GNU time."""
    print(f"running: gancli {' '.join(cmd[3:])}", flush=True)  # each case takes seconds to minutes
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as report:
        done = subprocess.run(["/usr/bin/time", "-f", "%M %e", "-o", report.name, *cmd], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
        kb, seconds = report.read().split()[-2:]
    return int(kb) / 1024, float(seconds), done.stdout + done.stderr


def gancli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gancli", *args]


def speeds(folder: Path, cache: Path, budget: int, steps: int, repeats: int) -> tuple[float, float]:
    """Median img/s of dcgan 64 px training steps from the resident tensor and from the file."""
    import torch

    os.environ["GANCLI_CACHE_DIR"] = str(cache)
    from gancli.config import TrainConfig
    from gancli.data.datasets import load_dataset
    from gancli.data.mapped import MappedImages
    from gancli.training.tasks import make_task
    from gancli.training.loop import epoch_order

    loops = {}
    for name, memory in (("resident", 2**62), ("file", budget)):
        dataset = load_dataset(str(folder), 64, memory_budget=memory)
        assert isinstance(dataset.images, MappedImages) == (name == "file")
        config = TrainConfig(dataset=str(folder), image_size=64, channels=3, num_classes=len(dataset.class_names),
                             class_names=dataset.class_names, batch_size=32)  # fmt: skip
        torch.manual_seed(0)
        loops[name] = (make_task(config, dataset, torch.device("cpu")), epoch_order(len(dataset), 0, 0))
    measured: dict[str, list[float]] = {name: [] for name in loops}
    for repeat in range(repeats + 1):  # the first round warms up both
        for name, (task, order) in loops.items():
            started = time.perf_counter()
            for i in range(steps):
                position = (repeat * steps + i) * 32 % (len(order) - 32)
                task.step(order[position : position + 32])
            if repeat:
                measured[name].append(steps * 32 / (time.perf_counter() - started))
    return statistics.median(measured["resident"]), statistics.median(measured["file"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--budget", default="256M", help="--memory-budget for the run read by batch (below the data's size)")
    parser.add_argument("--steps", type=int, default=40, help="training steps per memory run and per speed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    from gancli.data.mapped import format_size, parse_size

    work = args.keep or Path(tempfile.mkdtemp(prefix="gancli-data-"))
    folder, small = work / "photos", work / "small"
    env = dict(os.environ, GANCLI_OFFLINE="1")
    if not folder.is_dir():
        started = time.perf_counter()
        make_folder(folder, args.images)
        print(f"made {args.images:,} JPEGs in {time.perf_counter() - started:.0f} s: {folder}", flush=True)
    if not small.is_dir():
        for path in sorted(folder.rglob("*.jpg"))[:: args.images // 512][:512]:
            (small / path.parent.name).mkdir(parents=True, exist_ok=True)
            (small / path.parent.name / path.name).symlink_to(path)

    rows = []
    cores = os.cpu_count() or 1
    for workers in (1, cores):
        cache = work / f"cache-{workers}"
        shutil.rmtree(cache, ignore_errors=True)
        rss, seconds, out = run(gancli("data", str(folder), "--image-size", "64", "--workers", str(workers)), env | {"GANCLI_CACHE_DIR": str(cache)})
        skipped = next((line for line in out.splitlines() if line.startswith("Skipped")), "no files skipped").split(":")[0]
        rows.append((f"first run, `gancli data` with {workers} process{'es' if workers > 1 else ''}", f"{seconds:.1f} s",
                     f"{args.images / seconds:,.0f} files/s, {rss:,.0f} MB peak RSS; {skipped}"))  # fmt: skip
    cache = work / f"cache-{cores}"
    env_cache = env | {"GANCLI_CACHE_DIR": str(cache)}
    _, seconds, _ = run(gancli("data", str(folder), "--image-size", "64"), env_cache)
    rows.append(("second run, `gancli data` (cache hit)", f"{seconds:.1f} s", "lists and fingerprints the folder, decodes nothing"))
    common = ["--image-size", "64", "--batch-size", "32", "--device", "cpu", "--sample-every", str(args.steps)]
    for name in ("hit", "resident", "mapped", "own"):
        shutil.rmtree(work / f"run-{name}", ignore_errors=True)
    _, seconds, _ = run(gancli("train", str(folder), *common, "--steps", "1", "-o", str(work / "run-hit")), env_cache)
    rows.append(("second run, `gancli train --steps 1` (cache hit)", f"{seconds:.1f} s", "start-up, one step, a grid and a checkpoint"))

    budget = parse_size(args.budget)
    data_bytes = np.load(next(cache.glob("data/*/images.npy")), mmap_mode="r").nbytes
    resident, _, _ = run(gancli("train", str(folder), *common, "--steps", str(args.steps), "-o", str(work / "run-resident")), env_cache)
    mapped, _, out = run(gancli("train", str(folder), *common, "--steps", str(args.steps), "--memory-budget", args.budget, "-o", str(work / "run-mapped")), env_cache)
    assert "read from the cache file" in out
    run(gancli("data", str(small), "--image-size", "64"), env_cache)  # decoded first: the pool's workers would count in the peak
    own, _, _ = run(gancli("train", str(small), *common, "--steps", str(args.steps), "-o", str(work / "run-own")), env_cache)
    rows.append((f"peak RSS, training held in memory ({format_size(data_bytes)} of images)", f"{resident:,.0f} MB", ""))
    rows.append((f"peak RSS, training read by batch (--memory-budget {args.budget})", f"{mapped:,.0f} MB",
                 f"budget + the model's own = {budget / 2**20 + own:,.0f} MB: {'within' if mapped <= budget / 2**20 + own else 'OVER'}"))  # fmt: skip
    rows.append(("peak RSS, the model's own (the same run on 512 images)", f"{own:,.0f} MB", ""))

    print(f"timing training steps: {args.repeats + 1} rounds of {args.steps} steps from memory and from the file", flush=True)
    held, read = speeds(folder, cache, budget, args.steps, args.repeats)
    rows.append(("training dcgan 64 px, resident tensor", f"{held:.1f} img/s", f"median of {args.repeats}"))
    rows.append(("training dcgan 64 px, read by batch from the file", f"{read:.1f} img/s", f"{read / held:.2f}x resident (target >= 0.85x)"))

    print(f"\n{args.images:,} JPEGs, {cores} cores\n")
    print("| case | figure | notes |\n| --- | ---: | --- |")
    for case, figure, note in rows:
        print(f"| {case} | {figure} | {note} |")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
