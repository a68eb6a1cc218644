"""gancli from Python: load a trained run and make images, the same images the commands write.

    import gancli
    g = gancli.load("runs/digits")            # a run folder or a checkpoint file; EMA weights when the run has them
    x = g.sample(seeds=[0, 1, 2])             # uint8 (N, C, H, W): each seed's exact image, as `sample --seeds`
    gancli.save_grid(x, "grid.png")           # the bytes `gancli sample --seeds 0-2 --out grid.png` writes

Nothing here prints: results are returned, failures raise gancli.errors.GancliError (UsageError for
arguments that cannot work), as the commands would say them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from gancli.errors import UsageError


class Model:
    """A trained generator or upscaler, ready to use. `config` holds every setting it was trained with."""

    def __init__(self, opened):
        self._model = opened
        self.net, self.config, self.arch = opened.net, opened.config, opened.arch
        self.path, self.step, self.weights, self.device = opened.path, opened.step, opened.weights, opened.device

    def __repr__(self) -> str:
        return f"<gancli {self.config.arch} {self.arch.kind}, step {self.step}, {self.weights} weights, from {self.path}>"

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.config.class_names)

    def sample(self, n: int | None = None, seed: int = 0, seeds: list[int] | None = None, label: int | str | None = None,
               truncation: float | None = None) -> torch.Tensor:  # fmt: skip
        """Images as uint8 (N, C, H, W), as `gancli sample` makes them.

        Args:
            n: how many images of the stream of `seed` (default 64; with label="all", 8 per class).
            seeds: instead, each seed's own image (the same pixels whatever else is asked).
            label: conditional models: a class name or index, or "all" (a row per class).
            truncation: style-based generators: pull styles towards the average (1: off).
        """
        from gancli.use import sampling

        self._need("generator", "sample")
        if seeds is not None and n is not None:
            raise UsageError("seeds= names every image itself; give n= or seeds=, not both.")
        for s in seeds if seeds is not None else [seed]:
            _check_seed(s)
        class_index = self._class(label)
        with self._truncated(truncation):
            if seeds is not None:
                return sampling.seed_images(self.net, self.config, list(seeds), self.device, class_index)
            count = sampling.image_count(self.config, n, class_index, None, None)
            labels = sampling.stream_labels(self.config, count, class_index) if self.arch.conditional else None
            return torch.cat(list(sampling.generate(self.net, self.config, count, seed, self.device, labels)))

    def interpolate(self, seeds: list[int], frames: int = 8, method: str = "slerp", loop: bool = False,
                    label: int | str | None = None, labels: list[int | str] | None = None) -> torch.Tensor:  # fmt: skip
        """The walk through the seeds' latents as uint8 (segments * frames, C, H, W), segment by segment, both ends
        of every segment included: the grid `gancli interpolate` writes (save it with save_grid(x, path, nrow=frames)).

        Conditional models hold `label` (default: the first class) or move through `labels`, one per seed.
        """
        from gancli.use import sampling
        from gancli.use.labels import parse_label
        from gancli.use.latent import INTERPOLATORS

        self._need("generator", "interpolate")
        if len(seeds) < 2:
            raise UsageError("interpolate needs at least two seeds, e.g. [1, 2].")
        if method not in INTERPOLATORS:
            raise UsageError(f"method={method!r}; use one of: {', '.join(INTERPOLATORS)}.")
        if frames < 2:
            raise UsageError("frames= is images per segment, both ends included: at least 2.")
        for s in seeds:
            _check_seed(s)
        keyframes = list(seeds) + [seeds[0]] if loop else list(seeds)
        classes = None
        if self.arch.conditional:
            if labels is not None and len(labels) != len(seeds):
                raise UsageError(f"labels= gives {len(labels)} classes for {len(seeds)} seeds; give one class per seed.")
            names = self.config.class_names
            classes = [parse_label(str(x), names, "labels") for x in labels] if labels is not None else [parse_label(str(label), names) if label is not None else 0] * len(seeds)
            classes = classes + [classes[0]] if loop else classes
        elif label is not None or labels is not None:
            raise UsageError(f"'{self.path}' is unconditional; drop label=/labels=.")
        return sampling.walk(self.net, self.config, keyframes, frames, method, self.device, classes)

    def upscale(self, images: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """uint8 images (N, C, H, W) or one (C, H, W) enlarged by this upscaler, as `gancli upscale` does
        (a power of the model's factor repeats it: a x2 model gives 4 and 8)."""
        import math

        from gancli.use.upscaling import upscale_image

        self._need("upscaler", "upscale")
        factor = self.config.scale
        passes = round(math.log(scale or factor, factor))
        if factor**passes != (scale or factor):
            raise UsageError(f"scale={scale} cannot be reached with a x{factor} model; use a power of {factor}.")
        if images.dtype != torch.uint8 or images.dim() not in (3, 4):
            raise UsageError("upscale() takes uint8 images (N, C, H, W) or (C, H, W), as sample() returns them.")
        one = images.dim() == 3
        out = [upscale_image(self.net, self.config.channels, image, passes, factor, self.device) for image in (images.unsqueeze(0) if one else images)]
        return out[0] if one else torch.stack(out)

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Run the network once on uint8 images (N, C, H, W): uint8 images back when it makes images (an upscaler's
        single pass, a plugin's image-to-image model), else its raw output."""
        from gancli.data.images import to_uint8

        batch = _as_batch(images)
        with torch.no_grad():
            out = self.net(batch.to(self.device).float() / 127.5 - 1)
        return to_uint8(out) if out.dim() == 4 and out.shape[1] in (1, 3) else out.cpu()

    @property
    def kind(self) -> str:
        """What the checkpoint holds: "generator", "upscaler", or a plugin's kind."""
        return self.arch.kind

    def _need(self, kind: str, what: str) -> None:
        if self.arch.kind != kind:
            raise UsageError(f"'{self.path}' is {_a(self.arch.kind)} ({self.config.arch}); {what}() needs {_a(kind)}.")

    def _class(self, label):
        from gancli.use.labels import ALL, parse_label

        if label is None:
            return None
        if not self.arch.conditional:
            raise UsageError(f"'{self.path}' is unconditional; drop label= or train with --arch cdcgan or cgan.")
        return ALL if str(label).lower() == ALL else parse_label(str(label), self.config.class_names, "label")

    @contextlib.contextmanager
    def _truncated(self, truncation: float | None):
        if truncation is None:
            yield
            return
        if not self.arch.truncation:
            raise UsageError(f"truncation= needs a style-based generator; '{self.path}' is {self.config.arch}.")
        if not 0.0 <= truncation <= 2.0:
            raise UsageError(f"truncation={truncation} is out of range; use 0 to 2 (1: off).")
        before = self.net.truncation
        self.net.truncation = truncation
        try:
            yield
        finally:
            self.net.truncation = before


def load(path: str | Path | None = None, ema: bool = True, device: str = "auto") -> Model:
    """A trained model from a run folder or checkpoint file (None: the newest generator run under runs/): a generator,
    an upscaler, a classifier or a plugin's kind; `kind` says which.

    With `ema` (the default) a run trained with --ema gives its moving-average weights, as the commands do.
    """
    from gancli.models import KINDS
    from gancli.store import checkpoints, runs
    from gancli.use.loading import open_model

    if path is not None:
        kind = KINDS[checkpoints.read_header(runs.resolve_checkpoint(Path(path))).kind]
        if not kind.loads:
            raise UsageError(f"'{path}' is {_a(kind.name)}; load() opens the models that make or change images ({kind.use.format(path=path)}).")
    return Model(open_model(Path(path) if path is not None else None, None, device, ema))


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, padding: int = 2) -> Path:
    """Write uint8 images (N, C, H, W) as one grid PNG, as the commands do (atomically, never through a link); its path."""
    from gancli.store.files import check_output
    from gancli.data.images import check_writable
    from gancli.data.images import save_grid as write

    path = Path(path)
    check_output(path, "path")
    check_writable(path.parent)
    write(_as_batch(images), path, nrow=nrow, padding=padding)
    return path


def to_pil(images: torch.Tensor, nrow: int | None = None, padding: int = 2):
    """A Pillow image of uint8 images (N, C, H, W) laid out as a grid, or of one image (C, H, W): Jupyter shows it inline."""
    from gancli.data.images import Grid
    from gancli.data.images import to_pil as picture

    batch = _as_batch(images)
    grid = Grid(len(batch), tuple(batch.shape[1:]), nrow, padding)
    grid.add(batch)
    return picture(grid.canvas)


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _check_seed(seed) -> None:
    from gancli.config import MAX_SEED

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"Seed {seed!r} is not a whole number from 0 to {MAX_SEED}.")


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() not in (3, 4) or images.shape[-3] not in (1, 3):
        raise UsageError("Give uint8 images (N, C, H, W) or one (C, H, W) with 1 or 3 channels, as sample() returns them.")
    return images.unsqueeze(0) if images.dim() == 3 else images
