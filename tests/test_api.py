"""gancli from Python (gancli.load, Model.sample/interpolate/upscale, save_grid, to_pil): the same bytes as the commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from PIL import Image

import gancli
from gancli.errors import UsageError

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*/*.safetensors"))  # every kept set: v0.1.0, main-9660f2f
GENERATORS = [f for f in FIXTURES if f.stem in ("dcgan-ema", "cdcgan", "progan", "stylegan")]
UPSCALERS = [f for f in FIXTURES if f.stem in ("srcnn", "upgan")]
ONE_SET = Path(__file__).parent / "fixtures" / "v0.1.0"  # for the tests that need one checkpoint of a kind


def fixture_id(f: Path) -> str:
    return f"{f.parent.name}/{f.stem}"
README = Path(__file__).parent.parent / "README.md"


@pytest.mark.parametrize("fixture", GENERATORS, ids=fixture_id)
def test_sample_and_interpolate_write_the_bytes_the_commands_write(cli, isolated, fixture):
    g = gancli.load(fixture)
    assert cli("sample", "-c", fixture, "--seeds", "0-2", "--out", "a.png").code == 0
    gancli.save_grid(g.sample(seeds=[0, 1, 2]), "b.png")
    assert Path("a.png").read_bytes() == Path("b.png").read_bytes()
    assert cli("sample", "-c", fixture, "--n", "10", "--seed", "3", "--out", "c.png").code == 0
    gancli.save_grid(g.sample(n=10, seed=3), "d.png")
    assert Path("c.png").read_bytes() == Path("d.png").read_bytes()
    assert cli("interpolate", "1", "2", "3", "-c", fixture, "--frames", "4", "--out", "e.png").code == 0
    gancli.save_grid(g.interpolate([1, 2, 3], frames=4), "f.png", nrow=4)
    assert Path("e.png").read_bytes() == Path("f.png").read_bytes()


def test_labels_and_truncation_as_the_commands_take_them(cli, isolated):
    cdcgan = ONE_SET / "cdcgan.safetensors"
    assert cli("sample", "-c", cdcgan, "--label", "all", "--n", "2", "--seed", "1", "--out", "a.png").code == 0
    gancli.save_grid(gancli.load(cdcgan).sample(n=2, seed=1, label="all"), "b.png", nrow=2)
    assert Path("a.png").read_bytes() == Path("b.png").read_bytes()
    stylegan = ONE_SET / "stylegan.safetensors"
    assert cli("sample", "-c", stylegan, "--seeds", "4", "--truncation", "0.5", "--out", "c.png").code == 0
    g = gancli.load(stylegan)
    gancli.save_grid(g.sample(seeds=[4], truncation=0.5), "d.png")
    assert Path("c.png").read_bytes() == Path("d.png").read_bytes()
    assert g.net.truncation == 1.0  # put back: the next sample is untruncated
    with pytest.raises(UsageError, match="unconditional"):
        g.sample(n=2, label=3)


@pytest.mark.parametrize("fixture", UPSCALERS, ids=fixture_id)
def test_upscale_gives_the_pixels_gancli_upscale_writes(cli, isolated, fixture):
    picture = torch.randint(0, 256, (1, 12, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    Image.fromarray(picture[0].numpy()).save("x.png")
    assert cli("upscale", "x.png", "--model", fixture, "--outdir", "up").code == 0
    big = gancli.load(fixture).upscale(picture)
    assert torch.equal(big, torch.from_numpy(__import__("numpy").array(Image.open("up/x.png")))[None])


def test_wrong_use_is_one_clear_error(isolated):
    dcgan = ONE_SET / "dcgan-ema.safetensors"
    srcnn = ONE_SET / "srcnn.safetensors"
    classifier = ONE_SET / "classifier.safetensors"
    g = gancli.load(dcgan)
    for call, message in ((lambda: g.sample(n=2, seeds=[1]), "not both"), (lambda: g.sample(seeds=[-1]), "not a whole number"),
                          (lambda: g.interpolate([1]), "at least two"), (lambda: g.upscale(torch.zeros(1, 1, 4, 4, dtype=torch.uint8)), "needs an upscaler"),
                          (lambda: gancli.load(srcnn).sample(), "needs a generator"), (lambda: gancli.load(classifier), "is a classifier"),
                          (lambda: gancli.save_grid(torch.zeros(2, 2), "x.png"), "uint8 images")):  # fmt: skip
        with pytest.raises(UsageError, match=message):
            call()
    assert gancli.to_pil(g.sample(n=4)).size == (2 * (28 + 2) + 2, 2 * (28 + 2) + 2)
    assert "dcgan generator" in repr(g)


@pytest.mark.slow  # the block trains 300 steps of the quick start
def test_the_readme_python_block_runs_as_written(isolated):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    assert Image.open("grid.png").size[0] > 28


def test_train_from_python_is_the_command_and_prints_nothing(cli, isolated, capsys):
    small = ["--steps", "3", "--batch-size", "8", "--latent-dim", "8", "--generator-width", "8", "--discriminator-width", "8", "--device", "cpu"]
    assert cli("train", "mnist", *small, "--outdir", "a").code == 0
    capsys.readouterr()
    run = gancli.train("mnist", steps=3, batch_size=8, latent_dim=8, generator_width=8, discriminator_width=8, device="cpu", outdir="b")
    assert capsys.readouterr() == ("", "")  # the API never prints
    assert run.step == 3 and run.checkpoint == Path("b/checkpoints/last.safetensors")
    from gancli.store.checkpoints import load_checkpoint

    a, b = load_checkpoint(Path("a/checkpoints/last.safetensors")), load_checkpoint(run.checkpoint)
    assert a.config == b.config and all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors if not k.startswith("rng."))
    with pytest.raises(UsageError, match="has no option 'epoch'"):
        gancli.train("mnist", epoch=3)
    with pytest.raises(UsageError, match="already holds a run"):
        gancli.train("mnist", steps=3, outdir="b")
    resumed = gancli.train(resume="b", steps=4)
    assert resumed.step == 4 and resumed.run_dir == Path("b")


@pytest.mark.slow  # needs the shared classifier run
def test_evaluate_from_python_gives_the_scores_eval_prints(cli, isolated, trained_run, classifier_run):
    result = gancli.evaluate(trained_run, n=40, classifier=classifier_run, force=True, save=False)
    shown = cli("eval", trained_run, "-n", "40", "--classifier", classifier_run, "--force")
    fid = next(line for line in shown.out.splitlines() if line.startswith("FID "))
    assert shown.code == 0 and fid.split()[1] == f"{result.scores['FID']:.2f}"
    assert result.saved is None and set(result.scores) >= {"FID", "KID", "precision", "recall"}


def test_files_from_python_as_the_commands_write_them(cli, isolated):
    dcgan = ONE_SET / "dcgan-ema.safetensors"
    srcnn = ONE_SET / "srcnn.safetensors"
    g = gancli.load(dcgan)
    done = g.write_samples(outdir="many", n=5, seed=2)
    assert done.count == 5 and sorted(p.name for p in Path("many").iterdir()) == [f"{i:05d}.png" for i in range(5)]
    assert cli("sample", "-c", dcgan, "--n", "5", "--seed", "2", "--outdir", "cli").code == 0
    assert all((Path("many") / p.name).read_bytes() == p.read_bytes() for p in Path("cli").iterdir())
    with pytest.raises(UsageError, match="already"):
        g.write_samples(outdir="many", n=5, seed=2)  # nothing the user has is overwritten
    assert g.write_samples(outdir="many", n=6, seed=2, existing="skip").what.endswith("kept 5 existing file(s)")
    plan, written, kept = gancli.upscale_files(["many/00000.png"], "big", srcnn)
    assert (written, kept, plan.scale) == (1, 0, 2) and Image.open("big/00000.png").size == (56, 56)
    count, cell, first = gancli.grid(["many"], "grid.png", nrow=3)
    assert count == 6 and cell == first == (28, 28)
    assert g.write_walk([1, 2], "walk.png", frames=3) == ["Wrote walk.png: 1 row(s) of 3 images (slerp) through seeds 1, 2"]


def test_every_public_name_has_a_docstring_and_a_place_in_the_reference():
    import types

    import gancli.cli  # every part loaded: a subpackage may not shadow an API name (gancli.train was once one)
    import gancli.training.loop  # noqa: F401

    reference = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    for name in gancli.__all__:
        assert getattr(gancli, name).__doc__ and not isinstance(getattr(gancli, name), types.ModuleType), name
        assert f"gancli.{name}" in reference or f"`{name}`" in reference, name
    for name, member in vars(gancli.Model).items():
        if not name.startswith("_") and callable(member):
            assert member.__doc__ and f"`{name}(" in reference, name
