"""stylegan: mapping network, modulated convolutions, noise, style mixing, truncation, --mix grids."""

import pytest
import torch
from PIL import Image

from gancli.store import checkpoints
from tests.conftest import train_once
from gancli.config import TrainConfig
from gancli.models import build_discriminator, build_generator
from gancli.models.stylegan import ModulatedConv2d

FAST = ["--batch-size", "8", "--device", "cpu", "--generator-width", "16", "--sample-every", "2"]


def small(**changes):
    torch.manual_seed(0)
    return build_generator(TrainConfig(arch="stylegan", image_size=32, channels=3, generator_width=8, **changes))


def test_shapes_styles_and_deterministic_eval_noise():
    g = small()
    d = build_discriminator(TrainConfig(arch="stylegan", image_size=32, channels=3, generator_width=8))
    z = torch.randn(3, 100)
    assert g(z).shape == (3, 3, 32, 32) and d(g(z)).shape == (3,)
    assert g.num_styles == 7  # 4x4: one layer; 8, 16, 32: two each
    g.eval()
    assert torch.equal(g(z), g(z))  # fixed noise maps at eval time: an image depends on its z alone
    g.train()
    assert not torch.equal(g(z), g(z))  # fresh noise (and mixing) while training


def test_demodulation_gives_unit_variance_outputs_whatever_the_style():
    conv = ModulatedConv2d(64, 64, 3)
    x = torch.randn(4, 64, 8, 8)
    for scale in (0.1, 10.0):
        with torch.no_grad():
            conv.affine.bias.fill_(scale)
        out = conv(x, torch.zeros(4, 128))
        assert out[..., 1:-1, 1:-1].std().item() == pytest.approx(1.0, abs=0.15)


def test_truncation_pulls_images_towards_the_average_style():
    g = small().eval()
    with torch.no_grad():
        g.w_average.copy_(g.map(torch.randn(512, 100)).mean(0))
    z = torch.randn(16, 100)
    spread = g(z).std(0).mean()
    g.truncation = 0.0
    collapsed = g(z)
    assert torch.allclose(collapsed, collapsed[:1].expand_as(collapsed), atol=1e-5)  # psi 0: everyone is the average
    g.truncation = 0.5
    assert g(z).std(0).mean() < spread


def test_mixing_takes_coarse_styles_from_one_seed_and_fine_from_the_other():
    g = small().eval()
    a, b = torch.randn(1, 100), torch.randn(1, 100)
    assert torch.allclose(g.mixed(a, b, crossover=g.num_styles), g(a))  # no layer from b: a's image
    assert torch.allclose(g.mixed(a, b, crossover=0), g(b))  # every layer from b: b's image
    mixed = g.mixed(a, b, crossover=3)
    assert not torch.allclose(mixed, g(a)) and not torch.allclose(mixed, g(b))


@pytest.mark.slow  # end to end: several runs, sampling and eval
def test_stylegan_trains_resumes_samples_with_truncation_and_mixes(cli, isolated):
    result = cli("train", "mnist", "--arch", "stylegan", "--image-size", "32", "--steps", "2", "--out", "sg", *FAST)
    assert result.code == 0, result.err
    checkpoint = checkpoints.load_checkpoint(isolated / "sg" / "checkpoints" / "last.safetensors")
    assert checkpoint.tensors["generator.w_average"].abs().sum() > 0  # tracked while training
    assert cli("train", "--resume", "sg", "--steps", "4").code == 0
    for name, extra in (("a.png", []), ("b.png", []), ("t.png", ["--truncation", "0.7"])):
        assert cli("sample", "--checkpoint", "sg", "--n", "4", "--seed", "3", *extra, "--out", name).code == 0
    assert (isolated / "a.png").read_bytes() == (isolated / "b.png").read_bytes()
    assert (isolated / "a.png").read_bytes() != (isolated / "t.png").read_bytes()
    mixed = cli("interpolate", "1", "2", "--mix", "7", "--checkpoint", "sg", "--out", "mix.png")
    assert mixed.code == 0, mixed.err
    assert Image.open(isolated / "mix.png").size == (3 * 32 + 4 * 2, 2 * 32 + 3 * 2)  # a row per seed, three images each
    assert cli("interpolate", "1", "2", "--steps", "3", "--checkpoint", "sg", "--out", "w.png").code == 0


def test_truncation_and_mix_need_a_style_based_generator(cli, trained_run):
    result = cli("sample", "--checkpoint", trained_run, "--truncation", "0.7")
    assert result.code == 2 and "--truncation needs a style-based generator" in result.err
    result = cli("interpolate", "1", "--mix", "2", "--checkpoint", trained_run)
    assert result.code == 2 and "--mix needs a style-based generator" in result.err


@pytest.mark.slow  # colour + eval: the registry tests cover the fast path
def test_stylegan_trains_on_colour_images_and_evaluates(cli, isolated, image_folder, classifier_run, tmp_path_factory):
    result = cli("train", image_folder, "--arch", "stylegan", "--image-size", "32", "--steps", "2", "--out", "col", *FAST)
    assert result.code == 0, result.err
    assert checkpoints.load_checkpoint(isolated / "col" / "checkpoints" / "last.safetensors").config.channels == 3
    digits = train_once(tmp_path_factory, "stylegan-digits", "--arch", "stylegan", "--image-size", "32", "--steps", "2", "--generator-width", "16")
    scored = cli("eval", digits, "--classifier", classifier_run, "--force", "--n", "50")  # 32 px images meet a 28 px classifier
    assert scored.code == 0, scored.err
    assert "FID" in scored.out and "real floor" in scored.out
