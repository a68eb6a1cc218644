"""Training visuals: progress.gif (the fixed-z grids over training) and metrics.png (curves).

metrics.png is drawn with matplotlib (Agg) when it is installed (pip install "gancli[plots]"): about
70 MB and a second at the end of each run (benchmarks/plots.py). Without it, Pillow draws the same
panels: labels measured in the font, ticks with the digits their spacing needs.
"""

from __future__ import annotations

import csv
import json
import os
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
    """One panel per Stat.panel, each stat's column against step; returns the columns drawn per panel (a curve: 2+ points).

    matplotlib draws it when installed (GANCLI_PLOTS=pillow asks for the Pillow drawing anyway), else Pillow.
    """
    columns = read_metrics(metrics)
    panels = [(title, group, {s.name: _points(columns, s.name) for s in group}) for title, group in panels_of(stats).items()]
    drawn = {title: [s.name for s in group if len(series[s.name]) >= 2] for title, group, series in panels}
    drawn = {title: names for title, names in drawn.items() if names}
    draw = _matplotlib_plot if plot_engine() == "matplotlib" else _pillow_plot
    with atomic_path(out) as tmp:
        draw(panels, tmp, width, panel_height, json.dumps(drawn))  # what was drawn, in a PNG text chunk: readable without pixels
    return drawn


def plot_engine() -> str:
    """"matplotlib" when it can be imported (and GANCLI_PLOTS does not say "pillow"), else "pillow"."""
    if os.environ.get("GANCLI_PLOTS") == "pillow":
        return "pillow"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "pillow"
    return "matplotlib"


def _bounds(group, series) -> tuple[float, float] | None:
    """A fixed y range when every stat of the panel has one (probabilities read better on 0 to 1)."""
    if all(s.bounds for s in group):
        return min(s.bounds[0] for s in group), max(s.bounds[1] for s in group)
    return None


def _matplotlib_plot(panels, path: Path, width: int, panel_height: int, series_json: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(width / dpi, panel_height * max(1, len(panels)) / dpi), dpi=dpi, layout="constrained")
    axes = figure.subplots(max(1, len(panels)), 1, squeeze=False)[:, 0]
    colours = [tuple(c / 255 for c in PALETTE[i % len(PALETTE)]) for i in range(sum(len(g) for _, g, _ in panels))]
    index = 0
    for ax, (title, group, series) in zip(axes, panels):
        for stat in group:
            colour, points = colours[index], series[stat.name]
            index += 1
            xs, ys = [x for x, _ in points], [v for _, v in points]
            if len(points) >= SMOOTH_FROM:  # the rows faint, their centred moving average bold: noise and trend both readable
                ax.plot(xs, ys, color=colour, alpha=0.3, linewidth=1)
                ax.plot(xs, smooth(ys, smoothing_width(len(ys))), color=colour, linewidth=2, label=stat.legend)
            else:
                ax.plot(xs, ys, color=colour, linewidth=2, marker="o" if len(points) == 1 else None, label=stat.legend)
        bounds = _bounds(group, series)
        if bounds:
            ax.set_ylim(*bounds)
        ax.set_title(title, loc="right", fontsize=10, color="0.3")
        ax.set_xlabel("step", fontsize=9, color="0.3")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, ncols=max(1, len(group)), frameon=False)
    figure.savefig(path, format="png", metadata={"gancli:series": series_json})


def _pillow_plot(panels, path: Path, width: int, panel_height: int, series_json: str) -> None:
    image = Image.new("RGB", (width, panel_height * max(1, len(panels))), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    index = 0
    for i, (title, group, series) in enumerate(panels):
        top = i * panel_height
        values = [v for points in series.values() for _, v in points]
        low, high = _bounds(group, series) or ((min(values), max(values)) if values else (0.0, 1.0))
        if high - low < 1e-12 * max(1.0, abs(high)):
            low, high = low - 0.5, high + 0.5
        ticks = tick_labels([low + (high - low) * k / 4 for k in range(5)])
        left = 12 + max(int(draw.textlength(text, font=font)) for text in ticks)  # room for the widest label
        box = (left, top + 24, width - 20, top + panel_height - 30)  # plotting area: left, top, right, bottom
        steps = [x for points in series.values() for x, _ in points]
        first, last = (min(steps), max(steps)) if steps else (0.0, 1.0)
        _axes(draw, font, box, first, last, low, high, title, ticks)
        x_of, y_of = _scale(first, last, box[0], box[2]), _scale(low, high, box[3], box[1])
        legend_x = box[0] + 8
        for stat in group:
            points = [(x_of(x), y_of(v)) for x, v in series[stat.name]]
            colour = PALETTE[index % len(PALETTE)]
            index += 1
            if len(points) == 1:
                draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2], fill=colour)
            elif len(points) >= SMOOTH_FROM:
                draw.line(points, fill=tuple(c + (255 - c) * 3 // 5 for c in colour), width=1)
                smoothed = smooth([v for _, v in series[stat.name]], smoothing_width(len(points)))
                draw.line([(x, y_of(v)) for (x, _), v in zip(points, smoothed)], fill=colour, width=2)
            elif points:
                draw.line(points, fill=colour, width=2)
            draw.line([(legend_x, top + 12), (legend_x + 18, top + 12)], fill=colour, width=3)
            draw.text((legend_x + 22, top + 6), stat.legend, fill="black", font=font)
            legend_x += 40 + int(draw.textlength(stat.legend, font=font))
    info = PngInfo()
    info.add_text("gancli:series", series_json)
    image.save(path, format="PNG", pnginfo=info)


def tick_labels(values: list[float]) -> list[str]:
    """Tick labels with the fewest decimals that tell every tick apart and say where it is: KID-sized values keep theirs
    (0.0012, 0.0015, ...), where a fixed two decimals read 0.00 for all."""
    spacing = min((abs(b - a) for a, b in zip(values, values[1:])), default=1.0) or 1.0
    for decimals in range(0, 12):
        labels = [_trimmed(f"{v:.{decimals}f}") for v in values]
        if len(set(labels)) == len(labels) and all(abs(float(label) - v) < 0.01 * spacing for label, v in zip(labels, values)):
            return labels
    return [f"{v:.6g}" for v in values]


def _trimmed(text: str) -> str:
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


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


def _axes(draw, font, box, first, last, low, high, title, ticks: list[str]) -> None:
    left, top, right, bottom = box
    draw.rectangle(box, outline=(120, 120, 120))
    draw.text((right - draw.textlength(title, font=font), top - 18), title, fill=(80, 80, 80), font=font)
    y_of = _scale(low, high, bottom, top)
    for k, text in enumerate(ticks):
        y = y_of(low + (high - low) * k / 4)
        draw.line([(left - 4, y), (left, y)], fill=(120, 120, 120))
        draw.text((left - 6 - draw.textlength(text, font=font), y - 6), text, fill="black", font=font)
    if last > first:
        x_of = _scale(first, last, left, right)
        for k in range(5):
            step = first + (last - first) * k / 4
            text = f"{step:.0f}"
            draw.line([(x_of(step), bottom), (x_of(step), bottom + 4)], fill=(120, 120, 120))
            draw.text((x_of(step) - draw.textlength(text, font=font) / 2, bottom + 6), text, fill="black", font=font)
        draw.text(((left + right) // 2 - 12, bottom + 16), "step", fill=(80, 80, 80), font=font)
