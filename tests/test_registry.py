"""Properties every architecture in the registry must have: exact resume, --compile, its own metrics.png curves.

Parametrised over ARCHITECTURES, so a new entry is tested the day it is added.
"""

from __future__ import annotations

import csv

import pytest
import torch

from gancli.store import checkpoints
from gancli.models import ARCHITECTURES

TINY = ["--latent-dim", "8", "--generator-width", "8", "--discriminator-width", "8"]
# the smallest run of each architecture (image size where the arch needs one; progan grows in phases of 1 step)
SMALL = {
    "progan": ["--image-size", "32", "--phase-steps", "1"],
    "stylegan": ["--image-size", "32"],
    "srcnn": ["--image-size", "16"],
    "upgan": ["--image-size", "16"],
    "classifier": ["--image-size", "16"],
    "gan": ["--image-size", "16"],
    "cgan": ["--image-size", "16"],
}
FAST = ["--batch-size", "8", "--device", "cpu", "--sample-every", "2", "--seed", "5"]


def options(arch: str) -> list[str]:
    return ["mnist", "--arch", arch, *TINY, *SMALL.get(arch, []), *FAST]


FAST_TIER = ("dcgan", "stylegan")  # the rest run in the full suite (pytest without -m), as CI does


@pytest.mark.parametrize("arch", [pytest.param(a, marks=[] if a in FAST_TIER else [pytest.mark.slow]) for a in ARCHITECTURES])
def test_resume_is_bit_exact(cli, isolated, arch):
    """2 steps, stop, --resume to 4 equals 4 straight steps: weights, optimiser state, RNG state and metrics rows."""
    assert cli("train", *options(arch), "--steps", "4", "--out", "straight").code == 0
    assert cli("train", *options(arch), "--steps", "2", "--out", "split").code == 0
    resumed = cli("train", "--resume", "split", "--steps", "4")
    assert resumed.code == 0, resumed.err
    a = checkpoints.load_checkpoint(isolated / "straight/checkpoints/last.safetensors")
    b = checkpoints.load_checkpoint(isolated / "split/checkpoints/last.safetensors")
    assert b.step == a.step == 4
    assert sorted(a.tensors) == sorted(b.tensors)
    compared = 0
    for key, value in a.tensors.items():
        if key.startswith("rng."):
            continue  # the device RNG state is compared through what it drew: the weights
        assert torch.equal(value, b.tensors[key]), f"{arch}: {key} differs after resume"
        compared += key.startswith("optimizer")
    assert compared > 0, f"{arch}: no optimiser state in the checkpoint"
    drop = ("images_per_s", "seconds")
    assert _rows(isolated / "split", drop) == _rows(isolated / "straight", drop)


@pytest.mark.slow  # torch.compile traces every model: about 35 s for the registry
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_compile_trains_every_architecture(cli, isolated, monkeypatch, arch):
    """--compile wraps the training forwards only: the run trains and its checkpoint has the plain keys."""
    monkeypatch.setenv("GANCLI_COMPILE_BACKEND", "eager")  # dynamo tracing without the C++ build of inductor
    compiled = cli("train", *options(arch), "--steps", "2", "--compile", "--out", "c")
    assert compiled.code == 0, compiled.err
    assert cli("train", *options(arch), "--steps", "2", "--out", "plain").code == 0
    c = checkpoints.load_checkpoint(isolated / "c/checkpoints/last.safetensors")
    plain = checkpoints.load_checkpoint(isolated / "plain/checkpoints/last.safetensors")
    assert sorted(c.tensors) == sorted(plain.tensors)
    assert c.step == 2 and (isolated / "c/samples/step_000002.png").is_file()


OWN_CURVES = {
    "dcgan": {"loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2"},
    "srcnn": {"loss_MSE", "PSNR", "PSNR_bicubic"},
    "classifier": {"loss_CE", "train_accuracy", "accuracy"},
}


@pytest.mark.parametrize("arch", list(OWN_CURVES))
def test_metrics_plot_shows_the_tasks_own_curves(cli, isolated, arch):
    """metrics.png draws this task's own columns as curves (the GAN legends over empty axes were a bug)."""
    from gancli.training.visuals import plotted_series

    result = cli("train", *options(arch), "--steps", "6", "--out", "r")
    assert result.code == 0, result.err
    with open(isolated / "r/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    drawn = {name for names in plotted_series(isolated / "r/metrics.png").values() for name in names}
    assert drawn == OWN_CURVES[arch]
    for name in drawn:  # every curve has at least two numbers behind it in the CSV
        assert sum(1 for r in rows if r.get(name) not in (None, "")) >= 2, name


def _rows(run_dir, drop) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]
