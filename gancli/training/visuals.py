"""Training visuals: progress.gif (the fixed-z grids over training) and metrics.png (curves).

Drawn with Pillow alone: the curves are simple enough that a plotting library is not worth
its install weight.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from gancli.store.files import atomic_path
from PIL.PngImagePlugin import PngInfo

MAX_GIF_FRAMES = 120
FRAME_MS = 250
LAST_FRAME_MS = 2000
SMOOTH_FROM = 8  # points in a series before a smoothed curve is drawn over the faint raw one
PALETTE = ((214, 39, 40), (31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127))


def write_training_visuals(run, stats) -> dict[str, list[str]]:
    """Write progress.gif and metrics.png of a run (a gancli.store.runs.Run) from what it has saved so far.

    `stats` are the task's Stat declarations: each with a panel is plotted there. Returns the
    columns drawn per panel (those with at least one value).
    """
    frames = run.sample_grids()
    if frames:
        write_progress_gif(frames, run.progress_gif)
    if not run.metrics.exists():
        return {}
    return write_metrics_plot(run.metrics, run.metrics_plot, stats)


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
    with atomic_path(out) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)


def read_metrics(path: Path) -> dict[str, list[float | None]]:
    """metrics.csv as columns, rows aligned: None where a row has no number."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[float | None]] = {}
    for row in rows:
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                columns.setdefault(key, []).append(None)
    return columns


def panels_of(stats) -> dict[str, list]:
    """Stat declarations grouped by their panel title, in declaration order."""
    panels: dict[str, list] = {}
    for stat in stats:
        if stat.panel is not None:
            panels.setdefault(stat.panel, []).append(stat)
    return panels


def write_metrics_plot(metrics: Path, out: Path, stats, width: int = 800, panel_height: int = 240) -> dict[str, list[str]]:
    """One panel per Stat.panel, each stat's column against step; returns the columns drawn per panel."""
    columns = read_metrics(metrics)
    panels = panels_of(stats)
    colours = {stat.name: PALETTE[i % len(PALETTE)] for i, stat in enumerate(s for group in panels.values() for s in group)}
    image = Image.new("RGB", (width, panel_height * max(1, len(panels))), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    drawn: dict[str, list[str]] = {}
    for i, (title, group) in enumerate(panels.items()):
        top = i * panel_height
        box = (60, top + 24, width - 20, top + panel_height - 30)  # plotting area: left, top, right, bottom
        series = {s.name: _points(columns, s.name) for s in group}
        values = [v for points in series.values() for _, v in points]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        if all(s.bounds for s in group):  # probabilities: a fixed scale reads better
            low, high = min(s.bounds[0] for s in group), max(s.bounds[1] for s in group)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        steps = [x for points in series.values() for x, _ in points]
        first, last = (min(steps), max(steps)) if steps else (0.0, 1.0)
        _axes(draw, font, box, first, last, low, high, title)
        x_of, y_of = _scale(first, last, box[0], box[2]), _scale(low, high, box[3], box[1])
        legend_x = box[0] + 8
        for stat in group:
            points = [(x_of(x), y_of(v)) for x, v in series[stat.name]]
            colour = colours[stat.name]
            if len(points) == 1:
                draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2], fill=colour)
            elif len(points) >= SMOOTH_FROM:  # the rows faint, their centred moving average bold: noise and trend both readable
                draw.line(points, fill=tuple(c + (255 - c) * 3 // 5 for c in colour), width=1)
                smoothed = smooth([v for _, v in series[stat.name]], smoothing_width(len(points)))
                draw.line([(x, y_of(v)) for (x, _), v in zip(points, smoothed)], fill=colour, width=2)
            elif points:
                draw.line(points, fill=colour, width=2)
            if len(points) >= 2:  # a curve, not a lone dot
                drawn.setdefault(title, []).append(stat.name)
            draw.line([(legend_x, top + 12), (legend_x + 18, top + 12)], fill=colours[stat.name], width=3)
            draw.text((legend_x + 22, top + 6), stat.legend, fill="black", font=font)
            legend_x += 40 + 7 * len(stat.legend)
    info = PngInfo()  # what was drawn, readable without looking at pixels (tests, scripts)
    info.add_text("gancli:series", json.dumps(drawn))
    with atomic_path(out) as tmp:
        image.save(tmp, format="PNG", pnginfo=info)
    return drawn


def smoothing_width(points: int) -> int:
    """Half-width of the moving average for a series: about a thirtieth of its points, at least 1."""
    return max(1, round(points / 30))


def smooth(values: list[float], half_width: int) -> list[float]:
    """A centred moving average (the window shrinks at the ends): unlike an EMA it does not lag behind a trend."""
    out = []
    for i in range(len(values)):
        window = values[max(0, i - half_width) : i + half_width + 1]
        out.append(sum(window) / len(window))
    return out


def plotted_series(plot: Path) -> dict[str, list[str]]:
    """The columns a metrics.png drew, per panel (from its PNG text chunk)."""
    with Image.open(plot) as image:
        return json.loads(image.text.get("gancli:series", "{}"))


def _points(columns: dict[str, list[float | None]], name: str) -> list[tuple[float, float]]:
    """(step, value) where the column has a value (scores are empty between measurements)."""
    return [(x, v) for x, v in zip(columns.get("step", []), columns.get(name, [])) if x is not None and v is not None]


def _scale(a: float, b: float, pa: float, pb: float):
    span = (b - a) or 1.0
    return lambda v: pa + (v - a) / span * (pb - pa)


def _axes(draw, font, box, first, last, low, high, title) -> None:
    left, top, right, bottom = box
    draw.rectangle(box, outline=(120, 120, 120))
    draw.text((right - 7 * len(title), top - 18), title, fill=(80, 80, 80), font=font)
    y_of = _scale(low, high, bottom, top)
    for k in range(5):
        value = low + (high - low) * k / 4
        y = y_of(value)
        draw.line([(left - 4, y), (left, y)], fill=(120, 120, 120))
        draw.text((4, y - 6), f"{value:.2f}", fill="black", font=font)
    if last > first:
        x_of = _scale(first, last, left, right)
        for k in range(5):
            step = first + (last - first) * k / 4
            x = x_of(step)
            draw.line([(x, bottom), (x, bottom + 4)], fill=(120, 120, 120))
            draw.text((x - 12, bottom + 6), f"{step:.0f}", fill="black", font=font)
        draw.text(((left + right) // 2 - 12, bottom + 16), "step", fill=(80, 80, 80), font=font)
