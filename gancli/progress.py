"""The live training display (Rich) and its plain-text form for logs and CI."""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

PLAIN_INTERVAL_S = 10.0


def format_stats(stats: dict[str, float]) -> str:
    """GANs: loss_D, loss_G, D(x), and D(G(z)) as seen in the D step and in the G step, spelled out
    (no "a / b"). Upscalers: their losses and the held-out PSNR next to bicubic's."""
    if "D_x" in stats:
        text = (
            f"loss_D {stats['loss_D']:.3f}  loss_G {stats['loss_G']:.3f}  D(x) {stats['D_x']:.3f}  "
            f"D(G(z)) in D step {stats['D_G_z1']:.3f}, in G step {stats['D_G_z2']:.3f}"
        )
        if "resolution" in stats:  # progan: where the growth schedule is
            text += f"  {round(stats['resolution'])}x{round(stats['resolution'])} alpha {stats['alpha']:.2f}"
        if stats.get("FID") is not None:  # measured every --eval-every steps
            text += f"  FID {stats['FID']:.2f}"
            if stats.get("classes_covered") is not None:
                text += f"  classes {stats['classes_covered']:.0f}"
        return text
    bookkeeping = ("step", "epoch", "images_per_s", "seconds")
    parts = [f"{name} {value:.4g}" for name, value in stats.items() if not name.startswith("PSNR") and name not in bookkeeping and value is not None]
    if "PSNR" in stats:
        parts.append(f"PSNR {stats['PSNR']:.2f} dB (bicubic {stats['PSNR_bicubic']:.2f} dB)")
    return "  ".join(parts)


def format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class TrainingDisplay:
    """A progress bar with step, epoch, images/s and ETA above the latest losses; plain lines off-terminal."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, soft_wrap=True)  # log lines never wrap mid-number
        self.live: Live | None = None
        self.last_plain = 0.0

    def __enter__(self) -> "TrainingDisplay":
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def start(self, plan) -> None:
        c = plan.config
        self.console.print(f"Training [bold]{c.arch}[/] on {plan.dataset} at {c.image_size}x{c.image_size}, device {plan.device}")
        per_process = f" per process x {plan.processes}" if plan.processes > 1 else ""
        self.console.print(f"Run directory: {plan.run_dir}  ({plan.total_steps} steps, {plan.steps_per_epoch} per epoch, batch {c.batch_size}{per_process})")
        for notice in plan.notices:
            self.console.print(f"[yellow]Note:[/] {notice}")
        self.total = plan.total_steps
        self.start_step = plan.start_step
        self.started = time.perf_counter()
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]train[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("epoch {task.fields[epoch]:.2f}"),
                TextColumn("{task.fields[speed]:,.0f} img/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.progress.add_task("train", total=plan.total_steps, completed=plan.start_step, epoch=0.0, speed=0.0)
            self.stats_line = Text("waiting for the first step...")
            self.live = Live(Group(self.progress, self.stats_line), console=self.console, refresh_per_second=8)
            self.live.start()

    def update(self, p) -> None:
        if self.live is not None:
            self.progress.update(self.task, completed=p.step, epoch=p.epoch, speed=p.images_per_s)
            self.stats_line.plain = format_stats(p.stats)
            return
        now = time.perf_counter()
        if now - self.last_plain >= PLAIN_INTERVAL_S or p.step == p.total_steps:
            self.last_plain = now
            done = p.step - self.start_step
            eta = (now - self.started) / done * (p.total_steps - p.step) if done else 0.0
            self.console.print(
                f"step {p.step}/{p.total_steps}  epoch {p.epoch:.2f}  {format_stats(p.stats)}  "
                f"{p.images_per_s:,.0f} img/s  ETA {format_eta(eta)}",
                highlight=False,
                markup=False,
            )
