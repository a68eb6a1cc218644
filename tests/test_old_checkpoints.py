"""Checkpoints written by earlier gancli versions still load, sample (or upscale, or evaluate) and resume.

tests/fixtures/<version>/ holds one small checkpoint of each kind, written by that version's code
with tests/fixtures/make_checkpoints.py (2 steps each on the bundled digits).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from gancli.store import checkpoints

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*/*.safetensors"))
GENERATORS = [f for f in FIXTURES if f.stem in ("dcgan-ema", "cdcgan", "progan", "stylegan")]


def as_run(fixture: Path, root: Path) -> Path:
    """A run directory holding the fixture as its last checkpoint (resume writes into the run)."""
    run = root / fixture.stem
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(fixture, run / "checkpoints" / "last.safetensors")
    return run


def test_there_is_a_fixture_of_each_kind():
    kinds = {checkpoints.read_header(f).kind for f in FIXTURES}
    assert kinds == {"generator", "upscaler", "classifier"} and len(FIXTURES) >= 7


@pytest.mark.slow  # seven training runs; sampling, upscaling and eval of the same files stay in the fast tier
@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f"{f.parent.name}-{f.stem}")
def test_old_checkpoint_resumes(cli, isolated, fixture):
    run = as_run(fixture, isolated)
    step = checkpoints.read_header(fixture).step
    result = cli("train", "--resume", run, "--steps", step + 2, "--device", "cpu")
    assert result.code == 0, result.err
    assert checkpoints.load_checkpoint(run / "checkpoints" / "last.safetensors").step == step + 2


@pytest.mark.parametrize("fixture", GENERATORS, ids=lambda f: f"{f.parent.name}-{f.stem}")
def test_old_generator_samples(cli, isolated, fixture):
    result = cli("sample", "--checkpoint", fixture, "--n", "4", "--seed", "0", "--out", "s.png", "--device", "cpu")
    assert result.code == 0, result.err
    with Image.open(isolated / "s.png") as image:
        assert image.width > 28


def test_old_upscalers_upscale(cli, isolated):
    Image.new("L", (12, 12), 128).save(isolated / "small.png")
    for name in ("srcnn", "upgan"):
        (fixture,) = [f for f in FIXTURES if f.stem == name]
        result = cli("upscale", "small.png", "--model", fixture, "--out", name, "--device", "cpu")
        assert result.code == 0, result.err
        with Image.open(isolated / name / "small.png") as image:
            assert image.size == (24, 24)


def test_old_classifier_evaluates_an_old_generator(cli, isolated):
    (classifier,) = [f for f in FIXTURES if f.stem == "classifier"]
    (generator,) = [f for f in FIXTURES if f.stem == "dcgan-ema"]
    run = as_run(generator, isolated)
    result = cli("eval", run, "--classifier", classifier, "--force", "--n", "20", "--device", "cpu")
    assert result.code == 0, result.err
    assert "FID" in result.out
