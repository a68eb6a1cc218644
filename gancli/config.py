"""TrainConfig: every setting of a training run, from command-line flag to checkpoint metadata,
and what a stored config may hold (gancli.train.plan turns `gancli train`'s options into one)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

from gancli.errors import GancliError

# Pixel values live in [-1, 1] inside every model (tanh output); stored in checkpoints so that
# a future normalisation change cannot be misread.
NORMALISATION = "[-1,1]"

DEFAULT_EPOCHS = 5
MIN_DEFAULT_STEPS = 1000  # the default length's floor: small folders still train long enough to show something
SHORT_RUN_STEPS = 200  # runs shorter than this are told they will show little
MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed takes
EMA_DECAY = 0.999  # --ema
AUGMENT_POLICY = "color,translation,cutout"  # --augment: DiffAugment's three policies (gancli.train.augment)

# Options that describe the model or its data: fixed by the checkpoint when resuming.
MODEL_OPTIONS = ("dataset", "arch", "image_size", "upsample", "latent_dim", "generator_width", "discriminator_width",
                 "scale", "loss", "spectral_norm", "ema", "augment", "attention_size", "phase_steps")  # fmt: skip


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
    epochs: int | None = None  # training length: epochs or steps; neither means DEFAULT_EPOCHS (at least MIN_DEFAULT_STEPS)
    steps: int | None = None
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    precision: str = "fp32"  # "fp32" or "bf16" (autocast of the forward passes, where the hardware has bf16)
    loss: str = "bce"  # "bce" (non-saturating), "hinge" or "wgan-gp"; see gancli.train.losses
    spectral_norm: bool = False  # spectral normalisation of D's layers (D's BatchNorm is then dropped)
    # ...but its shift kept as a per-channel bias: without one, D's bias-free layers made D(a x) = a D(x).
    spectral_norm_bias: bool = True
    label_projection: bool = True  # conditional D: + <embedding(y), pooled features> (Miyato & Koyama, 2018)
    label_mismatch: bool = True  # conditional D also rejects real images given a wrong label (Reed et al., 2016)
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
        """Build a config from stored values; missing fields keep their defaults, unknown ones are ignored.

        Every value is checked in type and range first (a checkpoint may come from anyone): a
        ValueError names the field, its value and what was expected.
        """
        if not isinstance(values, dict):
            raise ValueError(f"the config is a JSON {type(values).__name__}, not an object")
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        for name, value in kept.items():
            check_field(name, value)
        kept = BEFORE_FIELD | kept
        if "class_names" in kept:
            kept["class_names"] = tuple(kept["class_names"])
        config = cls(**kept)
        if len(config.class_names) != config.num_classes:
            raise ValueError(f"num_classes is {config.num_classes} but class_names has {len(config.class_names)} names")
        return config

    def with_changes(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)


# --- what a stored config may hold ----------------------------------------------------------------

_INT = {  # field: (lowest, highest); the highest keep a crafted file from asking for terabytes
    "image_size": (4, 512), "channels": (1, 3), "latent_dim": (1, 4096), "num_classes": (0, 10_000),
    "generator_width": (1, 1024), "discriminator_width": (1, 1024), "phase_steps": (0, 10**9), "attention_size": (0, 512),
    "scale": (2, 4), "batch_size": (1, 65_536), "epochs": (1, 10**9), "steps": (1, 10**12), "seed": (0, MAX_SEED),
    "eval_every": (1, 10**12), "eval_n": (10, 10**6), "sample_every": (1, 10**12), "checkpoint_every": (1, 10**12), "keep": (1, 10**6),
}  # fmt: skip
_FLOAT = {"content_weight": (0.0, 1e6), "lr_g": (0.0, 1.0), "lr_d": (0.0, 1.0), "beta1": (0.0, 1.0), "beta2": (0.0, 1.0), "ema": (0.0, 1.0)}
_CHOICES = {"upsample": ("transpose", "nearest"), "precision": ("fp32", "bf16"), "loss": ("bce", "hinge", "wgan-gp"), "normalisation": (NORMALISATION,)}
SPECTRAL_NORM_BETAS = {"beta1": 0.0, "beta2": 0.9}  # unless --beta1 / --beta2 or the architecture's own defaults say otherwise

# Fields added after checkpoints existed whose default changes the model: a config stored before one
# existed is read with the value its model was trained with, not the new default.
BEFORE_FIELD = {"spectral_norm_bias": False, "label_projection": False, "label_mismatch": False}
_OPTIONAL = ("epochs", "steps", "eval_every", "keep")
_TEXT = ("arch", "dataset", "augment", "eval_classifier", "data_dir")


def check_field(name: str, value) -> None:
    """Raise ValueError unless `value` is a valid stored value of TrainConfig field `name`."""
    import math

    if value is None and name in _OPTIONAL:
        return
    if name in _INT:
        low, high = _INT[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high or (name == "channels" and value == 2):
            raise ValueError(f"{name} is {value!r}; expected a whole number from {low} to {high}")
    elif name in _FLOAT:
        low, high = _FLOAT[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{name} is {value!r}; expected a number from {low} to {high}")
    elif name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError(f"{name} is {value!r}; expected one of {', '.join(_CHOICES[name])}")
    elif name in _TEXT and (not isinstance(value, str) or len(value) > 4096 or any(ord(c) < 32 or ord(c) == 127 for c in value)):
        raise ValueError(f"{name} is {value!r}; expected text")
    elif name in ("spectral_norm", *BEFORE_FIELD) and not isinstance(value, bool):
        raise ValueError(f"{name} is {value!r}; expected true or false")
    elif name == "class_names":
        if not isinstance(value, (list, tuple)) or len(value) > _INT["num_classes"][1]:
            raise ValueError(f"class_names is {type(value).__name__}; expected a list of names")
        for class_name in value:
            try:
                check_component(class_name, "class_names")
            except GancliError as exc:
                raise ValueError(str(exc).rstrip(".")) from None

def check_component(name: str, origin: str = "") -> None:
    """Raise unless `name` is one plain file or folder name (class names become folders)."""
    bad = (not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or len(name.encode("utf-8", "surrogateescape")) > 255
           or any(ord(c) < 32 or ord(c) == 127 for c in name))  # fmt: skip
    if bad:
        where = f" in {origin}" if origin else ""
        raise GancliError(f"{name!r}{where} cannot be a file name (empty, '.', '..', a slash, a control character or too long); rename it.")
