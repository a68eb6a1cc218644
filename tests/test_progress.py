"""The training display: labelled values, plain lines off-terminal, a live bar on a terminal."""

import io

from rich.console import Console

from gancli.config import TrainConfig
from gancli.progress import TrainingDisplay, format_stats
from gancli.tasks.gan import STATS as GAN_STATS
from gancli.training import TrainingPlan, TrainingProgress

STATS = {"loss_D": 1.25, "loss_G": 0.5, "D_x": 0.75, "D_G_z1": 0.3, "D_G_z2": 0.25}


def plan(tmp_path):
    return TrainingPlan(TrainConfig(), tmp_path, "cpu", "test data", ["a notice"], 0, 10, 5, stats=GAN_STATS)


def test_stats_are_labelled_not_slashed():
    text = format_stats(STATS, GAN_STATS)
    assert "/" not in text
    assert "D(x) 0.750" in text and "D(G(z)) in D step 0.300  in G step 0.250" in text


def test_plain_lines_when_not_a_terminal(tmp_path):
    buffer = io.StringIO()
    with TrainingDisplay(Console(file=buffer, force_terminal=False, width=200)) as display:
        display.start(plan(tmp_path))
        display.update(TrainingProgress(10, 10, 2.0, STATS, 123.0, 1.5))
    out = buffer.getvalue()
    assert "Note: a notice" in out
    assert "step 10/10  epoch 2.00  loss_D 1.250" in out and "123 img/s" in out


def test_live_display_on_a_terminal(tmp_path):
    buffer = io.StringIO()
    with TrainingDisplay(Console(file=buffer, force_terminal=True, width=160)) as display:
        display.start(plan(tmp_path))
        display.update(TrainingProgress(5, 10, 1.0, STATS, 456.0, 1.5))
    out = buffer.getvalue()
    assert "5/10" in out and "456 img/s" in out and "loss_G 0.500" in out
