"""The architecture registry: the one place that maps an --arch name to its model module.

Each entry names a module and its generator and discriminator classes, both built from a
TrainConfig. Conditional ones take labels: G(z, y), D(x, y). The registry itself imports no
torch, so the command line can list architectures instantly.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from gancli.errors import UsageError


@dataclass(frozen=True)
class Architecture:
    name: str
    module: str  # import path of the module with the two classes
    summary: str
    image_sizes: tuple[int, ...] | None  # None: any size
    conditional: bool = False  # needs class labels: G(z, y), D(x, y)
    generator: str = "Generator"
    discriminator: str | None = "Discriminator"  # None: trained without one (srcnn)
    kind: str = "generator"  # "generator": z -> image; "upscaler": low-res -> high-res image; "classifier": image -> class
    max_image_size: int = 128  # for image_sizes None
    defaults: tuple[tuple[str, object], ...] = ()  # TrainConfig values this architecture trains with unless told otherwise

    def classes(self):
        module = importlib.import_module(self.module)
        return getattr(module, self.generator), getattr(module, self.discriminator) if self.discriminator else None


DCGAN_SIZES = (28, 32, 64, 128)

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("gan", "gancli.models.mlp", "classic fully-connected GAN (Goodfellow et al., 2014)", None),
        Architecture("dcgan", "gancli.models.dcgan", "deep convolutional GAN (Radford et al., 2015)", DCGAN_SIZES),
        Architecture("sagan", "gancli.models.sagan", "self-attention GAN (Zhang et al., 2019): hinge loss, spectral norm, two learning rates",
                     DCGAN_SIZES, defaults=(("loss", "hinge"), ("lr_g", 1e-4), ("lr_d", 4e-4), ("beta1", 0.0), ("beta2", 0.9))),
        Architecture("progan", "gancli.models.progan", "progressive growing GAN (Karras et al., 2018): 4x4 upwards, fade-in, WGAN-GP",
                     (32, 64, 128), defaults=(("loss", "wgan-gp"), ("lr_g", 1e-3), ("lr_d", 1e-3), ("beta1", 0.0), ("beta2", 0.99))),
        Architecture("stylegan", "gancli.models.stylegan", "style-based generator (Karras et al., 2019-20): mapping network, modulated convolutions, noise, style mixing",
                     (32, 64, 128), defaults=(("lr_g", 1e-3), ("lr_d", 1e-3), ("beta1", 0.0), ("beta2", 0.99))),
        Architecture("cgan", "gancli.models.conditional", "conditional fully-connected GAN (Mirza & Osindero, 2014)", None,
                     conditional=True, generator="CGANGenerator", discriminator="CGANDiscriminator"),
        Architecture("cdcgan", "gancli.models.conditional", "conditional DCGAN", DCGAN_SIZES,
                     conditional=True, generator="CDCGANGenerator", discriminator="CDCGANDiscriminator"),
        Architecture("srcnn", "gancli.models.srcnn", "SRCNN super-resolution (Dong et al., 2014)", None,
                     generator="Upscaler", discriminator=None, kind="upscaler", max_image_size=512),
        Architecture("upgan", "gancli.models.upgan", "adversarial up-sampler: a multi-stage GAN's second stage", None,
                     generator="Upscaler", kind="upscaler", max_image_size=512),
        Architecture("classifier", "gancli.models.classifier", "dataset classifier: offline features and labels for gancli eval", None,
                     generator="Classifier", discriminator=None, kind="classifier"),
    )  # fmt: skip
}



def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UsageError(f"Unknown architecture '{name}'; use one of: {', '.join(ARCHITECTURES)}.") from None


def check_image_size(arch: str, image_size: int) -> None:
    """Raise a UsageError naming the valid sizes when `arch` cannot work at `image_size`."""
    spec = get_architecture(arch)
    sizes = spec.image_sizes
    if sizes is not None and image_size not in sizes:
        valid = ", ".join(str(s) for s in sizes[:-1]) + f" or {sizes[-1]}"
        raise UsageError(f"--image-size {image_size} is not supported by {arch}; use {valid}.")
    if sizes is None and not 4 <= image_size <= spec.max_image_size:
        raise UsageError(f"--image-size {image_size} is out of range for {arch}; use 4 to {spec.max_image_size}.")


def is_upscaler(arch: str) -> bool:
    return get_architecture(arch).kind == "upscaler"


def is_classifier(arch: str) -> bool:
    return get_architecture(arch).kind == "classifier"


def is_conditional(arch: str) -> bool:
    return get_architecture(arch).conditional


def check_classes(arch: str, num_classes: int, dataset: str) -> None:
    """Conditional architectures need at least two classes in the data."""
    if is_conditional(arch) and num_classes < 2:
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
