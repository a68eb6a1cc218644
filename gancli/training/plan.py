"""From `gancli train`'s options to a TrainConfig, a run folder and the checkpoint to resume.

plan_training() is the one place that turns the options into a config: range checks, the
architecture's options and defaults, and what may not change when resuming. fit_to_data() and
training_length() finish the config once the data is loaded.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from gancli.config import DEFAULT_EPOCHS, EMA_DECAY, FLAGS, MIN_DEFAULT_STEPS, OPTIONS, SPECTRAL_NORM_BETAS, TrainConfig, flag
from gancli.errors import GancliError, UsageError


# What a resumed run does with each flag, from the table (gancli.config.OPTIONS).
FIXED = tuple(name for name in FLAGS if OPTIONS[name].resume == "fixed")  # the checkpoint's value holds
ANNOUNCED = tuple(name for name in FLAGS if OPTIONS[name].resume == "announced")  # changes the run, said
TAKEN = tuple(name for name in FLAGS if OPTIONS[name].resume == "taken")  # changes the run quietly


def plan_training(options: dict, given: set[str]):
    """(config, run directory, checkpoint to resume or None) for `gancli train`.

    Args:
        options: every `gancli train` option by its parameter name (Enums allowed).
        given: the names the user actually typed; the others hold defaults.
    """
    from gancli.store import checkpoints
    from gancli.store import runs
    from gancli.data.datasets import trust_data_dir
    from gancli.data.images import check_writable
    from gancli.training.recipes import apply_recipe

    from gancli.data.datasets import dataset_name

    o = {k: v.value if isinstance(v, Enum) else v for k, v in options.items()}
    if o.get("dataset") is not None:
        o["dataset"] = dataset_name(o["dataset"])  # MNIST is mnist
    trust_data_dir(o["data_dir"])  # typed by the user: downloads may go there
    o, given, recipe_notices = apply_recipe(o.get("recipe"), o, given)
    _check_ranges(o)
    if o["eval_every"] is not None and o["eval_classifier"] is None:
        raise UsageError(f"--eval-every needs --eval-classifier RUN: train one with 'gancli train {o['dataset'] or 'DATA'} --arch classifier'.")
    if o["eval_classifier"] is not None:
        o["eval_classifier"] = runs.resolve_checkpoint(o["eval_classifier"])
    if o["init"] is not None:
        o["init"] = runs.resolve_checkpoint(o["init"]).resolve()  # recorded in the run: where its weights came from
    values = _stored_values(o)
    # the quiet changes: the length (one of epochs and steps replaces the other), cadence, evaluation, where the data is now
    changes = {name: values[name] for name in TAKEN if o[name] is not None and (name != "eval_n" or name in given)}
    if o["epochs"] or o["steps"]:
        changes |= {"epochs": o["epochs"], "steps": o["steps"]}
    if o["resume"] is not None:
        checkpoint = checkpoints.load_checkpoint(runs.resolve_checkpoint(o["resume"]))
        for name in FIXED:
            stored = getattr(checkpoint.config, name)
            if name in given and values[name] != stored:
                why = f": {OPTIONS[name].why}" if OPTIONS[name].why else ""
                raise UsageError(f"{flag(name)} cannot change when resuming (the checkpoint has {stored!r}){why}; drop it or start a new run.")
        source = runs.run_dir_of(checkpoint.path)
        loose = checkpoint.path.parent.name != runs.CHECKPOINTS and not runs.is_gancli_run(source)  # a file in a folder of the user's
        run_dir = o["outdir"] or (runs.default_run_dir(checkpoint.config.dataset, checkpoint.config.arch) if loose else source)
        if o["outdir"] is not None and Path(run_dir).resolve() != source.resolve() and runs.holds_run(run_dir):
            raise UsageError(f"--outdir '{run_dir}' already holds a run; resuming into it would overwrite it. Drop --outdir to continue in '{source}', or name a new folder.")
        if loose and Path(run_dir).resolve() == source.resolve():
            raise UsageError(f"'{source}' is not a gancli run folder, so its files would be overwritten; resume into a new --outdir.")
        config, notices = _resumed_config(checkpoint.config, values, given, changes)
        if loose and o["outdir"] is None:
            notices.insert(0, f"'{checkpoint.path}' is not inside a run folder: the resumed run writes to the new folder '{run_dir}'.")
        check_writable(run_dir)
        return config, run_dir, checkpoint, notices
    config = _new_config(o, given, values, changes)
    run_dir = o["outdir"] or runs.default_run_dir(config.dataset, config.arch)
    notices = list(recipe_notices)
    if runs.abandoned_run(run_dir):
        notices.append(f"'{run_dir}' held a run that stopped before its first checkpoint; starting anew in its place.")
    elif runs.holds_run(run_dir) and runs.last_checkpoint_path(run_dir).is_file():
        raise UsageError(f"'{run_dir}' already holds a run; continue it with --resume {run_dir} or choose another --outdir.")
    elif runs.holds_run(run_dir):
        raise UsageError(f"'{run_dir}' already holds a run's files (config.json, metrics.csv or checkpoints/) but no checkpoint to resume; choose another --outdir.")
    check_writable(run_dir)
    if config.spectral_norm and not {"beta1", "beta2"} & given and (config.beta1, config.beta2) == tuple(SPECTRAL_NORM_BETAS.values()):
        notices.append("--spectral-norm trains with Adam betas 0 / 0.9 (SN-GAN's; measured better than 0.5 / 0.999); --beta1 and --beta2 choose others.")
    return config, run_dir, None, notices


def _resumed_config(stored: TrainConfig, values: dict, given: set[str], changes: dict) -> tuple[TrainConfig, list[str]]:
    applied = {name: values[name] for name in ANNOUNCED if name in given and values[name] != getattr(stored, name)}
    notices = [f"Resuming with {', '.join(f'{flag(k)} {v} (was {getattr(stored, k)})' for k, v in applied.items())}: "
               "the run continues differently from an uninterrupted one."] if applied else []  # fmt: skip
    return stored.with_changes(**changes, **applied), notices


def _check_ranges(o: dict) -> None:
    """The ranges with an open end (learning rates, Adam betas); the flags check the closed ones as they are read."""
    if o["epochs"] is not None and o["steps"] is not None:
        raise UsageError("Give --epochs or --steps, not both.")
    for name in FLAGS:
        spec, value = OPTIONS[name], o[name]
        if not spec.open or value is None:
            continue
        above = value > spec.low if spec.open == "both" else value >= spec.low
        if not (above and value < spec.high):
            lowest = f"above {spec.low:g}" if spec.open == "both" else f"from {spec.low:g}"
            raise UsageError(f"{flag(name)} {value} is out of range; use a value {lowest} and below {spec.high:g}"
                             + (f", e.g. {TrainConfig.__dataclass_fields__[name].default:g}." if spec.open == "both" else "."))  # fmt: skip


def _stored_values(o: dict) -> dict:
    """Every flag's value as TrainConfig stores it (switches become a decay and a policy, paths text); None where unset."""
    values = {name: o[name] for name in FLAGS}
    values |= dict(ema=EMA_DECAY if o["ema"] else 0.0)
    if isinstance(o["augment"], bool):  # gancli.train(augment=True), as before ada
        values["augment"] = "diff" if o["augment"] else "none"
    return values | {name: str(o[name]) for name in FLAGS if OPTIONS[name].path and o[name] is not None}


def _new_config(o: dict, given: set[str], values: dict, changes: dict) -> TrainConfig:
    from gancli.data.datasets import check_dataset, native_image_size
    from gancli.models import OWNED_OPTIONS, RECIPE_OPTIONS, check_image_size, get_architecture, owners

    if o["dataset"] is None:
        raise UsageError("Missing DATASET: give mnist, fashion-mnist, cifar10 or a folder of images (or --resume RUN).")
    check_dataset(o["dataset"])
    if values["init"]:  # the network's shape follows the run it starts from
        given = given | _from_init(o, values, given)
    elif o["freeze_d"]:
        raise UsageError("--freeze-d keeps the first blocks of D from the run given with --init; add --init RUN, or drop --freeze-d.")
    arch = get_architecture(o["arch"])
    size = o["image_size"] or native_image_size(o["dataset"])
    check_image_size(arch.name, size)
    refused = [name for name in OWNED_OPTIONS if name in given and not arch.takes(name)]
    recipe = [name for name in RECIPE_OPTIONS if name in refused]
    if recipe:
        verb, them = ("applies", "it") if len(recipe) == 1 else ("apply", "them")
        raise UsageError(f"{', '.join(flag(n) for n in recipe)} {verb} to GANs, not to --arch {arch.name}; drop {them}.")
    if refused:
        raise UsageError(f"{flag(refused[0])} is for --arch {', '.join(owners(refused[0]))}, not {arch.name}; drop it.")
    if "scale" in arch.options and size < 2 * o["scale"]:
        raise UsageError(f"--image-size {size} is too small to learn x{o['scale']} upscaling; use at least {2 * o['scale']}.")
    config = TrainConfig(**{k: v for k, v in values.items() if v is not None and k not in TAKEN} | changes | {"image_size": size})
    config = config.with_changes(**{k: v for k, v in arch.defaults if k not in given})  # the arch's own defaults
    if config.spectral_norm:  # SN-GAN's betas: with Adam's usual 0.5 / 0.999, DCGAN + SN kept fewer classes (docs/recipes.md)
        config = config.with_changes(**{k: v for k, v in SPECTRAL_NORM_BETAS.items() if k not in given and k not in dict(arch.defaults)})
    return config


# What a run started with --init takes from that run: its network's shape (a flag may repeat it, not change it).
INIT_SHAPE = ("arch", "image_size", "latent_dim", "upsample", "residual", "generator_width", "discriminator_width", "attention_size",
              "spectral_norm", "spectral_norm_bias", "discriminator_norm", "label_projection")  # fmt: skip


def _from_init(o: dict, values: dict, given: set[str]) -> set[str]:
    """Set `o` and `values` to the --init run's network shape; the names set. Refuses a run that cannot start this one."""
    from gancli.store.checkpoints import read_header
    from gancli.models import get_architecture

    header = read_header(Path(values["init"]))
    source, path = header.config, header.path
    if header.kind != "generator":
        raise UsageError(f"--init '{path}' is a {source.arch} run, not a GAN; give a GAN run to start from.")
    if get_architecture(source.arch).growth:
        raise UsageError(f"--init '{path}' is a {source.arch} run: its growth from 4x4 cannot restart from full size; fine-tune another architecture.")
    for name in INIT_SHAPE:
        theirs = getattr(source, name)
        if name in given and values[name] is not None and values[name] != theirs:
            raise UsageError(f"--init '{path}' was trained with {flag(name)} {theirs}, not {values[name]}: fine-tuning keeps the network's "
                             f"shape; drop {flag(name)} or start from another run.")  # fmt: skip
        o[name] = values[name] = theirs
    if o["freeze_d"]:
        from gancli.training.finetune import check_freeze

        check_freeze(source, o["freeze_d"])
    return {name for name in INIT_SHAPE if get_architecture(source.arch).takes(name)}


def fit_to_data(config: TrainConfig, dataset, resumed: bool) -> tuple[TrainConfig, list[str]]:
    """Channels and classes follow the data; the batch size shrinks for tiny datasets."""
    notices = list(dataset.notices)
    if resumed and (config.channels, tuple(config.class_names)) != (dataset.channels, dataset.class_names):
        raise GancliError(
            f"The data in '{config.dataset}' no longer matches the checkpoint ({dataset.channels} channels, "
            f"{len(dataset.class_names)} classes vs {config.channels} and {config.num_classes}); restore it or start a new run."
        )
    if len(dataset) < 2:
        raise UsageError(f"'{config.dataset}' has {len(dataset)} image; training needs at least 2 (BatchNorm compares images within a step).")
    changes = dict(channels=dataset.channels, class_names=dataset.class_names, num_classes=len(dataset.class_names))
    if config.batch_size > len(dataset):
        notices.append(f"--batch-size {config.batch_size} is larger than the dataset ({len(dataset)} images); using {len(dataset)}.")
        changes["batch_size"] = len(dataset)
    return config.with_changes(**changes), notices


def training_length(config: TrainConfig, steps_per_epoch: int) -> tuple[int, str | None]:
    """The run's length in steps, and a note when the default length was stretched.

    Without --epochs or --steps: DEFAULT_EPOCHS epochs, but at least MIN_DEFAULT_STEPS steps, so a
    folder of a hundred images trains long enough to draw something (5 epochs of it are 15 steps).
    """
    steps_per_epoch = max(1, steps_per_epoch)
    if config.steps is not None:
        total = config.steps
    elif config.epochs is not None:
        total = config.epochs * steps_per_epoch
    else:
        total = max(DEFAULT_EPOCHS * steps_per_epoch, MIN_DEFAULT_STEPS)
        if total > DEFAULT_EPOCHS * steps_per_epoch:
            return total, (f"{DEFAULT_EPOCHS} epochs of this data would be {DEFAULT_EPOCHS * steps_per_epoch} steps, too few to learn from; "
                           f"training {total:,} steps ({total / steps_per_epoch:.0f} epochs). Choose with --epochs or --steps.")  # fmt: skip
    return total, None
