"""Crash safety: SIGKILL `gancli train` at random moments and check that checkpoints/last.safetensors
always loads (atomic writes: temporary file, fsync, rename).

    python benchmarks/kill_test.py [--trials 20] [--seed 0]

Each trial starts a fresh run that rewrites last.safetensors every step, kills it with SIGKILL
after a random delay, and loads what is left with gancli's own loader.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gancli.store.checkpoints import load_checkpoint
from gancli.errors import GancliError

FIRST_SAVE_TIMEOUT_S = 60


def kill_trials(trials: int, seed: int = 0, workdir: Path | None = None) -> list[dict]:
    """Run the trials; returns one record per trial (delay, step found, loadable)."""
    rng = random.Random(seed)
    records = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        env = dict(os.environ, GANCLI_OFFLINE="1", GANCLI_DATA_DIR=str(Path(tmp) / "data"))
        for trial in range(trials):
            run = Path(tmp) / f"run{trial}"
            last = run / "checkpoints" / "last.safetensors"
            cmd = [sys.executable, "-m", "gancli", "train", "mnist", "--steps", "100000", "--sample-every", "1",
                   "--batch-size", "16", "--device", "cpu", "--out", str(run)]  # fmt: skip
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started = time.monotonic()
            while not last.exists() and time.monotonic() - started < FIRST_SAVE_TIMEOUT_S and proc.poll() is None:
                time.sleep(0.05)
            delay = rng.uniform(0.0, 1.5)  # after the first save, while later saves are in flight
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            try:
                step = load_checkpoint(last).step
                records.append({"trial": trial, "delay_s": round(delay, 3), "step": step, "loadable": True})
            except GancliError as exc:
                records.append({"trial": trial, "delay_s": round(delay, 3), "error": str(exc), "loadable": False})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    records = kill_trials(args.trials, args.seed)
    for r in records:
        print(r)
    good = sum(r["loadable"] for r in records)
    print(f"{good} of {len(records)} SIGKILLed runs left a loadable last.safetensors")
    sys.exit(0 if good == len(records) else 1)


if __name__ == "__main__":
    main()
