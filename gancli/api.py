"""gancli from Python: the API every command calls. Train a run, load it, make images, score it.

    import gancli
    run = gancli.train("mnist", recipe="quick", outdir="runs/digits")   # the options of `gancli train`
    g = gancli.load("runs/digits")            # a run folder or a checkpoint file; EMA weights when the run has them
    x = g.sample(seeds=[0, 1, 2])             # uint8 (N, C, H, W): each seed's exact image, as `sample --seeds`
    gancli.save_grid(x, "grid.png")           # the bytes `gancli sample --seeds 0-2 --out grid.png` writes

Nothing here prints: results are returned, long jobs report through a `progress(total, what)` context
(yielding advance(amount)) or a training Reporter, and failures raise gancli.errors.GancliError
(UsageError for arguments that cannot work), as the commands would say them.
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
               truncation: float | None = None, upscaler: "Model | None" = None) -> torch.Tensor:  # fmt: skip
        """Images as uint8 (N, C, H, W), as `gancli sample` makes them.

        Args:
            n: how many images of the stream of `seed` (default 64; with label="all", 8 per class).
            seeds: instead, each seed's own image (the same pixels whatever else is asked).
            label: conditional models: a class name or index, or "all" (a row per class).
            truncation: style-based generators: pull styles towards the average (1: off).
            upscaler: an upscaler Model: generate small, then upscale (`sample --upscale`).
        """
        from gancli.use import sampling

        self._need("generator", "sample")
        if seeds is not None and n is not None:
            raise UsageError("seeds= names every image itself; give n= or seeds=, not both.")
        for s in seeds if seeds is not None else [seed]:
            _check_seed(s)
        class_index = self._class(label)
        with self._truncated(truncation):
            generator = self.net if upscaler is None else upscaler._after(self.net)
            if seeds is not None:
                return sampling.seed_images(generator, self.config, list(seeds), self.device, class_index)
            count = sampling.image_count(self.config, n, class_index, None, None)
            labels = sampling.stream_labels(self.config, count, class_index) if self.arch.conditional else None
            return torch.cat(list(sampling.generate(generator, self.config, count, seed, self.device, labels)))

    def interpolate(self, seeds: list, frames: int = 8, method: str = "slerp", loop: bool = False,
                    label: int | str | None = None, labels: list[int | str] | None = None, truncation: float | None = None,
                    pick: list[int] | None = None, force: bool = False) -> torch.Tensor:  # fmt: skip
        """The walk through the seeds' latents as uint8 (segments * frames, C, H, W), segment by segment, both ends
        of every segment included: the grid `gancli interpolate` writes (save it with save_grid(x, path, nrow=frames)),
        and the files of `gancli interpolate --outdir` (frame0000.png ...).

        Each keyframe is a seed or a projected latent (a Latent or its file): a walk between real images. Conditional
        models hold `label` (default: the first class; a latent's own class for it) or move through `labels`, one per
        keyframe; style-based ones take `truncation`. `pick` makes only those images of the walk (indices), the same
        pixels. A latent of another run is refused unless `force`.
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
        values, own = self._keyframes(seeds, force)
        keyframes = values + [values[0]] if loop else values
        classes = None
        if self.arch.conditional:
            if labels is not None and len(labels) != len(seeds):
                raise UsageError(f"labels= gives {len(labels)} classes for {len(seeds)} seeds; give one class per seed.")
            names = self.config.class_names
            held = parse_label(str(label), names) if label is not None else None
            classes = ([parse_label(str(x), names, "labels") for x in labels] if labels is not None
                       else [held if held is not None else c if c is not None else 0 for c in own])  # fmt: skip
            classes = classes + [classes[0]] if loop else classes
        elif label is not None or labels is not None:
            raise UsageError(f"'{self.path}' is unconditional; drop label=/labels=.")
        total = (len(keyframes) - 1) * frames
        if pick is not None and not all(isinstance(k, int) and 0 <= k < total for k in pick):
            raise UsageError(f"pick= holds indices of the walk's {total} images: 0 to {total - 1}.")
        with self._truncated(truncation):
            return sampling.walk(self.net, self.config, keyframes, frames, method, self.device, classes, pick=pick)

    def project(self, images, steps: int = 1000, seed: int = 0, label: int | str | None = None, feature_weight: float = 0.0,
                batch: int = 64, progress=None, classifier: str | Path | None = None):  # fmt: skip
        """The latents that make this generator draw `images` (uint8 (N, C, H, W), or a list of (C, H, W) of any size:
        resized, centre-cropped and converted to the run's channels, `converted` says which), found by `steps` steps of
        gradient descent in batches of `batch`. Conditional runs hold `label`, or try every class and keep the best.
        `feature_weight` adds the run's discriminator features to the pixel loss, or those of `classifier` (a dataset
        classifier run of the same image size) when given. Returns a Projected: `latents`
        (Latent each, with its losses), `targets`, `images` (the reconstructions, as `sample --latent` draws them),
        `psnr` per image, `converted`.
        """
        from gancli.data.folder_cache import silent_work
        from gancli.store.latents import Latent, fingerprint
        from gancli.use import projection

        self._need("generator", "project")
        projection.check_steps(steps)
        _check_seed(seed)
        listed = list(images) if isinstance(images, (list, tuple)) or images.dim() == 4 else [images]
        if not listed:
            raise UsageError("project() needs at least one image.")
        targets, converted = projection.fit_images(listed, self.config.image_size, self.config.channels)
        class_index = self._class(label)
        if class_index == "all":
            raise UsageError('label="all" is for sample(); give one class to project with, or None to try each.')
        labels = None if class_index is None else [int(class_index)] * len(targets)
        if classifier is not None and feature_weight <= 0:
            raise UsageError("A classifier's features enter the loss with a weight: give feature_weight (--feature-weight) above 0 too.")
        discriminator = (self._classifier(Path(classifier)) if classifier is not None else self._discriminator()) if feature_weight > 0 else None
        tries = 1 + (self.config.num_classes / 4 if self.arch.conditional and labels is None else 0)
        with self._truncated(1.0 if self.arch.truncation else None), (progress or silent_work)(len(targets) * tries, "Projecting") as advance:
            found = projection.project(self.net, self.config, targets, self.device, steps, seed, labels, discriminator, feature_weight, batch, advance)
            values = torch.stack([f.value for f in found])
            classes = None if found[0].label is None else [f.label for f in found]
            drawn = projection.render_latents(self.net, values, found[0].space, self.device, classes)
        scores = projection.psnr(drawn, targets)
        mark = fingerprint(self.config)
        latents = [Latent(f.value, f.space, mark, f.label, str(self.path), "", {**f.losses, "psnr": score}) for f, score in zip(found, scores)]
        return projection.Projected(latents, targets, drawn, scores, converted)

    def render(self, latents: list, force: bool = False) -> torch.Tensor:
        """The images of projected latents (Latent objects or their files), as uint8 (N, C, H, W): what
        `gancli sample --latent` draws. A latent of another run is refused unless `force`."""
        from gancli.use import projection

        self._need("generator", "render")
        values, classes = self._keyframes(list(latents), force, seeds=False)
        space = "w+" if values[0].dim() == 2 else "z"
        labels = [c if c is not None else 0 for c in classes] if self.arch.conditional else None
        return projection.render_latents(self.net, torch.stack(values), space, self.device, labels)

    def _keyframes(self, items: list, force: bool, seeds: bool = True) -> tuple[list, list]:
        """Seeds stay seeds; latents (Latent or a path to its file) become their checked values. With their classes."""
        from gancli.store.latents import Latent, check_belongs, load_latent

        values, classes = [], []
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool) and seeds:
                _check_seed(item)
                values.append(item)
                classes.append(None)
                continue
            if isinstance(item, (str, Path)):
                item = load_latent(Path(item))
            if not isinstance(item, Latent):
                raise UsageError(f"{item!r} is not {'a seed or ' if seeds else ''}a latent (a Latent or a .latent.safetensors file).")
            check_belongs(item, self.config, str(self.path), force)
            expected = (self.net.num_styles, self.net.w_average.shape[0]) if item.space == "w+" and hasattr(self.net, "forward_w") else (self.config.latent_dim,)
            if tuple(item.value.shape) != expected:
                raise UsageError(f"'{item.path or item.source}' holds a {item.space} latent of shape {tuple(item.value.shape)}; this run's is {expected}.")
            if item.label is not None and self.arch.conditional and item.label >= self.config.num_classes:
                raise UsageError(f"'{item.path}' asks for class {item.label}; this run has {self.config.num_classes}.")
            values.append(item.value)
            classes.append(item.label if self.arch.conditional else None)
        return values, classes

    def _discriminator(self):
        """The run's discriminator, in eval mode on this model's device (projection's feature term)."""
        from gancli.models import build_discriminator
        from gancli.store import checkpoints

        checkpoint = checkpoints.load_checkpoint(self.path, prefixes=("discriminator",))
        net = build_discriminator(self.config)
        checkpoints.load_state(net, checkpoint, "discriminator")
        for p in net.parameters():
            p.requires_grad_(False)
        return net.to(self.device).eval()

    def _classifier(self, path: Path):
        """A dataset classifier's network, called as projection calls a discriminator (the label is not its input)."""
        from gancli.evaluation.classify import load_classifier
        from gancli.store.runs import resolve_checkpoint

        net, config, _ = load_classifier(resolve_checkpoint(path, "classifier"), self.device)
        if (config.image_size, config.channels) != (self.config.image_size, self.config.channels):
            raise UsageError(f"The classifier sees {config.channels}x{config.image_size}x{config.image_size} images, the run draws "
                             f"{self.config.channels}x{self.config.image_size}x{self.config.image_size}; give one trained on images like the run's.")  # fmt: skip
        for p in net.parameters():
            p.requires_grad_(False)
        return _ImageOnly(net)

    def mix(self, seeds: list[int], mix: int, mix_layer: int | None = None, truncation: float | None = None) -> torch.Tensor:
        """Style-based generators: per seed, its image, its coarse styles with `mix`'s fine ones, and mix's image, as
        uint8 (3 * len(seeds), C, H, W): the grid `gancli interpolate SEEDS --mix MIX` writes (nrow=3)."""
        from gancli.use.export import check_mixing
        from gancli.use import sampling

        self._need("generator", "mix")
        for s in [*seeds, mix]:
            _check_seed(s)
        check_mixing(self, mix_layer)
        with self._truncated(truncation):
            return sampling.style_mixing_grid(self.net, self.config, list(seeds), mix, self.device, mix_layer)

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

    # --- files: what the commands write ----------------------------------------------------------

    def write_samples(self, out: str | Path | None = "samples.png", outdir: str | Path | None = None, *, n: int | None = None,
                      seed: int | None = None, seeds: list[int] | None = None, label: int | str | None = None, per_class: int | None = None,
                      nrow: int | None = None, upscaler: "Model | None" = None, truncation: float | None = None, existing: str = "refuse",
                      progress=None, latents: list | None = None, force: bool = False):  # fmt: skip
        """`gancli sample`: a grid PNG at `out`, or one PNG per image in `outdir` (with `per_class`, an ImageFolder tree).

        `existing` says what to do with files of the same names in `outdir`: "refuse" (the default), "overwrite" or
        "skip" (continues a stopped export). Returns a gancli.use.export.Written; a Ctrl-C during an `outdir` export
        raises ExportStopped, which says how many whole files were written. `latents` (files, folders of them, or
        Latent objects) draws each latent's image instead (`sample --latent`; `force`: from another run too).
        """
        from gancli.use.export import write_latents, write_samples

        self._need("generator", "write_samples")
        if latents is not None:
            if any(v is not None for v in (n, seed, seeds, label, per_class, upscaler, truncation)):
                raise UsageError("--latent draws each latent's own image; drop --n, --seed, --seeds, --label, --per-class, --upscale and --truncation.")
            return write_latents(self, list(latents), Path(out) if outdir is None else None, Path(outdir) if outdir is not None else None, nrow,
                                 existing, force)  # fmt: skip
        with self._truncated(truncation):
            generator = self.net if upscaler is None else upscaler._after(self.net)
            return write_samples(self, generator, Path(out) if outdir is None else None, Path(outdir) if outdir is not None else None, n=n,
                                 seed=seed, seeds=seeds, label=label, per_class=per_class, nrow=nrow, existing=existing, progress=progress)  # fmt: skip

    def write_walk(self, seeds: list[int], out: str | Path | None = "walk.png", gif: str | Path | None = None, video: str | Path | None = None,
                   *, outdir: str | Path | None = None, frames: int = 8, gif_frames: int = 24, fps: float = 12.0, method: str = "slerp",
                   loop: bool = False, label: int | str | None = None, labels: list[int | str] | str | None = None,
                   truncation: float | None = None, existing: str = "refuse", force: bool = False) -> list[str]:  # fmt: skip
        """`gancli interpolate`: the walk's grid (a row per segment) at `out`, one PNG per grid image in `outdir`
        (frame0000.png ...; `existing` as in write_samples), and a GIF and an MP4 when named; a line per file or folder."""
        from gancli.use.export import write_walk

        self._need("generator", "write_walk")
        paths = [Path(p) if p is not None else None for p in (out, gif, video, outdir)]
        values, own = self._keyframes(list(seeds), force)
        with self._truncated(truncation):
            names = [str(k) if isinstance(k, int) else Path(str(getattr(k, "path", None) or k)).name for k in seeds]
            return write_walk(self, values, *paths, frames=frames, gif_frames=gif_frames, fps=fps, method=method, loop=loop, label=label,
                              labels=labels, existing=existing, own=own, shown_as=names)  # fmt: skip

    def write_projections(self, inputs: list, outdir: str | Path = "projected", *, steps: int = 1000, seed: int = 0, label=None,
                          feature_weight: float = 0.0, batch: int = 64, existing: str = "refuse", progress=None, classifier=None):  # fmt: skip
        """`gancli project`: for each image file (files, folders, globs), NAME.latent.safetensors and NAME.png (target and
        reconstruction side by side) in `outdir`. Returns (the Projected, notes on converted images)."""
        from gancli.use.export import write_projections

        self._need("generator", "write_projections")
        return write_projections(self, list(inputs), Path(outdir), steps=steps, seed=seed, label=label, feature_weight=feature_weight,
                                 batch=batch, existing=existing, progress=progress, classifier=classifier)  # fmt: skip

    def write_mixing(self, seeds: list[int], mix: int, out: str | Path = "mixing.png", mix_layer: int | None = None,
                     truncation: float | None = None) -> str:  # fmt: skip
        """`gancli interpolate --mix`: style mixing of each seed with `mix`, a row of three images per seed."""
        from gancli.use.export import write_mixing

        self._need("generator", "write_mixing")
        with self._truncated(truncation):
            return write_mixing(self, list(seeds), mix, mix_layer, Path(out))

    def _after(self, generator):
        """`generator` followed by this upscaler: sample --upscale (generate small, then upscale)."""
        from gancli.use.upscaling import UpscaledGenerator

        self._need("upscaler", "upscaler=")
        return UpscaledGenerator(generator, self.net, self.config.channels, self.config.scale)

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
            raise UsageError(f"--truncation needs a style-based generator; '{self.path}' is {self.config.arch} (train one with --arch stylegan).")
        if not 0.0 <= truncation <= 2.0:
            raise UsageError(f"truncation={truncation} is out of range; use 0 to 2 (1: off).")
        before = self.net.truncation
        self.net.truncation = truncation
        try:
            yield
        finally:
            self.net.truncation = before


class _ImageOnly(torch.nn.Module):
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, *_condition) -> torch.Tensor:
        return self.net(x)


def load(path: str | Path | None = None, ema: bool = True, device: str = "auto", kind: str | None = None) -> Model:
    """A trained model from a run folder or checkpoint file (None: the newest generator run under runs/): a generator,
    an upscaler, a classifier or a plugin's kind; `kind` says which.

    With `ema` (the default) a run trained with --ema gives its moving-average weights, as the commands do.
    With `kind` ("generator", "upscaler"), another kind is refused, naming how it is used; with path None,
    the newest run of that kind is loaded.
    """
    from gancli.models import KINDS
    from gancli.store import checkpoints, runs
    from gancli.use.loading import open_model

    if path is not None and kind is None:
        found = KINDS[checkpoints.read_header(runs.resolve_checkpoint(Path(path))).kind]
        if not found.loads:
            raise UsageError(f"'{path}' is {_a(found.name)}; load() opens the models that make or change images ({found.use.format(path=path)}).")
    return Model(open_model(Path(path) if path is not None else None, kind, device, ema))


# --- training and scores ----------------------------------------------------------------------------


def train(dataset: str | None = None, *, reporter=None, **options):
    """Train a run, as `gancli train` does: the same options by their parameter names (arch="dcgan", steps=1500,
    recipe="quick", outdir="runs/digits", resume="runs/digits", ...). Returns the run's TrainingResult
    (run_dir, checkpoint, step, last_row, ...). `reporter` (gancli.training.reports.Reporter) hears every step.
    """
    from gancli.training.start import train_options

    unknown = sorted(set(options) - set(train_options()))
    if unknown:
        raise UsageError(f"train() has no option {unknown[0]!r}; the options are those of gancli train: {', '.join(sorted(train_options()))}.")
    given = set(options) | ({"dataset"} if dataset is not None else set())
    return train_with(train_options() | options | {"dataset": dataset}, given, reporter)


def train_with(options: dict, given: set[str], reporter=None):
    """train() from every option's value and the names given (what the command line typed); the command calls this."""
    from gancli.training.start import start

    return start(options, given, reporter)


def evaluate(run: str | Path | None = None, *, n: int = 10_000, classifier: str | Path | None = None, extractor: str = "classifier",
             inception_weights: str | Path | None = None, seed: int = 0, ema: bool = True, data_dir: str | Path | None = None,
             device: str = "auto", force: bool = False, threads: int | None = None, save: bool = True, progress=None):  # fmt: skip
    """Score a generator as `gancli eval` does: FID, KID, precision/recall and class coverage against the real data,
    with the real-data floor. Appended to the run's eval.json unless save=False. Returns an Evaluation (.scores, .floor)."""
    from gancli.data.datasets import trust_data_dir
    from gancli.data.folder_cache import silent_work
    from gancli.evaluation.evaluate import evaluate as scored
    from gancli.evaluation.evaluate import save_record
    from gancli.evaluation.features import open_extractor

    if threads is not None:
        torch.set_num_threads(threads)
    trust_data_dir(Path(data_dir) if data_dir is not None else None)
    model = load(run, ema=ema, device=device, kind="generator")
    config = model.config.with_changes(data_dir=str(data_dir)) if data_dir is not None else model.config
    features = open_extractor(extractor, config.dataset, Path(classifier) if classifier else None, Path(inception_weights) if inception_weights else None,
                              model.device, force, Path(config.data_dir) if config.data_dir else None)  # fmt: skip
    with (progress or silent_work)(n, f"Generating and scoring {n:,} images") as advance:
        result = scored(model.net, config, features, n, seed, model.device, config.data_dir or None, advance)
    result.model = model
    return save_record(model, result, n, seed) if save else result


def usefulness(run: str | Path | None = None, *, real: str | Path | None = None, test: str | Path | None = None, per_class: int | None = None,
               steps: int | None = None, seeds: int = 1, ema: bool = True, data_dir: str | Path | None = None, device: str = "auto",
               threads: int | None = None, save: bool = True, progress=None):  # fmt: skip
    """Whether a conditional run's images help a classifier, as `gancli eval --usefulness` measures it: gancli's classifier
    trained on (a) the real labelled images (`real`, default the run's data), (b) `per_class` synthetic images per class
    (default: as many as the real data has), (c) both; each tested on held-out real images (`test`, default the named
    dataset's test split), with the same `steps` and seed, for `seeds` seeds. Appended to the run's eval.json unless
    save=False. Returns a Usefulness (.accuracy per case and seed, .class_accuracy, .change)."""
    from gancli.data.datasets import trust_data_dir
    from gancli.data.folder_cache import silent_work
    from gancli.evaluation import usefulness as useful

    if threads is not None:
        torch.set_num_threads(threads)
    trust_data_dir(Path(data_dir) if data_dir is not None else None)
    model = load(run, ema=ema, device=device, kind="generator")
    if not model.arch.conditional:
        raise UsageError(f"--usefulness needs a conditional run (cgan, cdcgan): {model.config.arch} draws images without labels, "
                         "so there is nothing to train a classifier on.")  # fmt: skip
    train_set, test_set, real_from, test_from = useful.labelled_sets(model.config, None if real is None else str(real),
                                                                     None if test is None else str(test), data_dir)  # fmt: skip
    per_class = per_class or max(1, round(len(train_set[0]) / model.config.num_classes))
    steps = steps or useful.DEFAULT_STEPS
    with (progress or silent_work)(3 * steps * seeds, f"Training the classifier 3 x {seeds} times") as advance:
        result = useful.measure(lambda k, n, seed: model.sample(n=n, seed=seed, label=k), model.config, train_set, test_set, per_class,
                                steps, seeds, model.device, advance)  # fmt: skip
    result.real_from, result.test_from, result.model = real_from, test_from, model
    if save:
        useful.save(model, result)
    return result


# --- files of images -------------------------------------------------------------------------------


def explorer(runs: list[str | Path] | None = None, *, runs_dir: str | Path = "runs", upscaler: str | Path | None = None,
             host: str = "127.0.0.1", port: int = 0, device: str = "auto", ema: bool = True, latents: list[str | Path] | None = None):
    """A web page over trained generators, as `gancli explore` serves it: an Explorer bound to host:port (0: a free
    port) whose `url` is known at once. Call serve_forever() (Ctrl-C stops it), or use it in a `with` block, which
    serves from a thread until the block ends.

    Args:
        runs: run folders or checkpoint files; None offers every run under `runs_dir`, including ones that appear later.
        upscaler: an upscaler run whose images the page shows next to each generated one.
        latents: folders of projected latents (gancli project): each run shows its own beside its seeds.
    """
    from gancli.device import resolve_device
    from gancli.explore.gallery import Gallery
    from gancli.explore.server import Explorer

    if not runs and not Path(runs_dir).is_dir():
        raise UsageError(f"There is no '{runs_dir}' folder to offer runs from; give run folders, or --runs DIR.")
    missing = [str(r) for r in runs or [] if not Path(r).exists()]
    if missing:
        raise UsageError(f"'{missing[0]}' does not exist; give run folders or checkpoint files.")
    gallery = Gallery(load, [Path(r) for r in runs or []], Path(runs_dir), Path(upscaler) if upscaler is not None else None,
                      str(resolve_device(device)), ema, latents=[Path(d) for d in latents or []])
    return Explorer(gallery, host, port)


def upscale_files(inputs: list[str | Path], outdir: str | Path = "upscaled", model: str | Path | Model | None = None, method: str = "model",
                  scale: int | None = None, existing: str = "refuse", device: str = "auto", progress=None):  # fmt: skip
    """`gancli upscale`: image files, folders or glob patterns enlarged into `outdir` under their own names, by a trained
    upscaler (`model`: a run, a checkpoint or a loaded Model; None: the newest upscaler run) or "bicubic"/"lanczos".
    Returns (plan, written, kept): plan.scale and plan.source say how."""
    from gancli.device import resolve_device
    from gancli.use.export import check_existing_policy
    from gancli.use.upscaling import plan_upscale, upscale_paths

    check_existing_policy(existing)
    plan = plan_upscale(_upscaler(model, method, device), method, scale)
    written, kept = upscale_paths(plan, [str(i) for i in inputs], Path(outdir), existing, resolve_device(device), progress)
    return plan, written, kept


def benchmark_upscaler(model: str | Path | Model | None, source: str, scale: int | None = None, data_dir: str | Path | None = None,
                       limit: int | None = None, device: str = "auto"):  # fmt: skip
    """`gancli upscale --benchmark`: downscale `source` images (a folder, or a named dataset's test split), restore them with
    the model and with bicubic; returns (plan, scores: method -> {"PSNR", "SSIM"}, images used, what they are)."""
    from gancli.use.upscaling import plan_upscale, run_benchmark

    plan = plan_upscale(_upscaler(model, "model", device), "model", scale)
    scores, count, what = run_benchmark(plan, source, Path(data_dir) if data_dir is not None else None, limit)
    return plan, scores, count, what


def _upscaler(model, method: str, device: str) -> Model | None:
    if isinstance(model, Model) or (method != "model" and model is None):
        return model
    if method != "model":
        raise UsageError(f"--model goes with --method model; drop it to use {method}.")
    return load(model, device=device, kind="upscaler")


def decode_folder(folder: str | Path, image_size: int = 64, workers: int | None = None, progress=None):
    """`gancli data`: decode a folder of images once into gancli's cache (what training reads); the Decoded cache entry."""
    from gancli.data.datasets import check_dataset, list_images
    from gancli.data.folder_cache import decoded_folder

    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"'{folder}' is not a folder; give a folder of images.")
    check_dataset(str(folder))
    paths = list_images(folder)
    if not paths:
        raise UsageError(f"No images found in '{folder}'; gancli reads .png, .jpg, .jpeg, .webp and .bmp files.")
    return decoded_folder(folder, paths, image_size, workers, progress=progress)


def grid(images: list[str | Path], out: str | Path = "grid.png", nrow: int | None = None, padding: int = 2) -> tuple[int, tuple, tuple]:
    """`gancli grid`: image files, folders or globs in one grid PNG (cells follow the first image); (count, cell, first image size)."""
    from gancli.data.images import check_writable, expand_image_paths, grid_of_files
    from gancli.store.files import check_output, refuse_overwriting_inputs

    out = Path(out)
    paths = expand_image_paths([str(i) for i in images])
    refuse_overwriting_inputs([out], paths)
    check_output(out)
    check_writable(out.parent)
    cell, first = grid_of_files(paths, out, nrow=nrow, padding=padding)
    return len(paths), cell, first


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


def png_bytes(image: torch.Tensor) -> bytes:
    """One uint8 image (C, H, W) as PNG bytes: the file `gancli sample --seeds S --outdir DIR` writes for it."""
    from gancli.data.images import png_bytes as encode

    batch = _as_batch(image)
    if len(batch) != 1:
        raise UsageError("png_bytes() encodes one image (C, H, W); use save_grid() for several.")
    return encode(batch[0])


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
