"""The training display: labelled values, plain lines off-terminal, a live bar on a terminal."""

import io

from rich.console import Console

from gancli.config import TrainConfig
from gancli.cli.progress import TrainingDisplay, format_stats
from gancli.training.tasks.gan import STATS as GAN_STATS
from gancli.training.reports import TrainingPlan, TrainingProgress

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


def test_eta_respects_the_time_limit():
    from gancli.cli.progress import format_eta, remaining_seconds

    assert remaining_seconds(10.0, 100, 900, None) == 90.0  # the pace so far
    assert remaining_seconds(10.0, 100, 900, 60.0) == 50.0  # --time-limit 1 ends it first
    assert remaining_seconds(70.0, 100, 900, 60.0) == 0.0
    assert format_eta(remaining_seconds(0.0, 0, 10, None)) == "-:--:--"  # nothing to go on yet


def test_time_limited_run_shows_an_eta_within_its_limit(tmp_path, monkeypatch):
    import gancli.cli.progress as progress

    clock = iter([0.0])  # the start, then 30 s later for ever
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock, 30.0))
    buffer = io.StringIO()
    limited = TrainingPlan(TrainConfig(), tmp_path, "cpu", "test data", [], 0, 1_000_000, 5, stats=GAN_STATS, time_limit=60.0)
    with TrainingDisplay(Console(file=buffer, force_terminal=False, width=200)) as display:
        display.start(limited)
        display.update(TrainingProgress(10, 1_000_000, 2.0, STATS, 123.0, 30.0))
    assert "ETA 0:00:30" in buffer.getvalue()  # not the 833 hours 10 steps in 30 s would take to a million


def test_long_commands_report_progress_plainly_off_a_terminal(monkeypatch):
    import gancli.cli.progress as progress

    ticks = iter([0.0, 11.0, 22.0, 25.0])  # start, then three pieces of work
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(ticks, 30.0))
    buffer = io.StringIO()
    with progress.work(300, "Sampling", Console(file=buffer, force_terminal=False, width=120)) as advance:
        for _ in range(3):
            advance(100)
    lines = buffer.getvalue().splitlines()
    assert lines == ["Sampling: 33%  ETA 0:00:22", "Sampling: 67%  ETA 0:00:11"]  # every 10 s, never at 100%


def test_long_commands_show_a_bar_on_a_terminal():
    from gancli.cli.progress import work

    buffer = io.StringIO()
    with work(10, "Upscaling", Console(file=buffer, force_terminal=True, width=100)) as advance:
        advance(5)
    assert "Upscaling" in buffer.getvalue()
