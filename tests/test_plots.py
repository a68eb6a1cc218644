"""metrics.png: drawn by matplotlib when installed, by Pillow otherwise; both name what they drew, and neither
prints KID-sized values as 0.00."""

from __future__ import annotations

import csv

from PIL import Image

from gancli.training.tasks.base import Stat
from gancli.training.visuals import plot_engine, plotted_series, tick_labels, write_metrics_plot

STATS = (Stat("loss_D", panel="losses"), Stat("loss_G", panel="losses"), Stat("KID", panel="KID"), Stat("D_x", panel="D", bounds=(0.0, 1.0)))


def _metrics(path, rows=40):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "loss_D", "loss_G", "KID", "D_x"])
        for i in range(rows):
            writer.writerow([10 * i, 1.0 / (i + 1), 0.5 + 0.01 * i, 0.0012 + 0.00001 * i if i % 5 == 0 else "", 0.5])


def test_both_engines_draw_every_panel_and_say_what_they_drew(tmp_path, monkeypatch):
    _metrics(tmp_path / "metrics.csv")
    for engine in ("pillow", "matplotlib"):
        monkeypatch.setenv("GANCLI_PLOTS", engine)
        assert plot_engine() == engine  # the test extra installs matplotlib
        out = tmp_path / f"{engine}.png"
        drawn = write_metrics_plot(tmp_path / "metrics.csv", out, STATS)
        assert drawn == {"losses": ["loss_D", "loss_G"], "KID": ["KID"], "D": ["D_x"]} == plotted_series(out)
        with Image.open(out) as image:
            assert image.size[0] == 800 and image.size[1] >= 3 * 200
            assert ("matplotlib" in image.info.get("Software", "")) == (engine == "matplotlib")


def test_tick_labels_keep_the_digits_that_tell_ticks_apart():
    assert tick_labels([0.0012, 0.00125, 0.0013, 0.00135, 0.0014]) == ["0.0012", "0.00125", "0.0013", "0.00135", "0.0014"]
    assert tick_labels([0.0, 0.25, 0.5, 0.75, 1.0]) == ["0", "0.25", "0.5", "0.75", "1"]
    assert tick_labels([100.0, 350.0, 600.0, 850.0, 1100.0]) == ["100", "350", "600", "850", "1100"]
    assert tick_labels([-0.5, -0.25, 0.0, 0.25, 0.5]) == ["-0.5", "-0.25", "0", "0.25", "0.5"]
