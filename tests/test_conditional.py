"""Conditional GANs and the latent-space commands end to end: labels, class grids, ImageFolder
export, interpolation whose endpoints are exactly the seeds' images, and training visuals."""

import pytest
import torch
from PIL import Image

from gancli.store import checkpoints
from gancli.data.images import from_pil
from tests.conftest import train_once

FAST = ["--batch-size", "16", "--device", "cpu"]


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory):
    return train_once(tmp_path_factory, "c", "--arch", "cdcgan", "--steps", "4", "--sample-every", "2")


def pixels(path):
    return from_pil(Image.open(path))


def test_conditional_checkpoint_knows_its_classes(conditional_run):
    ck = checkpoints.load_checkpoint(conditional_run / "checkpoints" / "last.safetensors")
    assert ck.config.arch == "cdcgan" and ck.config.num_classes == 10 and ck.config.class_names == tuple("0123456789")
    # the fixed-z preview has a row per class, 8 columns
    assert Image.open(conditional_run / "samples" / "step_000004.png").size == (8 * 30 + 2, 10 * 30 + 2)


def test_training_visuals(conditional_run):
    gif = Image.open(conditional_run / "progress.gif")
    assert gif.n_frames == 2  # one frame per saved sample grid
    plot = Image.open(conditional_run / "metrics.png")
    assert plot.size == (800, 480) and len(set(plot.convert("RGB").getcolors(1_000_000))) > 5


def test_label_all_is_a_row_per_class(cli, conditional_run, tmp_path):
    result = cli("sample", "--checkpoint", conditional_run, "--label", "all", "--n", "4", "--seed", "0", "--out", tmp_path / "all.png")
    assert result.code == 0, result.err
    assert Image.open(tmp_path / "all.png").size == (4 * 30 + 2, 10 * 30 + 2)
    assert "4 per row, 10 rows" in result.out


def test_fixed_label_differs_from_another_label(cli, conditional_run, tmp_path):
    for label in ("3", "8"):
        assert cli("sample", "--checkpoint", conditional_run, "--label", label, "--n", "4", "--seed", "5", "--out", tmp_path / f"{label}.png").code == 0
    assert not torch.equal(pixels(tmp_path / "3.png"), pixels(tmp_path / "8.png"))


def test_per_class_export_reads_as_imagefolder(cli, conditional_run, tmp_path):
    from torchvision.datasets import ImageFolder

    result = cli("sample", "--checkpoint", conditional_run, "--per-class", "3", "--seed", "1", "--out-dir", tmp_path / "aug")
    assert result.code == 0, result.err
    folder = ImageFolder(str(tmp_path / "aug"))
    assert folder.classes == list("0123456789") and len(folder) == 30
    assert sorted(folder.targets) == sorted(list(range(10)) * 3)
    assert Image.open(folder.samples[0][0]).size == (28, 28)


def test_seeds_render_named_files(cli, trained_run, tmp_path):
    result = cli("sample", "--checkpoint", trained_run, "--seeds", "3,42", "--out-dir", tmp_path / "s")
    assert result.code == 0, result.err
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["seed0003.png", "seed0042.png"]
    # a seed's image does not depend on which other seeds are asked for
    assert cli("sample", "--checkpoint", trained_run, "--seeds", "40-42", "--out-dir", tmp_path / "t").code == 0
    assert torch.equal(pixels(tmp_path / "s" / "seed0042.png"), pixels(tmp_path / "t" / "seed0042.png"))


def cell(grid, row, col, size=28, pad=2):
    top, left = pad + row * (size + pad), pad + col * (size + pad)
    return grid[:, top : top + size, left : left + size]


def test_interpolation_endpoints_are_the_seeds_images(cli, trained_run, tmp_path):
    result = cli("interpolate", "1", "2", "3", "--steps", "8", "--checkpoint", trained_run, "--out", tmp_path / "walk.png", "--gif", tmp_path / "walk.gif")
    assert result.code == 0, result.err
    grid = pixels(tmp_path / "walk.png")
    assert grid.shape[1:] == (2 * 30 + 2, 8 * 30 + 2)  # 2 rows (segments) of 8
    assert Image.open(tmp_path / "walk.gif").n_frames >= 16
    for seed, (row, col) in ((1, (0, 0)), (2, (0, 7)), (2, (1, 0)), (3, (1, 7))):
        assert cli("sample", "--checkpoint", trained_run, "--seeds", seed, "--out-dir", tmp_path / "s", "--overwrite").code == 0  # seed 2 twice
        single = pixels(tmp_path / "s" / f"seed{seed:04d}.png")
        assert torch.equal(cell(grid, row, col)[0], single[0]), (seed, row, col)
    assert not torch.equal(cell(grid, 0, 3), cell(grid, 0, 4))  # the path moves


def test_conditional_interpolation_with_labels(cli, conditional_run, tmp_path):
    result = cli("interpolate", "4", "9", "--steps", "4", "--checkpoint", conditional_run, "--labels", "3", "--labels", "8", "--out", tmp_path / "w.png", "--loop")
    assert result.code == 0, result.err
    grid = pixels(tmp_path / "w.png")
    assert grid.shape[1:] == (2 * 30 + 2, 4 * 30 + 2)  # with --loop: 4 -> 9 -> 4
    assert cli("sample", "--checkpoint", conditional_run, "--seeds", "9", "--label", "8", "--out-dir", tmp_path / "s").code == 0
    assert torch.equal(cell(grid, 0, 3)[0], pixels(tmp_path / "s" / "seed0009.png")[0])
    assert cli("sample", "--checkpoint", conditional_run, "--seeds", "4", "--label", "3", "--out-dir", tmp_path / "s").code == 0
    assert torch.equal(cell(grid, 1, 3)[0], pixels(tmp_path / "s" / "seed0004.png")[0])


def test_cgan_trains_on_folder_classes(cli, image_folder):
    result = cli("train", image_folder, "--arch", "cgan", "--image-size", "16", "--steps", "2", "--out", "runs/cg", *FAST)
    assert result.code == 0, result.err
    result = cli("sample", "--checkpoint", "runs/cg", "--label", "SQUARES", "--n", "2", "--seed", "0", "--out", "sq.png")
    assert result.code == 0, result.err


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["sample", "--checkpoint", "{c}", "--label", "eleven"], 2, "use one of: 0, 1, 2"),
        (["sample", "--checkpoint", "{u}", "--label", "3"], 2, "is unconditional; drop --label"),
        (["sample", "--checkpoint", "{u}", "--per-class", "3", "--out-dir", "x"], 2, "is unconditional; drop --per-class"),
        (["sample", "--checkpoint", "{c}", "--per-class", "3"], 2, "give it with --outdir"),
        (["sample", "--checkpoint", "{u}", "--seeds", "1", "--n", "3"], 2, "drop --n and --seed"),
        (["sample", "--checkpoint", "{u}", "--seeds", "9-1"], 2, "runs backwards"),
        (["interpolate", "1", "--checkpoint", "{u}"], 2, "at least two seeds"),
        (["interpolate", "1", "2", "--steps", "1", "--checkpoint", "{u}"], 2, "--steps"),
        (["interpolate", "1", "2", "--checkpoint", "{u}", "--label", "3"], 2, "is unconditional"),
        (["interpolate", "1", "2", "3", "--checkpoint", "{c}", "--labels", "3,8"], 2, "one class per seed"),
        (["interpolate", "1", "2", "--checkpoint", "{c}", "--labels", "3,eight"], 2, "'eight' is not a class"),
    ],
)
def test_latent_bad_input(cli, conditional_run, trained_run, args, code, message):
    args = [a.format(c=conditional_run, u=trained_run) for a in args]
    result = cli(*args)
    assert result.code == code, (result.code, result.err)
    assert message in result.err and len(result.err.strip().splitlines()) == 1


def test_conditional_arch_needs_labelled_data(cli, isolated):
    from tests.conftest import make_image_folder

    root = make_image_folder(isolated / "flat", size=16, per_class=2)
    for p in list(root.rglob("*.png")):
        p.rename(root / f"{p.parent.name}-{p.name}")
    result = cli("train", root, "--arch", "cdcgan", "--image-size", "28", "--steps", "1")
    assert result.code == 2 and "--arch cdcgan needs labelled data" in result.err


def test_cdcgan_discriminator_projects_the_label_onto_its_features_unless_stored_without():
    from gancli.config import TrainConfig
    from gancli.models import build_discriminator

    config = TrainConfig(arch="cdcgan", num_classes=10, class_names=tuple("0123456789"), discriminator_width=8)
    d = build_discriminator(config).eval()
    x, y = torch.randn(2, 1, 28, 28), torch.tensor([3, 3])
    with torch.no_grad():
        before = d(x, y)
        d.projection.weight[3].fill_(1.0)  # zero at first: D starts as the concatenation D
        after = d(x, y)
    assert not torch.allclose(before, after) and d(x, torch.tensor([4, 4])).shape == (2,)
    old = build_discriminator(config.with_changes(label_projection=False))
    assert not any(k.startswith("projection") for k in old.state_dict())


def test_wrong_labels_are_always_another_class_and_cover_the_others():
    from gancli.training.tasks.gan import wrong_labels

    labels = torch.tensor([3] * 2000)
    wrong = wrong_labels(labels, 10, torch.Generator().manual_seed(0))
    assert (wrong != labels).all() and set(wrong.tolist()) == set(range(10)) - {3}


@pytest.mark.parametrize("mismatch", [True, False])
def test_the_discriminator_sees_real_images_with_wrong_labels_as_fakes(mismatch):
    """GAN-CLS (Reed et al., 2016): with wrong labels D runs a third time in its step, on the real images."""
    from gancli.config import TrainConfig
    from gancli.models import build_discriminator, build_generator
    from gancli.training.tasks.gan import train_step

    config = TrainConfig(arch="cdcgan", num_classes=10, class_names=tuple("0123456789"), generator_width=8, discriminator_width=8, latent_dim=8)
    g, d = build_generator(config), build_discriminator(config)
    seen = []
    d.register_forward_hook(lambda module, args, out: seen.append((args[0].data_ptr(), args[1].tolist())))
    real, y = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 3])
    labels = (y, torch.tensor([5, 6, 5, 6])) + ((torch.tensor([9, 9, 9, 9]),) if mismatch else ())
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    train_step(real, g, d, opt_g, opt_d, torch.randn(4, 8), labels)
    assert len(seen) == (4 if mismatch else 3)  # real, fake[, real with wrong labels] in D's step; fake in G's
    assert ([labels for _, labels in seen][2] == [9, 9, 9, 9]) is mismatch
