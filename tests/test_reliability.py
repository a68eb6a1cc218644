"""Nothing is lost: signals, SIGKILL, divergence, --keep and best.safetensors."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gancli.store import checkpoints
from gancli.training.tasks.gan import GANTask

FAST = ["--batch-size", "16", "--device", "cpu"]


def test_keep_prunes_periodic_checkpoints(cli, isolated):
    result = cli("train", "mnist", "--steps", "5", "--checkpoint-every", "1", "--keep", "2", "--out", "r", *FAST)
    assert result.code == 0, result.err
    assert sorted(p.name for p in (isolated / "r" / "checkpoints").iterdir()) == ["last.safetensors", "step_000004.safetensors", "step_000005.safetensors"]


def test_best_checkpoint_follows_held_out_psnr(cli, isolated):
    result = cli("train", "mnist", "--arch", "srcnn", "--steps", "6", "--sample-every", "2", "--out", "sr", *FAST)
    assert result.code == 0, result.err
    with (isolated / "sr" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    best_row = max(rows, key=lambda r: float(r["PSNR"]))
    best = checkpoints.load_checkpoint(isolated / "sr" / "checkpoints" / "best.safetensors")
    assert best.step == int(best_row["step"])
    assert float(best.metadata["psnr"]) == pytest.approx(float(best_row["PSNR"]), abs=1e-4)


def break_step(monkeypatch, at: int, spoil):
    """From GANTask.step call `at` on, pass (task, stats) through `spoil`."""
    real_step = GANTask.step
    calls = {"n": 0}

    def step(self, index):
        calls["n"] += 1
        stats = real_step(self, index)
        return spoil(self, stats) if calls["n"] >= at else stats

    monkeypatch.setattr(GANTask, "step", step)


def test_non_finite_losses_stop_and_keep_the_last_good_checkpoint(cli, isolated, monkeypatch):
    break_step(monkeypatch, 3, lambda task, stats: stats * float("nan"))
    result = cli("train", "mnist", "--steps", "10", "--sample-every", "2", "--out", "d", *FAST)
    assert result.code == 1 and "Training diverged at step" in result.err and "the losses are not finite" in result.err
    assert checkpoints.load_checkpoint(isolated / "d" / "checkpoints" / "last.safetensors").step == 2


def test_non_finite_weights_are_never_saved(cli, isolated, monkeypatch):
    def poison(task, stats):
        with torch.no_grad():
            next(task.modules["generator"].parameters()).fill_(float("inf"))
        return stats.nan_to_num()

    break_step(monkeypatch, 3, poison)
    result = cli("train", "mnist", "--steps", "10", "--sample-every", "2", "--out", "w", *FAST)
    assert result.code == 1 and "the generator weights are not finite" in result.err
    last = checkpoints.load_checkpoint(isolated / "w" / "checkpoints" / "last.safetensors")
    assert last.step == 2 and all(torch.isfinite(t).all() for t in last.tensors.values() if t.is_floating_point())


def start_training(run_dir, cwd):
    env = dict(os.environ, GANCLI_OFFLINE="1")
    cmd = [sys.executable, "-m", "gancli", "train", "mnist", "--steps", "100000", "--sample-every", "50", "--out", str(run_dir), *FAST]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_finish_the_step_save_and_say_how_to_resume(cli, isolated, sig, code):
    run_dir = isolated / f"run-{code}"
    proc = start_training(run_dir, isolated)
    deadline = time.monotonic() + 60
    while not (run_dir / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # some steps in
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"Resume with: gancli train --resume {run_dir}" in out
    last = checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.safetensors")
    assert last.step > 0
    assert (run_dir / f"samples/step_{last.step:06d}.png").exists() and (run_dir / "progress.gif").exists()
    resumed = cli("train", "--resume", run_dir, "--steps", last.step + 2)  # in-process: the signal's part is done
    assert resumed.code == 0, resumed.err
    assert checkpoints.load_checkpoint(run_dir / "checkpoints" / "last.safetensors").step == last.step + 2


@pytest.mark.slow
def test_sigkill_never_leaves_an_unreadable_checkpoint(isolated):
    from benchmarks.kill_test import kill_trials

    records = kill_trials(3, seed=1, workdir=isolated)
    assert all(r["loadable"] for r in records), records
