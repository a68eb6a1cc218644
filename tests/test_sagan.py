"""sagan: self-attention blocks, spectral norm everywhere, hinge loss and two learning rates by default."""

import pytest
import torch

from gancli.store import checkpoints
from gancli.config import TrainConfig
from gancli.models import build_discriminator, build_generator
from gancli.models.sagan import SelfAttention

FAST = ["--batch-size", "8", "--device", "cpu", "--sample-every", "2", "--generator-width", "16", "--discriminator-width", "16"]


@pytest.mark.parametrize("size, attention", [(28, 0), (32, 16), (32, 8), (64, 32)])
def test_shapes_and_attention_placement(size, attention):
    config = TrainConfig(arch="sagan", image_size=size, channels=3, attention_size=attention, generator_width=8, discriminator_width=8)
    g, d = build_generator(config), build_discriminator(config)
    images = g(torch.randn(2, config.latent_dim))
    assert images.shape == (2, 3, size, size) and images.abs().max() <= 1
    assert d(images).shape == (2,)
    expected = attention or size // 2
    for net, x in ((g.net, torch.randn(2, config.latent_dim, 1, 1)), (d.features, images)):
        sides = []
        for layer in net:
            x = layer(x)
            if isinstance(layer, SelfAttention):
                sides.append(x.shape[-1])
        assert sides == [expected]
    assert all(hasattr(m, "parametrizations") for m in d.modules() if isinstance(m, torch.nn.Conv2d))


def test_attention_starts_as_identity_and_mixes_distant_positions():
    block = SelfAttention(16)
    x = torch.randn(1, 16, 6, 6)
    assert torch.equal(block(x), x)  # gamma = 0 at the start
    with torch.no_grad():
        block.gamma.fill_(1.0)
    y = x.clone()
    y[..., 0, 0] += 5.0  # change one corner
    changed = (block(y) - block(x)).abs().sum(1)[0]
    assert changed[5, 5] > 0  # the opposite corner sees it: attention is global, unlike a 3x3 convolution


@pytest.mark.slow  # end to end: several runs, sampling and eval
def test_sagan_trains_with_its_defaults_resumes_samples_and_evaluates(cli, isolated):
    result = cli("train", "mnist", "--arch", "sagan", "--steps", "2", "--out", "sa", *FAST)
    assert result.code == 0, result.err
    assert "sagan trains with loss hinge, lr_g 0.0001, lr_d 0.0004" in result.err
    checkpoint = checkpoints.load_checkpoint(isolated / "sa" / "checkpoints" / "last.safetensors")
    assert (checkpoint.config.loss, checkpoint.config.beta1, checkpoint.config.beta2) == ("hinge", 0.0, 0.9)
    assert cli("train", "--resume", "sa", "--steps", "4").code == 0
    assert cli("sample", "--checkpoint", "sa", "--n", "4", "--seed", "1", "--out", "s.png").code == 0
    assert cli("interpolate", "1", "2", "--steps", "3", "--checkpoint", "sa", "--out", "w.png").code == 0
    own = cli("train", "mnist", "--arch", "sagan", "--loss", "bce", "--lr-g", "0.0002", "--steps", "1", "--out", "sb", *FAST)
    assert own.code == 0, own.err
    config = checkpoints.load_checkpoint(isolated / "sb" / "checkpoints" / "last.safetensors").config
    assert (config.loss, config.lr_g, config.lr_d) == ("bce", 2e-4, 4e-4)  # given flags win; the rest keep sagan's


def test_bad_attention_size_names_the_valid_ones(cli):
    result = cli("train", "mnist", "--arch", "sagan", "--attention-size", "5", "--steps", "1")
    assert result.code == 2 and "use one of 7, 14, 28" in result.err
    other = cli("train", "mnist", "--arch", "dcgan", "--attention-size", "14", "--steps", "1")
    assert other.code == 2 and "--attention-size is for --arch sagan" in other.err


@pytest.mark.slow  # colour folder: the registry tests cover the fast path
def test_sagan_trains_on_a_folder_of_colour_images_at_32(cli, isolated, image_folder):
    result = cli("train", image_folder, "--arch", "sagan", "--image-size", "32", "--steps", "2", "--out", "col", *FAST)
    assert result.code == 0, result.err
    assert checkpoints.load_checkpoint(isolated / "col" / "checkpoints" / "last.safetensors").config.channels == 3
