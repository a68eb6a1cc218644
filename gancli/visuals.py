"""Training visuals: progress.gif (the fixed-z grids over training) and metrics.png (curves).

Drawn with Pillow alone: the curves are simple enough that a plotting library is not worth
its install weight.
"""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

MAX_GIF_FRAMES = 120
FRAME_MS = 250
LAST_FRAME_MS = 2000
PANELS = (
    ("losses", ("loss_D", "loss_G")),
    ("discriminator outputs", ("D_x", "D_G_z1", "D_G_z2")),
)
LEGEND = {"loss_D": "loss_D", "loss_G": "loss_G", "D_x": "D(x)", "D_G_z1": "D(G(z)) in D step", "D_G_z2": "D(G(z)) in G step"}
COLOURS = {"loss_D": (214, 39, 40), "loss_G": (31, 119, 180), "D_x": (44, 160, 44), "D_G_z1": (255, 127, 14), "D_G_z2": (148, 103, 189)}


def write_training_visuals(run_dir: Path) -> None:
    """Write progress.gif and metrics.png into `run_dir` from what the run has saved so far."""
    frames = sorted((run_dir / "samples").glob("step_*.png"))
    if frames:
        write_progress_gif(frames, run_dir / "progress.gif")
    metrics = run_dir / "metrics.csv"
    if metrics.exists():
        write_metrics_plot(metrics, run_dir / "metrics.png")


def write_progress_gif(frames: list[Path], out: Path) -> None:
    """Animate sample grids, each captioned with its step; at most MAX_GIF_FRAMES, always the last."""
    if len(frames) > MAX_GIF_FRAMES:
        stride = len(frames) / MAX_GIF_FRAMES
        frames = [frames[int(i * stride)] for i in range(MAX_GIF_FRAMES - 1)] + [frames[-1]]
    font = ImageFont.load_default()
    images = []
    for path in frames:
        with Image.open(path) as grid:
            canvas = Image.new("RGB", (grid.width, grid.height + 14), (0, 0, 0))
            canvas.paste(grid.convert("RGB"), (0, 0))
        step = path.stem.removeprefix("step_").lstrip("0") or "0"
        ImageDraw.Draw(canvas).text((3, grid.height + 1), f"step {step}", fill=(255, 255, 255), font=font)
        images.append(canvas)
    durations = [FRAME_MS] * (len(images) - 1) + [LAST_FRAME_MS]
    images[0].save(out, save_all=True, append_images=images[1:], duration=durations, loop=0)


def read_metrics(path: Path) -> dict[str, list[float]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                pass
    return columns


def write_metrics_plot(metrics: Path, out: Path, width: int = 800, panel_height: int = 240) -> None:
    """Two panels against step: loss_D and loss_G; D(x) and D(G(z)) in the D and G steps."""
    columns = read_metrics(metrics)
    steps = columns.get("step", [])
    image = Image.new("RGB", (width, panel_height * len(PANELS)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for i, (title, names) in enumerate(PANELS):
        top = i * panel_height
        box = (60, top + 24, width - 20, top + panel_height - 30)  # plotting area: left, top, right, bottom
        values = [v for n in names for v in columns.get(n, [])]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        if names[0].startswith("D_"):
            low, high = 0.0, 1.0  # probabilities: a fixed scale reads better
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        _axes(draw, font, box, steps, low, high, title)
        x_of = _scale(steps[0], steps[-1], box[0], box[2]) if steps else None
        y_of = _scale(low, high, box[3], box[1])
        legend_x = box[0] + 8
        for name in names:
            ys = columns.get(name, [])
            if x_of and len(ys) == len(steps):
                points = [(x_of(s), y_of(v)) for s, v in zip(steps, ys)]
                if len(points) == 1:
                    draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2], fill=COLOURS[name])
                else:
                    draw.line(points, fill=COLOURS[name], width=2)
            draw.line([(legend_x, top + 12), (legend_x + 18, top + 12)], fill=COLOURS[name], width=3)
            draw.text((legend_x + 22, top + 6), LEGEND[name], fill="black", font=font)
            legend_x += 40 + 7 * len(LEGEND[name])
    image.save(out)


def _scale(a: float, b: float, pa: float, pb: float):
    span = (b - a) or 1.0
    return lambda v: pa + (v - a) / span * (pb - pa)


def _axes(draw, font, box, steps, low, high, title) -> None:
    left, top, right, bottom = box
    draw.rectangle(box, outline=(120, 120, 120))
    draw.text((right - 7 * len(title), top - 18), title, fill=(80, 80, 80), font=font)
    y_of = _scale(low, high, bottom, top)
    for k in range(5):
        value = low + (high - low) * k / 4
        y = y_of(value)
        draw.line([(left - 4, y), (left, y)], fill=(120, 120, 120))
        draw.text((4, y - 6), f"{value:.2f}", fill="black", font=font)
    if steps:
        x_of = _scale(steps[0], steps[-1], left, right)
        for k in range(5):
            step = steps[0] + (steps[-1] - steps[0]) * k / 4
            x = x_of(step)
            draw.line([(x, bottom), (x, bottom + 4)], fill=(120, 120, 120))
            draw.text((x - 12, bottom + 6), f"{step:.0f}", fill="black", font=font)
        draw.text(((left + right) // 2 - 12, bottom + 16), "step", fill=(80, 80, 80), font=font)
