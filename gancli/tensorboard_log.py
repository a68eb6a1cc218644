"""TensorBoard, where GAN users watch runs: every metrics row's numbers and the fixed-z sample grid.

A reporter that wraps the live display: the loop tells it about rows as it tells the display about
progress, so the loop knows nothing of TensorBoard. Event files go to RUN/tensorboard/; view them with
`tensorboard --logdir runs`. Needs the optional `tensorboard` package (pip install "gancli[tensorboard]").
"""

from __future__ import annotations

from pathlib import Path

from gancli.errors import UsageError

FOLDER = "tensorboard"


def tag(stat) -> str:
    """'losses/loss_D', 'FID/FID': the plot panel (as in metrics.png) groups the charts."""
    group = (stat.panel or "scores").split(" (")[0].replace(" ", "_")
    return f"{group}/{stat.name}"


class TensorBoardLog:
    def __init__(self, inner):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UsageError('--tensorboard needs the tensorboard package: pip install "gancli[tensorboard]" (or pip install tensorboard).') from None
        self.inner, self.writer_class, self.writer, self.tags = inner, SummaryWriter, None, {}

    def start(self, plan) -> None:
        self.inner.start(plan)
        self.tags = {s.name: tag(s) for s in plan.stats} | {"images_per_s": "speed/images_per_s"}
        # A resumed run: events a crashed session wrote after the checkpoint's step are hidden.
        purge = plan.start_step + 1 if plan.start_step else None
        self.writer = self.writer_class(str(Path(plan.run_dir) / FOLDER), purge_step=purge)

    def update(self, progress) -> None:
        self.inner.update(progress)

    def row(self, step: int, row: dict, sample: Path | None) -> None:
        import numpy as np
        from PIL import Image

        self.inner.row(step, row, sample)
        for name, value in row.items():
            if name in self.tags and value is not None:
                self.writer.add_scalar(self.tags[name], value, step)
        if sample is not None:  # rows between grids carry numbers only
            with Image.open(sample) as picture:
                self.writer.add_image("samples", np.asarray(picture.convert("RGB")), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
