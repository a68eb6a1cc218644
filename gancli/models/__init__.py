"""The architecture registry: the one place that says what an --arch is and how it differs.

Each entry names its model module and classes (built from a TrainConfig), the task that trains it
(gancli/training/tasks/<task>.py, or a module path of a plugin's own), its kind, its capabilities, the
options only it uses, its training defaults and an optional schedule hook. A Kind says what a
checkpoint holds and everything that follows from that: which weights the loader builds, how to use
it, what to run next, whether it trains in several processes. The loop, the CLI, the loader and the
run files ask the entry and its kind, never a name.

Other packages add architectures and kinds through the entry-point group `gancli.architectures`:
each entry point names an Architecture, a Kind, or a list of them (see docs/plugins.md). The
registry itself imports no torch, so the command line can list architectures instantly.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from gancli.errors import UsageError

@dataclass(frozen=True)
class Kind:
    """What a checkpoint holds, and what follows from it. Texts are formatted with {run}, {path}, {arch}, {dataset}, {root}."""

    name: str
    weights: tuple[str, ...]  # checkpoint groups of the network load() builds, preferred first (a moving average first)
    use: str  # how a checkpoint of this kind is used: a refusal elsewhere names it
    next_step: str  # printed when its training ends
    missing: str  # no run of this kind under runs/: how to get one
    processes: bool = False  # may train in several processes (--processes, torchrun)
    short_run_note: bool = False  # warn when a new run is too short to show anything
    loads: bool = True  # gancli.load() opens it (the classifier is eval's instrument, not a model to use)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("generator", ("generator_ema", "generator"), "use it with gancli sample -c {path} or gancli.load()",
             "gancli sample --checkpoint {run} --n 25 --seed 0 --out samples.png",
             "No trained runs under '{root}/'; train one with 'gancli train mnist' or pass --checkpoint.", processes=True, short_run_note=True),
        Kind("upscaler", ("generator",), "use it with gancli upscale --model {path} or sample --upscale {path}",
             "gancli upscale IMAGES... --model {run} --outdir upscaled/   (or --benchmark {dataset})",
             "No trained upscaler runs under '{root}/'; train one with 'gancli train mnist --arch srcnn' or pass --model."),
        Kind("classifier", ("classifier",), "use it with gancli eval --classifier {path}",
             "gancli eval RUN --classifier {run}   (RUN: a generator trained on {dataset})",
             "No classifier trained on {dataset} under '{root}/'; train one with 'gancli train {dataset} --arch classifier --epochs 2' "
             "(about 20 s per epoch of 10,000 images on 2 CPU cores), pass --classifier, or use --extractor inception.", loads=False),
    )  # fmt: skip
}


# Options of the adversarial recipe: every GAN takes them, upscalers and the classifier do not.
RECIPE_OPTIONS = ("loss", "spectral_norm", "r1", "ema", "ema_warmup", "augment", "init", "freeze_d", "eval_every")


@dataclass(frozen=True)
class Architecture:
    name: str
    module: str  # import path of the module with the classes
    summary: str  # one line, shown in `gancli train --help`
    image_sizes: tuple[int, ...] | None  # None: any size from 4 to max_image_size
    task: str = "gan"  # the training task: a module of gancli.training.tasks, or a full module path (plugins)
    kind: str = "generator"  # what a checkpoint holds: a name in KINDS ("generator": z -> image, "upscaler", "classifier")
    conditional: bool = False  # needs class labels: G(z, y), D(x, y)
    truncation: bool = False  # `sample --truncation`: styles pulled towards the average
    mixing: bool = False  # `interpolate --mix`: style mixing between seeds
    growth: bool = False  # grows through resolutions while training (G and D are models.progan.Progressive)
    options: tuple[str, ...] = ()  # TrainConfig fields that only some architectures use, and this one does
    defaults: tuple[tuple[str, object], ...] = ()  # TrainConfig values it trains with unless told otherwise
    schedule: str | None = None  # a function of `module`: (config, total_steps, notices) -> config, run before training
    generator: str = "Generator"
    discriminator: str | None = "Discriminator"  # None: trained without one
    max_image_size: int = 128  # for image_sizes None

    def classes(self):
        module = importlib.import_module(self.module)
        return getattr(module, self.generator), getattr(module, self.discriminator) if self.discriminator else None

    def prepare(self, config, total_steps: int, notices: list[str]):
        """The config this architecture trains with for a run of `total_steps` (progan fits its growth into it)."""
        if self.schedule is None:
            return config
        return getattr(importlib.import_module(self.module), self.schedule)(config, total_steps, notices)

    def takes(self, option: str) -> bool:
        return option in self.options or option not in OWNED_OPTIONS

    @property
    def kind_of(self) -> Kind:
        return KINDS[self.kind]

    @property
    def task_module(self) -> str:
        return self.task if "." in self.task else f"gancli.training.tasks.{self.task}"


DCGAN_SIZES = (28, 32, 64, 128)
_GAN = RECIPE_OPTIONS

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("gan", "gancli.models.mlp", "classic fully-connected GAN (Goodfellow et al., 2014)", None, options=_GAN),
        Architecture("dcgan", "gancli.models.dcgan", "deep convolutional GAN (Radford et al., 2015)", DCGAN_SIZES,
                     options=_GAN + ("upsample", "residual", "discriminator_norm")),
        Architecture("sagan", "gancli.models.sagan", "self-attention GAN (Zhang et al., 2019): hinge loss, spectral norm, two learning rates",
                     DCGAN_SIZES, options=_GAN + ("attention_size",),
                     defaults=(("loss", "hinge"), ("lr_g", 1e-4), ("lr_d", 4e-4), ("beta1", 0.0), ("beta2", 0.9))),
        Architecture("progan", "gancli.models.progan", "progressive growing GAN (Karras et al., 2018): 4x4 upwards, fade-in, WGAN-GP",
                     (32, 64, 128), growth=True, options=_GAN + ("phase_steps",), schedule="spread_growth",
                     defaults=(("loss", "wgan-gp"), ("lr_g", 1e-3), ("lr_d", 1e-3), ("beta1", 0.0), ("beta2", 0.99))),
        Architecture("stylegan", "gancli.models.stylegan", "style-based generator (Karras et al., 2019-20): mapping network, modulated convolutions, noise, style mixing",
                     (32, 64, 128), truncation=True, mixing=True, options=_GAN,
                     defaults=(("lr_g", 1e-3), ("lr_d", 1e-3), ("beta1", 0.0), ("beta2", 0.99))),
        Architecture("cgan", "gancli.models.conditional", "conditional fully-connected GAN (Mirza & Osindero, 2014)", None,
                     conditional=True, options=_GAN, generator="CGANGenerator", discriminator="CGANDiscriminator"),
        Architecture("cdcgan", "gancli.models.conditional", "conditional DCGAN", DCGAN_SIZES,
                     conditional=True, options=_GAN + ("upsample", "discriminator_norm"), generator="CDCGANGenerator", discriminator="CDCGANDiscriminator"),
        Architecture("srcnn", "gancli.models.srcnn", "SRCNN super-resolution (Dong et al., 2014)", None, task="upscaler", kind="upscaler",
                     options=("scale",), generator="Upscaler", discriminator=None, max_image_size=512),
        Architecture("upgan", "gancli.models.upgan", "adversarial up-sampler: a multi-stage GAN's second stage", None, task="upscaler",
                     kind="upscaler", options=("scale", "content_weight"), generator="Upscaler", max_image_size=512),
        Architecture("classifier", "gancli.models.classifier", "dataset classifier: offline features and labels for gancli eval", None,
                     task="classifier", kind="classifier", generator="Classifier", discriminator=None),
    )  # fmt: skip
}

PLUGIN_GROUP = "gancli.architectures"
PLUGIN_ERRORS: list[str] = []  # plugins that could not be read: said by `gancli --version`, never fatal


def register(*entries) -> None:
    """Add Architectures and Kinds (or lists of them) to the registry: what a plugin's entry point names."""
    for entry in entries:
        if isinstance(entry, (list, tuple)):
            register(*entry)
        elif isinstance(entry, Kind):
            KINDS[entry.name] = entry
        elif isinstance(entry, Architecture):
            if entry.name in ARCHITECTURES and ARCHITECTURES[entry.name] != entry:
                raise ValueError(f"architecture {entry.name!r} is already registered")
            ARCHITECTURES[entry.name] = entry
        else:
            raise TypeError(f"a plugin entry is an Architecture, a Kind or a list of them, not {type(entry).__name__}")
    for arch in ARCHITECTURES.values():
        if arch.kind not in KINDS:
            raise ValueError(f"architecture {arch.name!r} is of kind {arch.kind!r}, which no plugin registers")
    global OWNED_OPTIONS
    OWNED_OPTIONS = _owned()


def _plugin_points():
    """The entry points of PLUGIN_GROUP, read from each installed distribution's entry_points.txt on sys.path.

    importlib.metadata.entry_points() parses every distribution's metadata first: 73 ms with the ~200 of the CUDA
    build, on every start of gancli, `--help` included. A plain read of the small files that name the group is the
    same answer (the first distribution on sys.path wins a name, as importlib.metadata does) in a few milliseconds.
    """
    import configparser
    import glob
    import os
    import sys
    from importlib.metadata import EntryPoint

    seen = set()
    for folder in sys.path:
        for path in sorted(glob.glob(os.path.join(folder or ".", "*.dist-info", "entry_points.txt"))
                           + glob.glob(os.path.join(folder or ".", "*.egg-info", "entry_points.txt"))):  # fmt: skip
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if f"[{PLUGIN_GROUP}]" not in text:
                continue
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            parser.optionxform = str  # entry point names keep their case
            try:
                parser.read_string(text)
            except configparser.Error as exc:
                PLUGIN_ERRORS.append(f"{path}: unreadable entry points ({exc})")
                continue
            for name, value in parser[PLUGIN_GROUP].items():
                if name not in seen:
                    seen.add(name)
                    yield EntryPoint(name, value.strip(), PLUGIN_GROUP)


def _load_plugins() -> None:
    for point in _plugin_points():
        try:
            register(point.load())
        except Exception as exc:  # a broken plugin must not break gancli: it is named, and left out
            PLUGIN_ERRORS.append(f"{point.name} ({point.value}): {type(exc).__name__}: {exc}")


def _owned() -> tuple[str, ...]:
    """Options some architectures use and others refuse: the union of every entry's `options`."""
    return tuple(dict.fromkeys(o for a in ARCHITECTURES.values() for o in a.options))


OWNED_OPTIONS = _owned()
_load_plugins()


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UsageError(f"Unknown architecture '{name}'; use one of: {', '.join(ARCHITECTURES)} (or install the plugin package that provides it).") from None


def owners(option: str) -> list[str]:
    """The architectures that use `option`."""
    return [a.name for a in ARCHITECTURES.values() if option in a.options]


def check_image_size(arch: str, image_size: int) -> None:
    """Raise a UsageError naming the valid sizes when `arch` cannot work at `image_size`."""
    spec = get_architecture(arch)
    sizes = spec.image_sizes
    if sizes is not None and image_size not in sizes:
        valid = ", ".join(str(s) for s in sizes[:-1]) + f" or {sizes[-1]}"
        raise UsageError(f"--image-size {image_size} is not supported by {arch}; use {valid}.")
    if sizes is None and not 4 <= image_size <= spec.max_image_size:
        raise UsageError(f"--image-size {image_size} is out of range for {arch}; use 4 to {spec.max_image_size}.")


def check_classes(arch: str, num_classes: int, dataset: str) -> None:
    """Conditional architectures need at least two classes in the data."""
    if get_architecture(arch).conditional and num_classes < 2:
        raise UsageError(
            f"--arch {arch} needs labelled data, but '{dataset}' has {num_classes} classes; use mnist, "
            "fashion-mnist, cifar10 or a folder with one sub-folder per class (or an unconditional --arch)."
        )


def build_generator(config):
    """The generator described by `config` (a TrainConfig), freshly initialised."""
    check_image_size(config.arch, config.image_size)
    return get_architecture(config.arch).classes()[0](config)


def build_discriminator(config):
    """The discriminator for `config`, or None for architectures trained without one."""
    check_image_size(config.arch, config.image_size)
    cls = get_architecture(config.arch).classes()[1]
    if cls is None:
        return None
    from gancli.models.normalisation import adapt_discriminator

    return adapt_discriminator(cls(config), config)


MAX_PARAMETERS = 200_000_000  # G and D together: about 3.2 GB to train with Adam in fp32
SAFE_WIDTH, SAFE_LATENT = 128, 512


def check_model_size(config) -> None:
    """Refuse settings (widths, latent size, image size) whose networks would not fit a normal machine.

    The networks are built on the meta device: shapes only, no memory. Its first use imports much of
    PyTorch (about 2 s), so configs within SAFE_WIDTH and SAFE_LATENT (at most 106M parameters in every
    family at any size it supports: dcgan at 128 px) skip the check.
    """
    import torch

    if max(config.generator_width, config.discriminator_width) <= SAFE_WIDTH and config.latent_dim <= SAFE_LATENT:
        return

    with torch.device("meta"):
        nets = (build_generator(config), build_discriminator(config))
    count = sum(p.numel() for net in nets if net is not None for p in net.parameters())
    if count > MAX_PARAMETERS:
        raise UsageError(
            f"These settings make a {count / 1e6:,.0f}M-parameter {config.arch} (about {count * 16 / 1e9:,.1f} GB to train), over the "
            f"limit of {MAX_PARAMETERS // 1_000_000}M; lower --generator-width, --discriminator-width, --latent-dim or --image-size."
        )
