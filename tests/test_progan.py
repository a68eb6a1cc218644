"""progan: the growth schedule, fade-in, equalised learning rate, minibatch stddev, resume mid-growth."""

import csv

import pytest
import torch

from gancli.store import checkpoints
from tests.conftest import train_once
from gancli.config import TrainConfig
from gancli.models import build_discriminator, build_generator
from gancli.models.progan import growth, minibatch_stddev, resolutions

FAST = ["--batch-size", "8", "--device", "cpu", "--generator-width", "16"]


def test_schedule_stabilises_4x4_then_fades_in_and_stabilises_each_doubling():
    assert resolutions(32) == [4, 8, 16, 32]
    phase, levels = 10, 4
    assert growth(0, phase, levels) == (0, 1.0) and growth(9, phase, levels) == (0, 1.0)
    assert growth(10, phase, levels) == (1, 0.0) and growth(15, phase, levels) == (1, 0.5)  # fading in 8x8
    assert growth(20, phase, levels) == (1, 1.0) and growth(29, phase, levels) == (1, 1.0)  # stable 8x8
    assert growth(30, phase, levels) == (2, 0.0)
    assert growth(70, phase, levels) == (3, 1.0) and growth(10_000, phase, levels) == (3, 1.0)


def test_outputs_keep_their_shape_while_growing_and_fade_in_smoothly():
    config = TrainConfig(arch="progan", image_size=32, channels=3, generator_width=8, phase_steps=10)
    g, d = build_generator(config), build_discriminator(config)
    z = torch.randn(4, config.latent_dim)
    for step in (0, 10, 15, 20, 60):
        g.step.fill_(step)
        d.step.fill_(step)
        image = g(z)
        assert image.shape == (4, 3, 32, 32) and d(image).shape == (4,)
    g.step.fill_(9)
    stable_8 = g(z)  # the last 4x4 step, shown at 32 px
    assert torch.equal(stable_8[..., ::8, ::8].repeat_interleave(8, -1).repeat_interleave(8, -2), stable_8)  # blocky: 4x4 content
    g.step.fill_(10)
    assert torch.allclose(g(z), stable_8, atol=1e-5)  # alpha 0: the new 8x8 block has no say yet


def test_minibatch_stddev_adds_a_map_that_is_zero_for_identical_images():
    same = torch.ones(4, 3, 4, 4)
    out = minibatch_stddev(same)
    assert out.shape == (4, 4, 4, 4) and out[:, 3].abs().max() < 1e-3
    assert minibatch_stddev(torch.randn(4, 3, 4, 4))[:, 3].mean() > 0.5


@pytest.mark.slow  # end to end: several runs, sampling and eval
def test_progan_trains_through_its_schedule_resumes_mid_growth_and_samples(cli, isolated):
    result = cli("train", "mnist", "--arch", "progan", "--image-size", "32", "--steps", "7", "--sample-every", "3", "--out", "pg", *FAST)
    assert result.code == 0, result.err
    assert "progan grows 4x4 -> 32x32 in 7 phases of 1 steps" in result.err
    with (isolated / "pg" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["resolution"]) for r in rows] == [("3", "16"), ("6", "32"), ("7", "32")]
    # a run stopped mid-growth resumes where the schedule was: the step is in the checkpoint
    partial = cli("train", "mnist", "--arch", "progan", "--image-size", "32", "--phase-steps", "4", "--steps", "6", "--out", "mid", *FAST)
    assert partial.code == 0, partial.err
    checkpoint = checkpoints.load_checkpoint(isolated / "mid" / "checkpoints" / "last.safetensors")
    assert checkpoint.tensors["generator.step"].item() == 6 and checkpoint.config.phase_steps == 4
    resumed = cli("train", "--resume", "mid", "--steps", "10")
    assert resumed.code == 0, resumed.err
    assert "8x8  alpha" in resumed.err  # step 6..10 of phases of 4: fading in 8x8, then stable
    assert checkpoints.load_checkpoint(isolated / "mid" / "checkpoints" / "last.safetensors").tensors["generator.step"].item() == 10
    assert cli("sample", "--checkpoint", "mid", "--n", "4", "--seed", "0", "--out", "s.png").code == 0
    assert cli("interpolate", "0", "1", "--steps", "3", "--checkpoint", "mid", "--out", "w.png").code == 0


def test_phase_steps_belong_to_progan(cli):
    result = cli("train", "mnist", "--arch", "dcgan", "--phase-steps", "5", "--steps", "1")
    assert result.code == 2 and "--phase-steps is for --arch progan" in result.err


@pytest.mark.slow  # colour + eval: the registry tests cover the fast path
def test_progan_trains_on_colour_images_and_evaluates(cli, isolated, image_folder, classifier_run, tmp_path_factory):
    result = cli("train", image_folder, "--arch", "progan", "--image-size", "32", "--steps", "2", "--out", "col", *FAST)
    assert result.code == 0, result.err
    assert checkpoints.load_checkpoint(isolated / "col" / "checkpoints" / "last.safetensors").config.channels == 3
    digits = train_once(tmp_path_factory, "progan-digits", "--arch", "progan", "--image-size", "32", "--steps", "2", "--generator-width", "16")
    scored = cli("eval", digits, "--classifier", classifier_run, "--force", "--n", "50")  # 32 px images meet a 28 px classifier
    assert scored.code == 0, scored.err
    assert "FID" in scored.out and "real floor" in scored.out
