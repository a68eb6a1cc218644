"""The live training display (Rich) and its plain-text form for logs and CI."""

from __future__ import annotations

import contextlib
import math
import time

from rich.console import Console, Group
from rich.markup import escape
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

PLAIN_INTERVAL_S = 10.0


def format_stats(values: dict[str, float | None], stats) -> str:
    """The values of a task's shown Stat declarations, labelled (no "a / b"): loss_D 0.693  D(x) 0.500 ...

    Scores not measured yet (None) are left out."""
    return "  ".join(stat.show(values[stat.name]) for stat in stats if stat.shown and values.get(stat.name) is not None)


def remaining_seconds(elapsed: float, done: int, left: int, time_limit: float | None) -> float:
    """Time to the end of a run: the steps left at the pace so far, or what --time-limit leaves if that ends it first."""
    by_steps = elapsed / done * left if done else float("inf")
    return min(by_steps, max(time_limit - elapsed, 0.0)) if time_limit else by_steps


ETA_AFTER_STEPS = 5  # steps timed before an ETA is shown
SLOW_FACTOR, SLOW_UPDATES = 3.0, 8  # throughput below a third of the best, 8 updates running (2 s at 4 a second): said once


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-:--:--"
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class TrainingDisplay:
    """A progress bar with step, epoch, images/s and ETA above the latest losses; plain lines off-terminal."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, soft_wrap=True)  # log lines never wrap mid-number
        self.live: Live | None = None
        self.last_plain = 0.0


    def work(self, total: float, what: str):
        """A bar for a job before training starts (decoding a folder)."""
        return work(total, what, self.console)

    def __enter__(self) -> "TrainingDisplay":
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def start(self, plan) -> None:
        c = plan.config
        wrap = dict(soft_wrap=not self.console.is_terminal)  # a terminal wraps these at spaces, a log file keeps whole lines
        self.console.print(f"Training [bold]{escape(c.arch)}[/] on {escape(plan.dataset)} at {c.image_size}x{c.image_size}, device {plan.device}", **wrap)
        per_process = f" per process x {plan.processes}" if plan.processes > 1 else ""
        self.console.print(f"Run directory: {escape(str(plan.run_dir))}  ({plan.total_steps} steps, {plan.steps_per_epoch} per epoch, batch {c.batch_size}{per_process})", **wrap)
        for notice in plan.notices:
            self.console.print(f"[yellow]Note:[/] {escape(notice)}", **wrap)
        self.total = plan.total_steps
        self.stats = plan.stats
        self.start_step = plan.start_step
        self.time_limit = plan.time_limit
        self.started = time.perf_counter()
        self.paced_from: tuple[float, int] | None = None
        self.best_speed, self.slow_updates, self.slow_said = 0.0, 0, False
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]train[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("epoch {task.fields[epoch]:.2f}"),
                TextColumn("{task.fields[speed]:,.0f} img/s"),
                TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
                console=self.console,
            )
            self.task = self.progress.add_task("train", total=plan.total_steps, completed=plan.start_step, epoch=0.0, speed=0.0, eta="-:--:--")
            self.stats_line = Text("waiting for the first step...")
            self.live = Live(Group(self.progress, self.stats_line), console=self.console, refresh_per_second=8)
            self.live.start()

    def eta(self, p) -> float:
        """Unknown until ETA_AFTER_STEPS steps have run past the first (which carries start-up costs); then their pace."""
        now = time.perf_counter()
        by_steps = float("inf")
        if self.paced_from is None and p.step - self.start_step >= 1:
            self.paced_from = (now, p.step)  # the pace is measured from here: start-up and the first step excluded
        elif self.paced_from is not None and p.step - self.paced_from[1] >= ETA_AFTER_STEPS:
            since, step = self.paced_from
            by_steps = remaining_seconds(now - since, p.step - step, p.total_steps - p.step, None)
        return min(by_steps, max(self.time_limit - (now - self.started), 0.0)) if self.time_limit else by_steps

    def row(self, step: int, row: dict, sample) -> None:
        pass  # rows go to metrics.csv; the display shows progress

    def _watch_speed(self, p) -> None:
        """Say once, in one line, when throughput falls to a third of the best so far for a while: a busy CPU."""
        if self.slow_said or p.step - self.start_step < 2 * ETA_AFTER_STEPS:
            return
        self.best_speed = max(self.best_speed, p.images_per_s)
        self.slow_updates = self.slow_updates + 1 if p.images_per_s < self.best_speed / SLOW_FACTOR else 0
        if self.slow_updates >= SLOW_UPDATES:
            self.slow_said = True
            self.console.print(f"[yellow]Note:[/] training slowed to {p.images_per_s:,.0f} img/s from {self.best_speed:,.0f}: is another "
                               "program using the CPUs? On a busy machine, fewer threads (--threads 1) can be several times faster.",
                               soft_wrap=not self.console.is_terminal)  # fmt: skip

    def update(self, p) -> None:
        self._watch_speed(p)
        if self.live is not None:
            self.progress.update(self.task, completed=p.step, epoch=p.epoch, speed=p.images_per_s, eta=format_eta(self.eta(p)))
            self.stats_line.plain = format_stats(p.stats, self.stats)
            return
        now = time.perf_counter()
        if now - self.last_plain >= PLAIN_INTERVAL_S or p.step == p.total_steps:
            self.last_plain = now
            self.console.print(
                f"step {p.step}/{p.total_steps}  epoch {p.epoch:.2f}  {format_stats(p.stats, self.stats)}  "
                f"{p.images_per_s:,.0f} img/s  ETA {format_eta(self.eta(p))}",
                highlight=False,
                markup=False,
            )


@contextlib.contextmanager
def work(total: float, what: str, console: Console | None = None):
    """A progress bar for a long command (gone when done) on a terminal; off it, a plain line every
    PLAIN_INTERVAL_S. Yields advance(amount): call it as work gets done, in the units of `total`."""
    console = console or Console(stderr=True, soft_wrap=True)
    if console.is_terminal:
        columns = (TextColumn(what), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(what, total=total)
            yield lambda amount=1: progress.advance(task, amount)
        return
    started = last = time.perf_counter()
    done = 0.0

    def advance(amount: float = 1) -> None:
        nonlocal done, last
        done += amount
        now = time.perf_counter()
        if now - last >= PLAIN_INTERVAL_S and done < total:
            last = now
            left = remaining_seconds(now - started, done, total - done, None)
            console.print(f"{what}: {100 * done / total:.0f}%  ETA {format_eta(left)}", highlight=False, markup=False)

    yield advance
