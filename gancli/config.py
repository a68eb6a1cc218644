"""TrainConfig: every setting of a training run, from command-line flag to checkpoint metadata."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

# Pixel values live in [-1, 1] inside every model (tanh output); stored in checkpoints so that
# a future normalisation change cannot be misread.
NORMALISATION = "[-1,1]"

DEFAULT_EPOCHS = 5


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Field names match the `gancli train` options."""

    arch: str = "dcgan"  # a name from gancli.models.ARCHITECTURES
    dataset: str = "mnist"  # a dataset name or an image-folder path
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 100
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    upsample: str = "transpose"  # dcgan generator: "transpose" (Radford et al.) or "nearest" (Keras variant)
    generator_width: int = 64  # dcgan: channels of the last generator stage (ngf)
    discriminator_width: int = 64  # dcgan: channels of the first discriminator stage (ndf)
    phase_steps: int = 0  # progan: steps per fade-in or stable phase; 0 = spread the run's steps over the schedule
    attention_size: int = 0  # sagan: feature-map side of the self-attention blocks; 0 = half the image side
    scale: int = 2  # upscalers: how many times larger the output is
    content_weight: float = 100.0  # upgan: weight of the L1 content loss next to the adversarial loss
    batch_size: int = 32  # measured: on the 10k bundled digits, 5 epochs at 32 beat 64 (more steps, same images)
    epochs: int | None = None  # training length: epochs or steps; neither means DEFAULT_EPOCHS
    steps: int | None = None
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    precision: str = "fp32"  # "fp32" or "bf16" (autocast of the forward passes, where the hardware has bf16)
    loss: str = "bce"  # "bce" (non-saturating), "hinge" or "wgan-gp"; see gancli.losses
    spectral_norm: bool = False  # spectral normalisation of D's layers (D's BatchNorm is then dropped)
    ema: float = 0.0  # decay of the generator's exponential moving average; 0 trains without one
    augment: str = ""  # DiffAugment policies for D's inputs, e.g. "color,translation,cutout"; "" for none
    eval_every: int | None = None  # steps between sample-quality evaluations during training (FID etc.)
    eval_n: int = 2000  # images generated per evaluation during training
    eval_classifier: str = ""  # the classifier checkpoint those evaluations use
    sample_every: int = 200
    checkpoint_every: int = 1000
    keep: int | None = None  # periodic checkpoints to keep (newest first); None keeps all
    data_dir: str = ""
    normalisation: str = NORMALISATION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build a config from stored values; missing fields keep their defaults, unknown ones are ignored."""
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        if "class_names" in kept:
            kept["class_names"] = tuple(kept["class_names"])
        return cls(**kept)

    def with_changes(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)
