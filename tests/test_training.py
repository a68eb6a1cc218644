"""The training step itself: what it returns, and the conditional models' mode-seeking term."""

import pytest
import torch

from gancli.store import checkpoints

from gancli.config import TrainConfig
from gancli.models import build_discriminator, build_generator
from gancli.training.tasks.gan import conditional_labels, mode_seeking_penalty, train_step
from gancli.training.loop import epoch_order


def nets(arch):
    torch.manual_seed(0)
    config = TrainConfig(arch=arch, image_size=28, num_classes=10, generator_width=8, discriminator_width=8)
    g, d = build_generator(config), build_discriminator(config)
    return g, d, torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999)), torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))


def test_train_step_updates_both_nets_and_reports_probabilities():
    g, d, opt_g, opt_d = nets("dcgan")
    before_g = [p.clone() for p in g.parameters()]
    before_d = [p.clone() for p in d.parameters()]
    stats = train_step(torch.rand(8, 1, 28, 28) * 2 - 1, g, d, opt_g, opt_d, torch.randn(8, 100))
    assert stats.shape == (5,) and torch.isfinite(stats).all()
    assert ((stats[2:] > 0) & (stats[2:] < 1)).all()  # D(x), D(G(z)) twice: probabilities
    assert all(not torch.equal(a, b) for a, b in zip(before_g, g.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(before_d, d.parameters()))


def test_conditional_step_takes_labels():
    g, d, opt_g, opt_d = nets("cdcgan")
    y = torch.arange(8) % 10
    stats = train_step(torch.rand(8, 1, 28, 28) * 2 - 1, g, d, opt_g, opt_d, torch.randn(8, 100), (y, conditional_labels(8, 10, "cpu", torch.Generator().manual_seed(0))))
    assert torch.isfinite(stats).all()


def test_conditional_labels_pair_the_two_halves():
    y = conditional_labels(9, 10, "cpu", torch.Generator().manual_seed(1))
    assert y.shape == (9,) and torch.equal(y[:4], y[5:9])
    y = conditional_labels(8, 10, "cpu", torch.Generator().manual_seed(1))
    assert torch.equal(y[:4], y[4:])


def test_mode_seeking_penalises_ignoring_z():
    z = torch.randn(8, 100)
    same = torch.zeros(8, 1, 4, 4)
    varied = torch.randn(8, 1, 4, 4)
    assert mode_seeking_penalty(same, z) > 1000 * mode_seeking_penalty(varied, z)
    odd = torch.randn(9, 1, 4, 4)
    odd[5:] = odd[:4]  # pairs (i, i + 5) are the ones with equal labels in a batch of 9
    assert mode_seeking_penalty(odd, torch.randn(9, 100)) > 1000
    assert mode_seeking_penalty(torch.randn(1, 1, 4, 4), torch.randn(1, 100)) == 0


def test_epoch_order_is_a_function_of_seed_and_epoch():
    assert torch.equal(epoch_order(100, 3, 5), epoch_order(100, 3, 5))
    assert not torch.equal(epoch_order(100, 3, 5), epoch_order(100, 3, 6))
    assert sorted(epoch_order(100, 3, 5).tolist()) == list(range(100))


def test_bf16_autocast_step(monkeypatch):
    from gancli import device as devices

    monkeypatch.setattr(devices, "bf16_supported", lambda device: True)  # CPU autocast runs bf16 in software anyway
    g, d, opt_g, opt_d = nets("dcgan")
    stats = train_step(torch.rand(4, 1, 28, 28) * 2 - 1, g, d, opt_g, opt_d, torch.randn(4, 100), None,
                       devices.precision_context("bf16", torch.device("cpu")))  # fmt: skip
    assert stats.dtype == torch.float32 and torch.isfinite(stats).all()
    assert all(p.dtype == torch.float32 for p in g.parameters())  # weights stay fp32; only the maths is bf16


def test_bf16_without_hardware_support_is_a_usage_error(monkeypatch):
    import pytest

    from gancli import device as devices
    from gancli.errors import UsageError

    monkeypatch.setattr(devices, "bf16_supported", lambda device: False)
    with pytest.raises(UsageError, match="--precision bf16 needs bf16 hardware support"):
        devices.precision_context("bf16", torch.device("cpu"))


@pytest.mark.slow
def test_compile_keeps_the_checkpoint_plain(cli, isolated, monkeypatch):
    """--compile wraps the training forwards only: the checkpoint has the same keys and loads anywhere."""
    monkeypatch.setenv("GANCLI_COMPILE_BACKEND", "eager")  # dynamo tracing without the C++ build of inductor
    fast = ["--arch", "gan", "--steps", "2", "--batch-size", "16", "--device", "cpu"]
    assert cli("train", "mnist", *fast, "--compile", "--out", "c").code == 0
    assert cli("train", "mnist", *fast, "--out", "plain").code == 0
    compiled = checkpoints.load_checkpoint(isolated / "c" / "checkpoints" / "last.safetensors")
    plain = checkpoints.load_checkpoint(isolated / "plain" / "checkpoints" / "last.safetensors")
    assert sorted(compiled.tensors) == sorted(plain.tensors)
    for key, value in plain.tensors.items():  # the same maths: the eager backend changes no numbers
        assert torch.allclose(compiled.tensors[key].float(), value.float(), atol=1e-6), key


def test_default_length_fits_small_data():
    from gancli.config import MIN_DEFAULT_STEPS
    from gancli.training.plan import training_length

    assert training_length(TrainConfig(), 312) == (1560, None)  # 5 epochs of the bundled digits
    steps, note = training_length(TrainConfig(), 3)  # a folder of about 100 images
    assert steps == MIN_DEFAULT_STEPS and "5 epochs of this data would be 15 steps" in note
    assert training_length(TrainConfig(epochs=5), 3) == (15, None)  # asked for: given
    assert training_length(TrainConfig(steps=7), 3) == (7, None)


def test_a_second_ctrl_c_still_says_what_was_saved(cli, isolated, monkeypatch):
    from gancli.cli.progress import TrainingDisplay

    def impatient(self, progress):  # the user presses Ctrl-C twice once step 3 is reached
        if progress.step >= 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingDisplay, "update", impatient)
    result = cli("train", "mnist", "--steps", "50", "--sample-every", "2", "--batch-size", "8", "--device", "cpu", "-o", "r")
    assert result.code == 130
    assert "Stopped at once by a second Ctrl-C. The last checkpoint saved is r/checkpoints/last.safetensors (step 2)" in result.err
    assert "gancli train --resume r" in result.err
    assert checkpoints.load_checkpoint(isolated / "r" / "checkpoints" / "last.safetensors").step == 2


def test_metrics_rows_come_four_times_as_often_as_grids(cli, isolated):
    import csv

    args = ["--steps", "60", "--sample-every", "100", "--batch-size", "8", "--generator-width", "4", "--discriminator-width", "4"]
    assert cli("train", "mnist", *args, "--device", "cpu", "-o", "r").code == 0
    rows = list(csv.DictReader((isolated / "r" / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [25, 50, 60]  # every 100 // 4 steps, and the end
    assert [p.name for p in (isolated / "r" / "samples").iterdir()] == ["step_000060.png"]  # grids: every 100 and the end
    assert checkpoints.read_header(isolated / "r" / "checkpoints" / "last.safetensors").step == 60


def test_metrics_curves_are_smoothed_without_lag():
    import random

    from gancli.training.visuals import smooth, smoothing_width

    assert smooth([3.0] * 20, 2) == pytest.approx([3.0] * 20)
    ramp = [float(i) for i in range(40)]
    assert smooth(ramp, 3)[3:-3] == pytest.approx(ramp[3:-3])  # centred: a trend is not dragged behind
    noisy = [1.0 + random.Random(i).gauss(0, 0.5) for i in range(300)]
    smoothed = smooth(noisy, smoothing_width(len(noisy)))
    spread = lambda xs: max(xs[20:-20]) - min(xs[20:-20])  # noqa: E731
    assert spread(smoothed) < spread(noisy) / 2 and abs(sum(smoothed) / 300 - 1.0) < 0.1
    assert smoothing_width(8) == 1 and smoothing_width(300) == 10
