"""The example scripts run as written, in their reduced mode (GANCLI_EXAMPLE_STEPS)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.slow  # subprocesses: run by the full suite, not the fast tier


def run_example(name, *args, cwd):
    env = dict(os.environ, GANCLI_EXAMPLE_STEPS="2", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(["bash", str(EXAMPLES / name), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_mnist_dcgan_example(isolated):
    done = run_example("mnist_dcgan.sh", "runs/ex", cwd=isolated)
    assert done.returncode == 0, done.stderr
    assert Image.open(isolated / "runs/ex/digits.png").size == (152, 152)


def test_image_folder_example(isolated, image_folder):
    done = run_example("image_folder.sh", image_folder, "runs/shapes", cwd=isolated)
    assert done.returncode == 0, done.stderr
    assert Image.open(isolated / "runs/shapes/generated.png").size == (4 * 64 + 10, 4 * 64 + 10)
    assert Image.open(isolated / "runs/shapes/progress.png").mode == "RGB"


def test_latent_walk_example(isolated):
    from torchvision.datasets import ImageFolder

    done = run_example("latent_walk.sh", "runs/walk", cwd=isolated)
    assert done.returncode == 0, done.stderr
    assert Image.open(isolated / "runs/walk/classes.png").size == (8 * 30 + 2, 10 * 30 + 2)
    assert len(ImageFolder(str(isolated / "runs/walk/synthetic"))) == 20
    assert Image.open(isolated / "runs/walk/walk.gif").n_frames >= 16


def test_generate_then_upscale_example(isolated):
    done = run_example("generate_then_upscale.sh", "mnist", "runs/m", cwd=isolated)
    assert done.returncode == 0, done.stderr
    assert Image.open(isolated / "runs/m-big.png").size == (4 * 56 + 10, 4 * 56 + 10)
    assert "model - bicubic" in done.stdout


def test_evaluate_example(isolated):
    import json

    done = run_example("evaluate.sh", "runs/q", cwd=isolated)
    assert done.returncode == 0, done.stderr
    assert "real floor" in done.stdout
    assert json.loads((isolated / "runs/q/eval.json").read_text())[-1]["n"] == 200
    assert (isolated / "runs/q/checkpoints/best.safetensors").is_file()
