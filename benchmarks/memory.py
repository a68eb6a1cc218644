"""Memory: peak RSS of the commands that meet the largest inputs, each in a fresh process (GNU time).

  grid     a 10000x10000 PNG and three thumbnails -> one grid
  upscale  a 4000x4000 RGB photo x2 with the default srcnn (1 channel, run on each colour channel)
  sample   --n 100000 as one grid
  modes    13000x13000 images in each Pillow mode (RGB, RGBA, L, I;16, P; one colour and noise where it
           compresses) through `gancli data`, `grid` and `upscale --method bicubic` (refused from its header)
  interpolate 1 2 3 4 5 --video --gif-steps 1000 (frames streamed to the encoder)

The upscale row also gives its FLOPs (torch.utils.flop_counter on a tile, scaled to the image)
and the time that would take at this machine's fp32 matmul peak, measured in the same run.

    python benchmarks/memory.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

LIMIT_MB = 1536


def timed(cmd: list[str], cwd: Path, refused: bool = False) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one command, from GNU time; `refused`: it must fail in one line."""
    report = cwd / "time.txt"
    print(f"running: gancli {' '.join(cmd[3:])}", flush=True)  # each case takes seconds to minutes
    done = subprocess.run(["/usr/bin/time", "-f", "%M %e", "-o", str(report), *cmd], cwd=cwd, capture_output=True, text=True)
    if refused and (done.returncode not in (1, 2) or len(done.stderr.strip().splitlines()) != 1):
        sys.exit(f"{' '.join(cmd)} was to be refused in one line:\n{done.stderr}")
    if done.returncode != 0 and not refused:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    kb, seconds = report.read_text().split()[-2:]
    return int(kb) / 1024, float(seconds)


def gancli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gancli", *args]


def upscale_flops(model_path: Path, side: int) -> float:
    """FLOPs of upscaling one side x side RGB image with the model (one channel at a time)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from gancli.use.loading import open_model

    model = open_model(model_path, "upscaler", "cpu")
    tile = torch.zeros(1, model.config.channels, 64, 64)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.net(tile)
    return counter.get_total_flops() * (side / 64) ** 2 * (3 // model.config.channels)


def mode_rows(work: Path, rng) -> list[tuple[str, float, float, str]]:
    """A 13000x13000 (169-megapixel) image per mode and content through data, grid and upscale --method bicubic."""
    side = 13000
    cases = {
        "RGB one colour": lambda: Image.new("RGB", (side, side), (10, 200, 30)),
        "RGB noise": lambda: Image.fromarray(np.kron(rng.integers(0, 256, (side // 10, side // 10, 3), dtype=np.uint8), np.ones((10, 10, 1), np.uint8))),
        "RGBA one colour": lambda: Image.new("RGBA", (side, side), (10, 200, 30, 128)),
        "L noise": lambda: Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)),
        "I;16 sparse": lambda: Image.fromarray(_sparse16(side)),
        "P one colour": lambda: Image.new("P", (side, side), 3),
    }  # fmt: skip
    rows = []
    for name, make in cases.items():
        folder = work / "modes" / name.replace(" ", "-").replace(";", "")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "big.png"
        if not path.exists():
            make().save(path)
        for what, args, refused in (("data", ("data", str(folder), "--image-size", "64"), False),
                                    ("grid", ("grid", str(path), "--out", "modes.png"), False),
                                    ("upscale bicubic", ("upscale", str(path), "--method", "bicubic", "--outdir", "up-modes"), True)):  # fmt: skip
            shutil.rmtree(work / "cache", ignore_errors=True)  # data decodes every time: no cache hit from an earlier run
            rss, seconds = timed(gancli(*args), work, refused)
            rows.append((f"{what}: {side}x{side} {name}", rss, seconds, "refused from its header" if refused else ""))
    return rows


def _sparse16(side: int):
    image = np.zeros((side, side), dtype=np.uint16)
    image[::7, ::5] = 40000
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--cases", default="first,modes,interpolate", help="first (grid, upscale, sample), modes, interpolate")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    work = args.keep or Path(tempfile.mkdtemp(prefix="gancli-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GANCLI_OFFLINE", "1")
    os.environ["GANCLI_CACHE_DIR"] = str(work / "cache")
    rng = np.random.default_rng(0)

    big = work / "big.png"  # smooth noise compresses to a few MB, as a photo or a scan would
    Image.fromarray(np.kron(rng.integers(0, 256, (100, 100), dtype=np.uint8), np.ones((100, 100), np.uint8))).save(big)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(work / f"thumb{i}.png")
    photo = work / "photo.png"
    Image.fromarray(np.kron(rng.integers(0, 256, (500, 500, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))).save(photo)
    for arch in ("srcnn", "dcgan"):
        run = work / arch
        if not (run / "checkpoints" / "last.safetensors").exists():
            subprocess.run(gancli("train", "mnist", "--arch", arch, "--steps", "2", "--out", str(run)), cwd=work, check=True, capture_output=True)

    rows = []
    if "first" in cases:
        rss, seconds = timed(gancli("grid", str(big), *(str(work / f"thumb{i}.png") for i in range(3)), "--out", "grid.png"), work)
        rows.append(("grid: 10000x10000 PNG + 3 thumbnails", rss, seconds, ""))
        rss, seconds = timed(gancli("upscale", str(photo), "--model", str(work / "srcnn"), "--out", "up", "--device", "cpu", "--overwrite"), work)
        import torch

        sys.path.insert(0, str(Path(__file__).parent))
        from train_throughput import matmul_peak

        flops = upscale_flops(work / "srcnn", 4000)
        peak = matmul_peak(torch.float32, torch.device("cpu"))
        at_peak = flops / (peak * 1e9)
        rows.append(("upscale: 4000x4000 RGB x2, srcnn", rss, seconds, f"{flops / 1e12:.1f} TFLOP; {at_peak:.0f} s at the fp32 peak ({peak:.0f} GFLOP/s): {seconds / at_peak:.2f}x that"))
        rss, seconds = timed(gancli("sample", "--checkpoint", str(work / "dcgan"), "--n", "100000", "--seed", "0", "--out", "many.png", "--device", "cpu"), work)
        rows.append(("sample --n 100000 as one grid", rss, seconds, ""))

    if "modes" in cases:
        rows += mode_rows(work, rng)
    if "interpolate" in cases:
        rss, seconds = timed(gancli("interpolate", "1", "2", "3", "4", "5", "--checkpoint", str(work / "dcgan"), "--video", "walk.mp4",
                                    "--gif-steps", "1000", "--device", "cpu"), work)  # fmt: skip
        rows.append(("interpolate 5 seeds --video, 1000 frames/segment", rss, seconds, ""))

    print(f"{'case':<40}{'peak RSS (MB)':>15}{'seconds':>10}  limit {LIMIT_MB} MB")
    for name, rss, seconds, note in rows:
        flag = "" if rss <= LIMIT_MB else "  OVER THE LIMIT"
        print(f"{name:<40}{rss:>15,.0f}{seconds:>10.1f}  {note}{flag}")
    if any(rss > LIMIT_MB for _, rss, _, _ in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
