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


def check_folder(run_dir: Path) -> None:
    """Refuse, before training, a RUN/tensorboard that is a link (events would land outside the run), a file, or unwritable."""
    import os
    import tempfile

    from gancli.store.files import refuse_links

    folder = Path(run_dir) / FOLDER
    refuse_links([folder])
    if os.path.lexists(folder) and not folder.is_dir():
        raise UsageError(f"'{folder}' is a file, not a folder; move it away so --tensorboard can write its events there.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(f"--tensorboard cannot write to '{folder}' ({exc.strerror or exc}); make it writable or drop --tensorboard.") from exc


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
        check_folder(plan.run_dir)
        self.writer = self.writer_class(str(Path(plan.run_dir) / FOLDER), purge_step=purge)

    def update(self, progress) -> None:
        self.inner.update(progress)

    def work(self, total: float, what: str):
        return self.inner.work(total, what)

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
