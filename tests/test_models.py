"""Every architecture at every size it supports: shapes, init and the registry's checks."""

import pytest
import torch

from gancli.config import TrainConfig
from gancli.errors import UsageError
from gancli.models import ARCHITECTURES, build_discriminator, build_generator, check_image_size

CASES = [
    pytest.param(arch, size, channels, upsample, marks=[pytest.mark.slow] if size >= 128 else [])  # full-width 128 px models are slow to build
    for arch, spec in ARCHITECTURES.items()
    if spec.kind == "generator"
    for size in (spec.image_sizes or (28, 32))
    for channels in (1, 3)
    for upsample in (("transpose", "nearest") if arch == "dcgan" else ("transpose",))
]


@pytest.mark.parametrize("arch,size,channels,upsample", CASES)
def test_generator_and_discriminator_shapes(arch, size, channels, upsample):
    config = TrainConfig(arch=arch, image_size=size, channels=channels, upsample=upsample, latent_dim=16,
                         generator_width=8, discriminator_width=8, num_classes=4)  # fmt: skip
    g, d = build_generator(config), build_discriminator(config)
    y = (torch.tensor([0, 3, 1]),) if ARCHITECTURES[arch].conditional else ()
    fake = g(torch.randn(3, 16), *y)
    assert fake.shape == (3, channels, size, size)
    assert fake.min() >= -1 and fake.max() <= 1  # tanh output
    assert d(fake, *y).shape == (3,)


@pytest.mark.parametrize("arch", [a for a, spec in ARCHITECTURES.items() if spec.conditional])
def test_conditional_models_depend_on_the_label(arch):
    torch.manual_seed(0)
    config = TrainConfig(arch=arch, image_size=28, num_classes=10)
    g, d = build_generator(config).eval(), build_discriminator(config).eval()
    z = torch.randn(1, 100).repeat(2, 1)
    y = torch.tensor([2, 7])
    images = g(z, y)
    assert not torch.allclose(images[0], images[1])  # same z, different class
    assert torch.equal(g.from_embedding(z, g.embed(y)), images)  # the path interpolate --labels takes
    x = images[:1].repeat(2, 1, 1, 1).detach()
    logits = d(x, y)
    assert logits[0] != logits[1]  # D judges the image against the label


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_dcgan_64_matches_the_pytorch_example():
    # Parameter counts of netG / netD in pytorch/examples dcgan (nz 100, ngf = ndf = 64, nc 3).
    config = TrainConfig(arch="dcgan", image_size=64, channels=3)
    assert count(build_generator(config)) == 3_576_704
    assert count(build_discriminator(config)) == 2_765_568


def test_keras_variant_projects_to_7x7x128_at_28():
    g = build_generator(TrainConfig(arch="dcgan", image_size=28, upsample="nearest"))
    linear = g.net[0]
    assert isinstance(linear, torch.nn.Linear) and linear.out_features == 7 * 7 * 128
    convs = [m for m in g.net if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(5, 5), (5, 5)]
    assert sum(isinstance(m, torch.nn.Upsample) for m in g.net) == 2


def test_classic_gan_layer_widths():
    g = build_generator(TrainConfig(arch="gan", image_size=28))
    d = build_discriminator(TrainConfig(arch="gan", image_size=28))
    assert [m.out_features for m in g.net if isinstance(m, torch.nn.Linear)] == [256, 512, 1024, 784]
    assert [m.out_features for m in d.net if isinstance(m, torch.nn.Linear)] == [512, 256, 1]


def test_dcgan_init_is_normal_0_02():
    torch.manual_seed(0)
    g = build_generator(TrainConfig(arch="dcgan", image_size=64, channels=3))
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(weights.std().item() - 0.02) < 0.001
    assert abs(weights.mean().item()) < 0.001


def test_unsupported_size_names_the_valid_ones():
    with pytest.raises(UsageError, match=r"--image-size 30 is not supported by dcgan; use 28, 32, 64 or 128"):
        check_image_size("dcgan", 30)
    with pytest.raises(UsageError, match="out of range for gan"):
        check_image_size("gan", 2)


def test_dcgan_28_grows_4_7_14_28():
    g = build_generator(TrainConfig(arch="dcgan", image_size=28))
    x = torch.randn(2, 100)
    sides = []
    for layer in g.net:
        x = layer(x) if x.dim() == 4 else layer(x.view(2, 100, 1, 1))
        if isinstance(layer, torch.nn.ConvTranspose2d):
            sides.append((x.shape[1], x.shape[-1]))
    assert sides == [(256, 4), (128, 7), (64, 14), (1, 28)]


@pytest.mark.parametrize("arch", [a for a, spec in ARCHITECTURES.items() if spec.kind == "upscaler"])
@pytest.mark.parametrize("scale,channels", [(2, 1), (3, 3), (4, 1)])
def test_upscalers_multiply_the_size_and_start_at_bicubic(arch, scale, channels):
    config = TrainConfig(arch=arch, scale=scale, channels=channels, generator_width=8, discriminator_width=8)
    up = build_generator(config).eval()
    low = torch.rand(2, channels, 9, 13) * 2 - 1
    with torch.no_grad():
        high = up(low)
    assert high.shape == (2, channels, 9 * scale, 13 * scale)
    bicubic = torch.nn.functional.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False)
    assert torch.allclose(high, bicubic)  # the last layer starts at zero: an untrained upscaler is bicubic
    d = build_discriminator(config)
    assert (d is None) == (arch == "srcnn")
    if d is not None:
        assert d(high).shape == (2,)


def test_srcnn_layers_follow_the_paper():
    up = build_generator(TrainConfig(arch="srcnn", channels=1, generator_width=64))
    convs = [m for m in up.net if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(9, 9), (3, 3), (5, 5)]
    assert [c.out_channels for c in convs] == [64, 32, 1]
