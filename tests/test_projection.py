"""gancli project: latents that redraw images, latent files that are checked as data, walks between real images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gancli
from gancli.errors import GancliError, UsageError
from gancli.store.latents import load_latent, save_latent

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """A DCGAN trained long enough that its images differ from seed to seed (the quick recipe, 300 steps)."""
    from gancli.cli import run

    out = tmp_path_factory.mktemp("proj") / "digits"
    assert run(["train", "mnist", "--recipe", "quick", "--steps", "300", "--device", "cpu", "--outdir", str(out)]) == 0
    return out


@pytest.mark.slow  # trains or projects for seconds
def test_projection_finds_what_the_generator_drew(digits):
    g = gancli.load(digits, device="cpu")
    drawn = g.sample(seeds=[11, 12, 13, 14])
    projected = g.project(drawn, steps=300)
    assert min(projected.psnr) >= 30.0, projected.psnr
    assert torch.equal(projected.images, g.render(projected.latents))  # what sample --latent draws
    other = g.sample(seeds=[15])
    assert projected.latents[0].space == "z"
    assert torch.equal(projected.targets, drawn) and not projected.converted
    assert not torch.equal(drawn[0], other[0])  # the images really differ: the test could fail


def test_latents_round_trip_through_their_files(isolated):
    for name in ("dcgan-ema", "cdcgan", "stylegan"):
        g = gancli.load(FIXTURES / f"{name}.safetensors", device="cpu")
        (latent,) = g.project(g.sample(seeds=[3], label=2 if name == "cdcgan" else None), steps=5, label=2 if name == "cdcgan" else None).latents
        save_latent(Path(f"{name}.latent.safetensors"), latent)
        back = load_latent(Path(f"{name}.latent.safetensors"))
        assert torch.equal(back.value, latent.value) and (back.space, back.label, back.fingerprint) == (latent.space, latent.label, latent.fingerprint)
        assert torch.equal(g.render([back]), g.render([latent]))


@pytest.mark.slow  # trains or projects for seconds
def test_the_api_and_the_commands_give_the_same_bytes(cli, isolated):
    dcgan = FIXTURES / "dcgan-ema.safetensors"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)).save("photo.png")  # other size and channels
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (28, 28), dtype=np.uint8)).save("digit.png")
    result = cli("project", "photo.png", "digit.png", "-c", dcgan, "--outdir", "a", "--steps", "20", "--device", "cpu")
    assert result.code == 0, result.err
    assert "Converted 1 image(s)" in result.out and "photo" in result.out and "PSNR mean" in result.out
    projected, notes = gancli.load(dcgan, device="cpu").write_projections(["photo.png", "digit.png"], "b", steps=20)
    for name in ("photo.latent.safetensors", "photo.png", "digit.latent.safetensors", "digit.png"):
        a, b = Path("a", name).read_bytes(), Path("b", name).read_bytes()
        if name.endswith(".png"):
            assert a == b
        else:  # the file names its source as given; the latent itself is the same
            assert torch.equal(load_latent(Path("a", name)).value, load_latent(Path("b", name)).value)
    assert Image.open("a/photo.png").size == (2 * 30 + 2, 32)  # target and reconstruction side by side
    assert cli("sample", "-c", dcgan, "--latent", "a", "--outdir", "rec", "--device", "cpu").code == 0
    g = gancli.load(dcgan, device="cpu")
    assert Path("rec/photo.png").read_bytes() == gancli.png_bytes(g.render(["a/photo.latent.safetensors"])[0])
    assert cli("interpolate", "a/photo.latent.safetensors", "7", "a/digit.latent.safetensors", "-c", dcgan, "--frames", "4", "--out", "w.png",
               "--gif", "w.gif", "--device", "cpu").code == 0  # fmt: skip
    gancli.save_grid(g.interpolate(["a/photo.latent.safetensors", 7, "a/digit.latent.safetensors"], frames=4), "w2.png", nrow=4)
    assert Path("w.png").read_bytes() == Path("w2.png").read_bytes()
    first = np.array(Image.open("w.png"))[2:30, 2:30]
    assert np.array_equal(first, np.array(Image.open("rec/photo.png").convert("RGB")))  # the walk starts at the real image's latent
    assert cli("project", "photo.png", "-c", dcgan, "--outdir", "a", "--steps", "2").code == 2  # never over the user's files


def test_a_foreign_latent_is_refused_naming_both_runs(cli, isolated):
    g = gancli.load(FIXTURES / "dcgan-ema.safetensors", device="cpu")
    save_latent(Path("x.latent.safetensors"), g.project(g.sample(seeds=[1]), steps=2).latents[0])
    other = FIXTURES.parent / "main-9660f2f" / "cdcgan.safetensors"
    result = cli("sample", "-c", other, "--latent", "x.latent.safetensors", "--out", "o.png")
    assert result.code == 2 and "another run" in result.err and "dcgan-ema" in result.err and "cdcgan" in result.err and "--force" in result.err
    with pytest.raises(UsageError, match="another run"):
        gancli.load(other, device="cpu").interpolate(["x.latent.safetensors", 3])
    result = cli("sample", "-c", other, "--latent", "x.latent.safetensors", "--out", "o.png", "--force")
    assert result.code == 0, result.err  # the same shape of z: drawn when asked for
    style = gancli.load(FIXTURES / "stylegan.safetensors", device="cpu")
    save_latent(Path("w.latent.safetensors"), style.project(style.sample(seeds=[1]), steps=2).latents[0])
    result = cli("sample", "-c", FIXTURES / "dcgan-ema.safetensors", "--latent", "w.latent.safetensors", "--out", "o.png", "--force")
    assert result.code == 2 and "w+ latent of shape (7, 128)" in result.err


def craft(source: Path, target: Path, tensors=None, metadata=None, keep_checksums: bool = False) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from gancli.store.checkpoints import _digest, _metadata_digest

    with safe_open(str(source), "pt") as f:
        meta, stored = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    stored.update(tensors or {})
    meta.update(metadata or {})
    if not keep_checksums:
        meta["checksum.tensors"] = _digest(stored, sorted(stored))
        meta.pop("checksum.metadata")
        meta["checksum.metadata"] = _metadata_digest(meta)
    save_file(stored, str(target), metadata=meta)
    return target


def test_crafted_latent_files_are_one_line_errors(cli, isolated):
    g = gancli.load(FIXTURES / "dcgan-ema.safetensors", device="cpu")
    good = Path("good.latent.safetensors")
    save_latent(good, g.project(g.sample(seeds=[1]), steps=2).latents[0])
    cases = {
        "nan": ({"latent": torch.full((8,), float("nan"))}, None, False, "non-finite"),
        "huge": ({"latent": torch.zeros(2048, 1024)}, None, False, "impossible shapes"),
        "dtype": ({"latent": torch.zeros(8, dtype=torch.float64)}, None, False, "expected float32"),
        "extra": ({"weights": torch.zeros(3)}, None, False, "a latent file does not have"),
        "label": ({"label": torch.tensor([10**9])}, None, False, "invalid class"),
        "space": (None, {"space": "q"}, False, "space 'q'"),
        "format": (None, {"format": "gancli/1"}, False, "not a gancli latent file"),
        "flipped": ({"latent": torch.ones(8)}, None, True, "does not match its checksums"),
    }
    for name, (tensors, metadata, keep, words) in cases.items():
        bad = craft(good, Path(f"{name}.latent.safetensors"), tensors, metadata, keep)
        with pytest.raises(GancliError, match=words):
            load_latent(bad)
        result = cli("sample", "-c", FIXTURES / "dcgan-ema.safetensors", "--latent", bad, "--out", "o.png")
        assert result.code in (1, 2) and len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err, (name, result.err)
    import os

    os.mkfifo("pipe.latent.safetensors")  # never opened: a pipe would block a reader
    result = cli("sample", "-c", FIXTURES / "dcgan-ema.safetensors", "--latent", "pipe.latent.safetensors", "--out", "o.png")
    assert result.code == 2 and "not a regular file" in result.err
    Path("junk.latent.safetensors").write_bytes(b"\x00" * 64)
    result = cli("interpolate", "junk.latent.safetensors", "3", "-c", FIXTURES / "dcgan-ema.safetensors")
    assert result.code == 1 and "not a readable safetensors file" in result.err
    result = cli("interpolate", "1", "notalatent.png", "-c", FIXTURES / "dcgan-ema.safetensors")
    assert result.code == 2 and "neither a seed" in result.err


def test_conditional_runs_take_a_class_or_find_one(isolated):
    g = gancli.load(FIXTURES / "cdcgan.safetensors", device="cpu")
    drawn = g.sample(seeds=[5, 6], label=4)
    held = g.project(drawn, steps=10, label=4)
    assert [latent.label for latent in held.latents] == [4, 4]
    found = g.project(drawn, steps=8)
    assert all(latent.label is not None and 0 <= latent.label < 10 for latent in found.latents)
    assert json.dumps(found.latents[0].losses)  # the file's losses are plain numbers
    with pytest.raises(UsageError, match="unconditional"):
        gancli.load(FIXTURES / "dcgan-ema.safetensors", device="cpu").project(drawn, label=3)


def test_a_classifiers_features_can_join_the_loss(cli, isolated):
    """--classifier RUN --feature-weight X: the classifier's convolutions instead of D's; a mismatched one is refused."""
    g = gancli.load(FIXTURES / "dcgan-ema.safetensors", device="cpu")
    drawn = g.sample(seeds=[1, 2])
    plain = g.project(drawn, steps=4)
    felt = g.project(drawn, steps=4, feature_weight=5.0, classifier=FIXTURES / "classifier.safetensors")
    assert not torch.equal(plain.latents[0].value, felt.latents[0].value)  # the term moved the optimisation
    with pytest.raises(UsageError, match="give feature_weight"):
        g.project(drawn, steps=2, classifier=FIXTURES / "classifier.safetensors")
    big = FIXTURES / "stylegan.safetensors"  # a 32-px run: the 28-px classifier does not fit
    Image.fromarray(np.zeros((28, 28), np.uint8)).save("x.png")
    result = cli("project", "x.png", "-c", big, "--feature-weight", "1", "--classifier", FIXTURES / "classifier.safetensors")
    assert result.code == 2 and "The classifier sees 1x28x28 images" in result.err, result.err


@pytest.mark.slow  # trains or projects for seconds
def test_the_explorer_lists_a_runs_projected_latents_as_sample_draws_them(cli, isolated):
    import shlex
    import urllib.request

    dcgan, cdcgan = FIXTURES / "dcgan-ema.safetensors", FIXTURES / "cdcgan.safetensors"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (28, 28), dtype=np.uint8)).save("mine.png")
    assert cli("project", "mine.png", "-c", dcgan, "--outdir", "proj", "--steps", "5").code == 0
    Path("proj/broken.latent.safetensors").write_bytes(b"nonsense")  # skipped, not fatal
    with gancli.explorer([dcgan, cdcgan], device="cpu", latents=["proj"]) as server:
        def listed(run: int) -> list[dict]:
            with urllib.request.urlopen(f"{server.url}api/latents?run={run}", timeout=60) as response:
                return json.loads(response.read())["images"]

        (picture,) = listed(0)
        assert listed(1) == []  # another run's latents are not offered
    args = shlex.split(picture["command"])[1:]
    assert cli(*args).code == 0
    import base64

    assert base64.b64decode(picture["src"].split(",", 1)[1]) == Path("explore", picture["filename"]).read_bytes() and picture["filename"] == "mine.png"
