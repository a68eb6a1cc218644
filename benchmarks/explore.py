"""The explorer's speed, measured as a browser sees it: HTTP requests to `gancli explore`'s server, every image new to
its cache (fresh seeds), then the same requests again (cached).

Targets on 2 CPU cores: one new 28x28 image p95 <= 100 ms; an 8x8 page of a 28-px DCGAN <= 300 ms; interpolation
frames >= 10 per second at 28 px; a 16-image page of a 64-px stylegan <= 1 s. The runs are the architectures'
default sizes trained for a few steps: the time to make an image does not depend on the weights.

    python benchmarks/explore.py [--dcgan RUN] [--stylegan RUN] [--repeats 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def make_run(work: Path, name: str, *flags: str) -> Path:
    out = work / name
    done = subprocess.run([sys.executable, "-m", "gancli", "train", "mnist", "--steps", "2", "--device", "cpu", "--outdir", str(out), *flags],
                          capture_output=True, text=True, env=dict(os.environ, GANCLI_OFFLINE="1"))  # fmt: skip
    if done.returncode:
        sys.exit(done.stderr)
    return out


def timed(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def start_up(run: Path) -> float:
    """Seconds from `gancli explore RUN` starting to its URL answering."""
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "gancli", "explore", str(run), "--device", "cpu"], stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split(" at ")[1].split()[0]
        timed(url + "api/runs")
        return time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    import gancli

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dcgan", type=Path, help="a 28-px DCGAN run (default: one trained for 2 steps at the default widths)")
    parser.add_argument("--stylegan", type=Path, help="a 64-px stylegan run (default: one trained for 2 steps)")
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gancli-explore-"))
    dcgan = args.dcgan or make_run(work, "dcgan28")
    stylegan = args.stylegan or make_run(work, "stylegan64", "--arch", "stylegan", "--image-size", "64", "--batch-size", "4")
    rows = []
    with gancli.explorer([dcgan, stylegan], device="cpu") as server:
        base = server.url
        timed(f"{base}api/images?run=0&seeds=0")  # models loaded before timing
        timed(f"{base}api/images?run=1&seeds=0")
        fresh = iter(range(1_000_000, 10**9, 1_000))

        def case(name: str, target: str, url, repeats: int, per=None):
            new = [timed(url(next(fresh))) for _ in range(repeats)]
            seed = next(fresh)
            timed(url(seed))
            cached = [timed(url(seed)) for _ in range(repeats)]
            rows.append((name, target, new, cached, per))

        case("one new 28x28 image (/image.png)", "p95 <= 100 ms", lambda s: f"{base}image.png?run=0&seed={s}", args.repeats * 2)
        case("8x8 page, 28-px DCGAN (/api/images)", "<= 300 ms", lambda s: f"{base}api/images?run=0&seeds={s}-{s + 63}", args.repeats)
        case("a walk of 24 frames, 28 px (/api/walk)", ">= 10 frames/s", lambda s: f"{base}api/walk?run=0&seeds={s},{s + 1}&frames=24",
             args.repeats, 24)  # fmt: skip
        case("16-image page, 64-px stylegan (/api/images)", "<= 1 s", lambda s: f"{base}api/images?run=1&seeds={s}-{s + 15}", max(5, args.repeats // 4))
    launch = statistics.median(start_up(dcgan) for _ in range(3))
    print(f"{os.cpu_count()} CPUs; runs: {dcgan} (dcgan 28 px), {stylegan} (stylegan 64 px)")
    print("| request | target | new: median | new: p95 | cached: median | result |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for name, target, new, cached, per in rows:
        if per:
            rate = per / statistics.median(new)
            shown = f"{rate:.0f} frames/s new, {per / statistics.median(cached):.0f} cached"
            ok = rate >= 10
        else:
            limit = {"p95 <= 100 ms": 0.1, "<= 300 ms": 0.3, "<= 1 s": 1.0}[target]
            check = p95(new)
            shown, ok = f"p95 {check * 1000:.0f} ms", check <= limit
        print(f"| {name} | {target} | {statistics.median(new) * 1000:.0f} ms | {p95(new) * 1000:.0f} ms | "
              f"{statistics.median(cached) * 1000:.1f} ms | {shown} {'(met)' if ok else '(MISSED)'} |")  # fmt: skip
    print(f"`gancli explore RUN` start-up to its first answer: {launch:.2f} s (median of 3)")


if __name__ == "__main__":
    main()
