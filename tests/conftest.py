"""Shared fixtures: an isolated working directory, the CLI as a function, tiny generated images."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from gancli.cli import run

if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)  # one worker per core: two threads each would spin against each other
    os.environ["OMP_NUM_THREADS"] = "1"  # and gancli train's own choice (gancli.device.cpu_threads) follows it


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test runs in its own folder, offline, with no datasets cached."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANCLI_DATA_DIR", str(tmp_path / "datasets"))
    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GANCLI_OFFLINE", "1")
    monkeypatch.delenv("GANCLI_DEBUG", raising=False)
    monkeypatch.setenv("GANCLI_PLOTS", "pillow")  # matplotlib adds ~0.3 s to every run's end; tests/test_plots.py draws with it
    monkeypatch.setattr("gancli.data.datasets.SYSTEM_DATASETS", tmp_path / "system-datasets")  # the same on every machine
    yield tmp_path


@dataclass
class Result:
    code: int
    out: str
    err: str


RECORD = os.environ.get("GANCLI_RECORD_FAILURES")


@pytest.fixture
def cli(capsys):
    """Run `gancli ARGS...` in-process and return its exit code and output."""

    def invoke(*args) -> Result:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        if code and RECORD:  # benchmarks/bad_inputs.py: every failing command the tests try, for the table
            with open(RECORD, "a") as f:
                f.write(json.dumps({"args": [str(a) for a in args], "code": code, "err": captured.err}) + "\n")
        return Result(code, captured.out, captured.err)

    return invoke


def make_image_folder(root: Path, size: int = 32, per_class: int = 12, classes=("circles", "squares"), mode="RGB") -> Path:
    """Small synthetic images in class sub-folders: bright shapes on a coloured background."""
    from PIL import Image, ImageDraw

    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), (20 * i % 255, 40 * c, 120))
            draw = ImageDraw.Draw(img)
            box = (4 + i % 5, 4 + i % 7, size - 4, size - 6)
            (draw.ellipse if c == 0 else draw.rectangle)(box, fill=(250, 200 - 10 * i % 200, 30))
            img.convert(mode).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "shapes")


def train_once(tmp_path_factory, name: str, *args: str) -> Path:
    """Train a tiny run in a folder of its own (offline) and return its run directory."""
    root = tmp_path_factory.mktemp(name)
    old = os.getcwd()
    os.environ["GANCLI_OFFLINE"] = "1"
    os.environ["GANCLI_DATA_DIR"] = str(root / "datasets")
    os.environ["GANCLI_CACHE_DIR"] = str(root / "cache")
    try:
        os.chdir(root)
        assert run(["train", "mnist", *args, "--batch-size", "16", "--device", "cpu", "--out", f"runs/{name}"]) == 0
    finally:
        os.chdir(old)
    return root / "runs" / name


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A tiny DCGAN run on the bundled digits, shared by tests that only read it."""
    return train_once(tmp_path_factory, "r1", "--steps", "6", "--sample-every", "3")


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory) -> Path:
    """A classifier trained briefly on the bundled digits (shared: tests only read it). Far below eval's 80%
    accuracy bar, so the tests that use it for the mechanics pass --force."""
    return train_once(tmp_path_factory, "cls", "--arch", "classifier", "--steps", "80", "--sample-every", "40")
