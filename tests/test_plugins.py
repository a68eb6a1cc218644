"""A plugin from another package: a toy architecture and a toy task that is not a GAN, registered through
the entry-point group gancli.architectures, trains, resumes bit-exactly, plots its curves and is applied,
with nothing under gancli/ edited. The package is tests/toy_plugin/gancli_toy (its registry entry and one file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).parent / "toy_plugin" / "gancli_toy"

SCRIPT = r"""
import json, sys
import torch
import gancli
from gancli.cli import run
from gancli.models import ARCHITECTURES, PLUGIN_ERRORS
from gancli.store import checkpoints
from gancli.training.visuals import plotted_series

out = {"registered": "toydae" in ARCHITECTURES, "errors": PLUGIN_ERRORS}
small = ["mnist", "--arch", "toydae", "--image-size", "16", "--generator-width", "8", "--batch-size", "8", "--device", "cpu",
         "--sample-every", "2", "--seed", "5"]
out["codes"] = [run(["train", *small, "--steps", "4", "--outdir", "straight"]), run(["train", *small, "--steps", "2", "--outdir", "split"]),
                run(["train", "--resume", "split", "--steps", "4"])]
a = checkpoints.load_checkpoint("straight/checkpoints/last.safetensors")
b = checkpoints.load_checkpoint("split/checkpoints/last.safetensors")
out["steps"] = [a.step, b.step]
out["keys"] = sorted(k for k in a.tensors if not k.startswith("rng."))
out["differ"] = [k for k in out["keys"] if not torch.equal(a.tensors[k], b.tensors[k])]
out["plotted"] = plotted_series("straight/metrics.png")
model = gancli.load("straight")
clean = torch.zeros(2, 1, 16, 16, dtype=torch.uint8)
applied = model.apply(clean)
out["model"] = [model.kind, model.config.arch, list(applied.shape), str(applied.dtype)]
out["sample_code"] = run(["sample", "-c", "straight", "--out", "s.png"])
print(json.dumps(out))
"""


@pytest.mark.slow  # a fresh interpreter: entry points are read when gancli.models is first imported
def test_a_plugin_architecture_and_task_train_resume_and_apply(tmp_path, isolated):
    site = tmp_path / "site"
    shutil.copytree(PLUGIN, site / "gancli_toy")
    info = site / "gancli_toy-0.1.dist-info"  # what pip would write: the package's metadata and its entry point
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gancli-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gancli.architectures]\ntoy = gancli_toy:ENTRIES\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=isolated, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["registered"] and out["errors"] == []
    assert out["codes"] == [0, 0, 0], done.stderr[-3000:]
    assert out["steps"] == [4, 4]
    assert any(k.startswith("autoencoder.") for k in out["keys"]) and any(k.startswith("optimizer") for k in out["keys"])
    assert out["differ"] == []  # bit-exact resume: weights and optimiser state
    assert out["plotted"] == {"reconstruction": ["loss_MSE"]}
    assert out["model"] == ["denoiser", "toydae", [2, 1, 16, 16], "torch.uint8"]
    assert out["sample_code"] == 2 and "is a denoiser (toydae), not a generator; apply it with gancli.load(" in done.stderr
    assert (isolated / "straight/samples/step_000004.png").is_file()


def test_a_broken_plugin_is_named_and_left_out(tmp_path):
    site = tmp_path / "site"
    info = site / "broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gancli.architectures]\nbroken = no_such_module:ENTRIES\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "from gancli.models import ARCHITECTURES, PLUGIN_ERRORS; print(len(ARCHITECTURES), PLUGIN_ERRORS)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.startswith("10 ") and "broken (no_such_module:ENTRIES): ModuleNotFoundError" in done.stdout
