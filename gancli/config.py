"""TrainConfig: every setting of a training run, from command-line flag to checkpoint metadata,
and what a stored config may hold (gancli.training.plan turns `gancli train`'s options into one)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace

from gancli.errors import GancliError

# Pixel values live in [-1, 1] inside every model (tanh output); stored in checkpoints so that
# a future normalisation change cannot be misread.
NORMALISATION = "[-1,1]"

DEFAULT_EPOCHS = 5
MIN_DEFAULT_STEPS = 1000  # the default length's floor: small folders still train long enough to show something
SHORT_RUN_STEPS = 200  # runs shorter than this are told they will show little
MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed takes
EMA_DECAY = 0.999  # --ema
R1_INTERVAL = 16  # --r1: steps between penalties (lazy regularisation, Karras et al., 2020)
AUGMENT_POLICY = "color,translation,cutout"  # --augment diff and ada: DiffAugment's three policies (gancli.training.augment)

MODEL, TRAINING, RECIPE, EVALUATION, OUTPUT = "Model", "Training", "Recipe", "Evaluation while training", "Output"  # help panels


@dataclass(frozen=True)
class Option:
    """How one TrainConfig field is set, checked and kept: the one declaration that `gancli train`'s flags,
    the checks of stored configs, resuming, recipes and `--help` all read."""

    help: str = ""  # the flag's help; "" for fields no flag sets (they follow the data, or old checkpoints)
    panel: str = TRAINING
    low: float | None = None  # range of the value, stored or typed; a crafted file cannot ask for terabytes
    high: float | None = None
    flag_low: float | None = None  # where the flag is stricter than a stored value may be
    open: str = ""  # "high" or "both": the flag's range leaves out that end (learning rates, Adam betas)
    choices: tuple[str, ...] = ()
    resume: str = "fixed"  # "fixed": the checkpoint's value holds and a different flag is refused (why: `why`);
    # "announced": the flag changes the resumed run, which says so; "taken": the flag changes it quietly (length, cadence, paths)
    why: str = ""
    unset: bool = False  # the flag defaults to unset (None): the data, the architecture or the config decides
    switch: bool = False  # a --name/--no-name flag; the field stores what it turns on (a decay, a policy)
    path: bool = False  # the flag takes a path, stored as text
    argument: bool = False  # a positional argument, not an option
    metavar: str | None = None  # the help's word for the value (default: by type: N, X, TEXT, PATH)
    flag_value: str | None = None  # choices: the value of the flag typed alone (--augment means --augment diff)
    older: tuple[tuple[object, object], ...] = ()  # (stored value, what it means now) for configs written before a change


def option(default, **spec):
    """A TrainConfig field and its Option, declared together."""
    return field(default=default, metadata={"option": Option(**spec)})


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Field names match the `gancli train` options."""

    # Each field with its Option: the order here is the order of `gancli train --help` within each panel.
    arch: str = option("dcgan", help="Model family: one of the architectures listed below.", panel=MODEL, metavar="ARCH")
    dataset: str = option("mnist", help="mnist, fashion-mnist, cifar10, or a folder of images (sub-folders are classes).", argument=True)
    image_size: int = option(28, help="Image side in pixels (default: the dataset's own, 64 for folders).", panel=MODEL, low=4, high=512, unset=True)
    channels: int = option(1, low=1, high=3)  # follows the data
    latent_dim: int = option(100, help="Length of the latent vector z.", panel=MODEL, low=1, high=4096)
    num_classes: int = option(0, low=0, high=10_000)  # follows the data
    class_names: tuple[str, ...] = option(())  # follows the data
    upsample: str = option("transpose", help="dcgan, cdcgan generator: transposed convolutions or nearest upsample + 5x5 conv.",
                           panel=MODEL, choices=("transpose", "nearest"))  # Radford et al., or the Keras variant
    # SN-GAN / BigGAN blocks: two 3x3 convolutions and a shortcut per stage; D without BatchNorm
    residual: bool = option(False, help="dcgan: residual blocks in G and D (SN-GAN, BigGAN) instead of one (transposed) convolution per stage.",
                            panel=MODEL, switch=True)
    generator_width: int = option(64, help="Channels of the generator's last stage (ngf).", panel=MODEL, low=1, high=1024)
    discriminator_width: int = option(64, help="Channels of the discriminator's first stage (ndf).", panel=MODEL, low=1, high=1024)
    phase_steps: int = option(0, help="progan: steps per fade-in or stable phase (0: spread over the run).", panel=MODEL, low=0, high=10**9)
    attention_size: int = option(0, help="sagan: feature-map side of the self-attention blocks (0: half the image side).", panel=MODEL,
                                 low=0, high=512)
    scale: int = option(2, help="Upscalers (srcnn, upgan): output size / input size, 2 to 4.", panel=MODEL, low=2, high=4)
    content_weight: float = option(100.0, help="upgan: weight of the L1 content loss next to the adversarial loss.", panel=MODEL,
                                   low=0.0, high=1e6, resume="announced")
    # measured: on the 10k bundled digits, 5 epochs at 32 beat 64 (more steps, same images)
    batch_size: int = option(32, help="Images per step (32 gives small datasets more updates per epoch).", low=1, flag_low=2, high=65_536,
                             resume="announced")
    # the length: epochs or steps; neither means DEFAULT_EPOCHS (at least MIN_DEFAULT_STEPS)
    epochs: int | None = option(None, help="Passes over the data (default: 5, and at least 1,000 steps, unless --steps).", low=1, high=10**9,
                                resume="taken", unset=True)
    steps: int | None = option(None, help="Total training steps (overrides --epochs).", low=1, high=10**12, resume="taken", unset=True)
    lr_g: float = option(2e-4, help="Generator learning rate (Adam).", low=0.0, high=1.0, open="both", resume="announced", metavar="LR")
    lr_d: float = option(2e-4, help="Discriminator learning rate (Adam).", low=0.0, high=1.0, open="both", resume="announced", metavar="LR")
    beta1: float = option(0.5, help="Adam beta1, in [0, 1).", low=0.0, high=1.0, open="high", resume="announced")
    beta2: float = option(0.999, help="Adam beta2, in [0, 1).", low=0.0, high=1.0, open="high", resume="announced")
    seed: int = option(0, help="Seed for weights, data order and noise.", low=0, high=MAX_SEED, why="it fixes the data order and noise",
                       metavar="SEED")
    # autocast of the forward passes, where the hardware has bf16
    precision: str = option("fp32", help="bf16 autocasts forward passes (CPUs with avx512_bf16/AMX, CUDA GPUs).", choices=("fp32", "bf16"),
                            resume="announced")
    loss: str = option("bce", help="Adversarial loss: bce (non-saturating), hinge, or wgan-gp (gradient penalty).", panel=RECIPE,
                       choices=("bce", "hinge", "wgan-gp"))  # gancli.training.losses.LOSSES
    spectral_norm: bool = option(False, help="Spectral normalisation in D (its BatchNorm becomes a bias); Adam betas 0 / 0.9 unless given.",
                                 panel=RECIPE, switch=True)
    discriminator_norm: str = option("batch", help="dcgan, cdcgan: D's normalisation: batch (DCGAN's BatchNorm) or none (a per-channel "
                                     "bias instead, as under spectral norm).", panel=RECIPE, choices=("batch", "none"))
    # lazy regularisation (StyleGAN2): the penalty times R1_INTERVAL, every R1_INTERVAL steps
    r1: float = option(0.0, help=f"R1 penalty gamma/2 |grad D(x)|^2 on real images, every {R1_INTERVAL} steps (0: off).", panel=RECIPE,
                       low=0.0, high=1e6, resume="announced", metavar="GAMMA")
    # ...but its shift kept as a per-channel bias: without one, D's bias-free layers made D(a x) = a D(x).
    spectral_norm_bias: bool = option(True)
    label_projection: bool = option(True)  # conditional D: + <embedding(y), pooled features> (Miyato & Koyama, 2018)
    label_mismatch: bool = option(True)  # conditional D also rejects real images given a wrong label (Reed et al., 2016)
    # the decay of the generator's exponential moving average; 0 trains without one
    ema: float = option(0.0, help=f"Keep a moving average of G's weights (decay {EMA_DECAY}); sample/eval use it unless --no-ema.",
                        panel=RECIPE, low=0.0, high=1.0, switch=True)
    # the moving average's half-life is at most this fraction of the steps so far (StyleGAN2's ema_rampup); 0: the
    # decay ramps up as min(decay, (1 + n) / (10 + n)), as before this field existed
    ema_warmup: float = option(0.0, help="With --ema: cap the average's half-life at this fraction of the steps so far (0: the (1+n)/(10+n) "
                               "ramp).", panel=RECIPE, low=0.0, high=1.0, metavar="X")
    # on everything D sees, real and fake: none; DiffAugment at full strength; or ADA's adaptive probability p
    augment: str = option("none", help="Augment what D sees: diff (DiffAugment, what --augment alone means) or ada (its strength adapts to "
                          "D's overfitting): for small datasets.", panel=RECIPE, choices=("none", "diff", "ada"), flag_value="diff",
                          older=(("", "none"), (AUGMENT_POLICY, "diff")))  # stored as DiffAugment's policy before ada existed
    init: str = option("", help="Start G and D from this GAN run's weights: same architecture and image size; other data allowed.",
                       panel=RECIPE, path=True, metavar="RUN", unset=True, why="it is where the weights started")
    freeze_d: int = option(0, help="With --init: keep the first N blocks of D as they were (FreezeD).", panel=RECIPE, low=0, high=1000,
                           metavar="N")
    eval_every: int | None = option(None, help="Steps between FID/KID/precision/recall measurements (needs --eval-classifier); keeps "
                                    "best.safetensors by FID.", panel=EVALUATION, low=1, high=10**12, resume="taken", unset=True)
    eval_n: int = option(2000, help="Images generated per --eval-every measurement.", panel=EVALUATION, low=10, high=10**6, resume="taken")
    eval_classifier: str = option("", help="Classifier run or checkpoint for --eval-every (gancli train DATA --arch classifier).",
                                  panel=EVALUATION, resume="taken", unset=True, path=True, metavar="RUN")
    sample_every: int = option(200, help="Steps between sample grids, metrics rows and last.safetensors (default: 200).", panel=OUTPUT,
                               low=1, high=10**12, resume="taken", unset=True)
    checkpoint_every: int = option(1000, help="Steps between kept periodic checkpoints (default: 1000).", panel=OUTPUT, low=1, high=10**12,
                                   resume="taken", unset=True)
    keep: int | None = option(None, help="Keep only the newest K periodic checkpoints (default: all).", panel=OUTPUT, low=1, high=10**6,
                              resume="taken", unset=True)
    data_dir: str = option("", help="Where named datasets are found or downloaded (default: ~/.cache/gancli/datasets).", resume="taken",
                           unset=True, path=True, metavar="DIR")
    normalisation: str = option(NORMALISATION, choices=(NORMALISATION,))

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
        kept = {k: dict(OPTIONS[k].older).get(v, v) if OPTIONS[k].older and isinstance(v, str) else v for k, v in values.items() if k in known}
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

SPECTRAL_NORM_BETAS = {"beta1": 0.0, "beta2": 0.9}  # unless --beta1 / --beta2 or the architecture's own defaults say otherwise

# Fields added after checkpoints existed whose default changes the model: a config stored before one
# existed is read with the value its model was trained with, not the new default.
BEFORE_FIELD = {"spectral_norm_bias": False, "label_projection": False, "label_mismatch": False}

OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for f in fields(TrainConfig)}
FLAGS = tuple(name for name, spec in OPTIONS.items() if spec.help)  # the fields `gancli train` sets from its command line
_TYPES = {f.name: f.type.split(" | ")[0].split("[")[0] for f in fields(TrainConfig)}  # "int", "float", "str", "bool", "tuple"


def field_type(name: str) -> str:
    """The field's value type as written in TrainConfig: "int", "float", "str", "bool" or "tuple"."""
    return _TYPES[name]


def flag(name: str) -> str:
    """The command-line spelling of a field: image_size -> --image-size (DATASET for the argument)."""
    return name.upper() if OPTIONS.get(name, Option()).argument else "--" + name.replace("_", "-")


def check_field(name: str, value) -> None:
    """Raise ValueError unless `value` is a valid stored value of TrainConfig field `name`."""
    import math

    spec, kind = OPTIONS[name], field_type(name)
    if value is None and TrainConfig.__dataclass_fields__[name].default is None:
        return
    if kind == "int":
        low, high = int(spec.low), int(spec.high)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high or (name == "channels" and value == 2):
            raise ValueError(f"{name} is {value!r}; expected a whole number from {low} to {high}")
    elif kind == "float":
        low, high = spec.low, spec.high
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{name} is {value!r}; expected a number from {low} to {high}")
    elif spec.choices and value not in spec.choices:
        raise ValueError(f"{name} is {value!r}; expected one of {', '.join(spec.choices)}")
    elif kind == "str" and (not isinstance(value, str) or len(value) > 4096 or any(ord(c) < 32 or ord(c) == 127 for c in value)):
        raise ValueError(f"{name} is {value!r}; expected text")
    elif kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"{name} is {value!r}; expected true or false")
    elif name == "class_names":
        if not isinstance(value, (list, tuple)) or len(value) > OPTIONS["num_classes"].high:
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
