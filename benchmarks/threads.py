"""Threads: `gancli train mnist --recipe quick --steps 150`, quiet and with four busy processes on the machine,
with gancli's default thread count (the usable CPUs less the running load) and with every CPU (PyTorch's
own default), each in a fresh process. The default must not be slower when quiet and should be faster when busy.

    python benchmarks/threads.py [--steps 150] [--busy 4]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(work: Path, name: str, steps: int, *extra: str) -> tuple[float, str]:
    """(seconds of training, the device line) of one run."""
    done = subprocess.run([sys.executable, "-m", "gancli", "train", "mnist", "--recipe", "quick", "--steps", str(steps), "--device", "cpu",
                           "--outdir", str(work / name), *extra], capture_output=True, text=True, env=dict(os.environ, GANCLI_OFFLINE="1"))  # fmt: skip
    if done.returncode != 0:
        sys.exit(done.stderr)
    seconds = float(re.search(r"Trained to step \d+/\d+ in ([\d.]+) s", done.stdout).group(1))
    return seconds, re.search(r"device cpu, (.*)", done.stderr).group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--busy", type=int, default=4, help="busy processes for the loaded case")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    work = Path(tempfile.mkdtemp(prefix="gancli-threads-"))
    rows = []
    for loaded in (False, True):
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy if loaded else 0)]
        try:
            time.sleep(2 if loaded else 0)
            for label, extra in (("default", ()), (f"--threads {cpus} (every CPU)", ("--threads", str(cpus)))):
                seconds, line = train(work, f"{'busy' if loaded else 'quiet'}-{len(rows)}", args.steps, *extra)
                rows.append((f"{args.busy} busy processes" if loaded else "quiet", label, seconds, line))
        finally:
            for spinner in spinners:
                spinner.kill()
    print(f"{'machine':<20}{'threads':<26}{'train s':>9}  start-up line")
    for machine, label, seconds, line in rows:
        print(f"{machine:<20}{label:<26}{seconds:>9.1f}  {line}")
    quiet, busy = rows[0][2] / rows[1][2], rows[3][2] / rows[2][2]
    print(f"quiet: default / every CPU = {quiet:.2f}x the time; busy: every CPU / default = {busy:.2f}x the time")


if __name__ == "__main__":
    main()
