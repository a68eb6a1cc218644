"""Issue 26's networks and regularisers: residual dcgan (--residual), lazy R1 (--r1), D without BatchNorm
(--discriminator-norm none) and the moving average's warm-up (--ema-warmup): each trains, resumes bit-exactly, and
configs from before them read as the runs they were."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gancli.config import R1_INTERVAL, TrainConfig
from gancli.models import ARCHITECTURES, build_discriminator, build_generator, get_architecture
from gancli.models.normalisation import ChannelBias
from gancli.store import checkpoints
from gancli.training.losses import r1_penalty
from gancli.training.tasks.gan import ema_decay

FAST = ["--batch-size", "8", "--device", "cpu", "--sample-every", "3", "--seed", "5"]
TINY = ["--latent-dim", "8", "--generator-width", "8", "--discriminator-width", "8"]
SMALL = {"stylegan": ["--image-size", "32"], "progan": ["--image-size", "32", "--phase-steps", "3"], "gan": ["--image-size", "16"],
         "cgan": ["--image-size", "16"]}  # fmt: skip
GANS = [a for a in ARCHITECTURES if get_architecture(a).kind == "generator"]


def _same_after_resume(cli, isolated, options: list[str], steps: int, split: int) -> dict:
    """Train `steps` straight and `split` then --resume to `steps`; assert equal checkpoints; the straight one's tensors."""
    assert cli("train", *options, "--steps", str(steps), "--out", "straight").code == 0
    assert cli("train", *options, "--steps", str(split), "--out", "split").code == 0
    resumed = cli("train", "--resume", "split", "--steps", str(steps))
    assert resumed.code == 0, resumed.err
    a = checkpoints.load_checkpoint(isolated / "straight/checkpoints/last.safetensors")
    b = checkpoints.load_checkpoint(isolated / "split/checkpoints/last.safetensors")
    assert sorted(a.tensors) == sorted(b.tensors)
    for key, value in a.tensors.items():
        assert key.startswith("rng.") or torch.equal(value, b.tensors[key]), f"{options[2]}: {key} differs after resume"
    return a.tensors


@pytest.mark.parametrize("arch", [pytest.param(a, marks=[] if a == "dcgan" else [pytest.mark.slow]) for a in GANS])
def test_lazy_r1_trains_and_resumes_bit_exactly(cli, isolated, arch):
    """R1 at steps 0 and 16 of 18; the resume at step 5 must find the 16th by the run's count, not its own."""
    options = ["mnist", "--arch", arch, *TINY, *SMALL.get(arch, []), *FAST]
    with_r1 = _same_after_resume(cli, isolated, [*options, "--r1", "10"], R1_INTERVAL + 2, 5)
    assert cli("train", *options, "--steps", str(R1_INTERVAL + 2), "--out", "plain").code == 0
    plain = checkpoints.load_checkpoint(isolated / "plain/checkpoints/last.safetensors").tensors
    assert any(not torch.equal(v, plain[k]) for k, v in with_r1.items() if k.startswith("discriminator.")), "R1 changed nothing"


def test_residual_dcgan_and_ema_warmup_resume_bit_exactly(cli, isolated):
    tensors = _same_after_resume(cli, isolated, ["mnist", *TINY, *FAST, "--residual", "--ema", "--ema-warmup", "0.1"], 6, 4)
    assert any(".shortcut." in key for key in tensors)  # residual stages were trained, not DCGAN's
    config = checkpoints.load_checkpoint(isolated / "straight/checkpoints/last.safetensors").config
    assert config.residual and config.ema_warmup == 0.1
    assert cli("sample", "--checkpoint", "straight", "--n", "4", "--out", "s.png").code == 0


def test_d_without_batchnorm_resumes_bit_exactly(cli, isolated):
    tensors = _same_after_resume(cli, isolated, ["mnist", "--arch", "cdcgan", *TINY, *FAST, "--discriminator-norm", "none"], 4, 2)
    assert not any("running_mean" in key for key in tensors if key.startswith("discriminator."))


def test_r1_is_lazy_and_weighted_by_its_interval(isolated):
    from gancli.data.datasets import load_dataset
    from gancli.training.tasks.gan import GANTask

    config = TrainConfig(generator_width=8, discriminator_width=8, latent_dim=8, r1=2.0)
    task = GANTask(config, load_dataset("mnist", 28), torch.device("cpu"))
    weights = []
    for step in range(2 * R1_INTERVAL + 1):
        task.steps_taken = step
        weights.append(task.r1_weight())
    assert [i for i, w in enumerate(weights) if w] == [0, R1_INTERVAL, 2 * R1_INTERVAL]
    assert weights[0] == 2.0 / 2 * R1_INTERVAL  # gamma / 2, times the steps it stands for


def test_r1_penalty_is_the_squared_gradient_norm():
    """For D(x) = <w, x>, |grad D|^2 = |w|^2 on every image; the augmentation is differentiated through."""
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False))
    real = torch.randn(5, 3, 2, 2)
    w = d[1].weight
    assert torch.allclose(r1_penalty(lambda x: d(x).view(-1), real, (), lambda x: x), w.square().sum())
    assert torch.allclose(r1_penalty(lambda x: d(x).view(-1), real, (), lambda x: 3 * x), 9 * w.square().sum())
    penalty = r1_penalty(lambda x: d(x).view(-1), real, (), lambda x: x)
    penalty.backward()  # it trains D: a gradient reaches the weights
    assert torch.allclose(w.grad, 2 * w)


def test_ema_warmup():
    """0 is the ramp of before; r caps the half-life at r * n steps, and the decay never passes --ema's."""
    for n in (0, 1, 10, 1000, 10**6):
        assert ema_decay(0.999, 0.0, n) == min(0.999, (1 + n) / (10 + n))
    assert ema_decay(0.999, 0.05, 0) == 0.0  # the first update copies G
    assert abs(ema_decay(0.999, 0.05, 1000) - 0.5 ** (1 / 50)) < 1e-12  # half-life 50 steps
    assert ema_decay(0.999, 0.05, 10**6) == 0.999


@pytest.mark.parametrize("size", [28, 32, 64, 128])
def test_residual_dcgan_sizes(size):
    config = TrainConfig(image_size=size, residual=True, generator_width=4, discriminator_width=4, latent_dim=8)
    g, d = build_generator(config), build_discriminator(config)
    images = g(torch.randn(3, 8))
    assert images.shape == (3, 1, size, size) and images.abs().max() <= 1
    assert d(images).shape == (3,)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())  # SN-GAN's D: no BatchNorm


def test_d_without_batchnorm_has_a_bias_instead():
    d = build_discriminator(TrainConfig(discriminator_width=4, latent_dim=8, discriminator_norm="none"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules()) and any(isinstance(m, ChannelBias) for m in d.modules())


def test_configs_from_before_read_as_they_were_trained():
    """No R1, DCGAN's stages, D's BatchNorm, the old ramp: the defaults are what older runs did."""
    old = TrainConfig.from_dict({"arch": "dcgan", "ema": 0.999})
    assert (old.r1, old.residual, old.discriminator_norm, old.ema_warmup) == (0.0, False, "batch", 0.0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "sagan", "--residual"], "--residual is for --arch dcgan, not sagan"),
        (["--arch", "srcnn", "--r1", "1"], "--r1 applies to GANs, not to --arch srcnn; drop it."),
        (["--r1", "-1"], "--r1"),
        (["--discriminator-norm", "layer"], "'layer' is not one of 'batch', 'none'"),
    ],
)
def test_bad_values_are_one_line_usage_errors(cli, isolated, args, message):
    result = cli("train", "mnist", *args, "--steps", "1")
    assert result.code == 2 and message in result.err and "Traceback" not in result.err


@pytest.mark.slow  # aot_autograd traces D: about 10 s
@pytest.mark.parametrize("penalty", [["--r1", "1"], ["--loss", "wgan-gp"]])
def test_gradient_penalties_train_under_compile(cli, isolated, monkeypatch, penalty):
    """aot_autograd (inductor's front end) has no double backward: the penalties run D uncompiled, the rest compiled."""
    monkeypatch.setenv("GANCLI_COMPILE_BACKEND", "aot_eager")
    result = cli("train", "mnist", *TINY, *FAST, *penalty, "--steps", "2", "--compile", "--out", "c")
    assert result.code == 0, result.err
    assert checkpoints.load_checkpoint(isolated / "c/checkpoints/last.safetensors").step == 2
