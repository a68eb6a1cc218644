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

SETS = sorted(p for p in (Path(__file__).parent / "fixtures").iterdir() if p.is_dir())
FIXTURES = sorted(f for s in SETS for f in s.glob("*.safetensors"))
GENERATORS = [f for f in FIXTURES if f.stem in ("dcgan-ema", "cdcgan", "progan", "stylegan", "sagan")]


def as_run(fixture: Path, root: Path) -> Path:
    """A run directory holding the fixture as its last checkpoint (resume writes into the run)."""
    run = root / fixture.stem
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(fixture, run / "checkpoints" / "last.safetensors")
    return run


@pytest.mark.parametrize("fixtures", SETS, ids=lambda s: s.name)
def test_there_is_a_fixture_of_each_kind(fixtures):
    kinds = {checkpoints.read_header(f).kind for f in fixtures.glob("*.safetensors")}
    assert kinds == {"generator", "upscaler", "classifier"} and len(list(fixtures.glob("*.safetensors"))) >= 7


def test_the_set_from_before_the_library_redesign_is_kept():
    assert {"v0.1.0", "main-9660f2f"} <= {s.name for s in SETS}


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


@pytest.mark.parametrize("fixtures", SETS, ids=lambda s: s.name)
def test_old_upscalers_upscale(cli, isolated, fixtures):
    Image.new("L", (12, 12), 128).save(isolated / "small.png")
    for name in ("srcnn", "upgan"):
        fixture = fixtures / f"{name}.safetensors"
        result = cli("upscale", "small.png", "--model", fixture, "--out", name, "--device", "cpu")
        assert result.code == 0, result.err
        with Image.open(isolated / name / "small.png") as image:
            assert image.size == (24, 24)


@pytest.mark.parametrize("fixtures", SETS, ids=lambda s: s.name)
def test_old_classifier_evaluates_an_old_generator(cli, isolated, fixtures):
    classifier, generator = fixtures / "classifier.safetensors", fixtures / "dcgan-ema.safetensors"
    run = as_run(generator, isolated)
    result = cli("eval", run, "--classifier", classifier, "--force", "--n", "20", "--device", "cpu")
    assert result.code == 0, result.err
    assert "FID" in result.out
