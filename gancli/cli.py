"""The `gancli` command line: a thin Typer layer over the core. Heavy imports live in the commands."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from gancli import __version__
from gancli.errors import GancliError, UsageError
from gancli.models import ARCHITECTURES

app = typer.Typer(
    name="gancli",
    help="Train GANs and turn them into images: train, sample, interpolate, upscale, grid.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Arch = Enum("Arch", {name: name for name in ARCHITECTURES}, type=str)  # the registry decides the choices


class Upsample(str, Enum):
    transpose = "transpose"
    nearest = "nearest"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"


class Loss(str, Enum):
    bce = "bce"
    hinge = "hinge"
    wgan_gp = "wgan-gp"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gancli {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors (or set GANCLI_DEBUG=1).")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """gancli: from a dataset to trained generators and images in a handful of commands."""
    if debug:
        os.environ["GANCLI_DEBUG"] = "1"


# Options that describe the model or its data: fixed by the checkpoint when resuming.
MODEL_OPTIONS = ("dataset", "arch", "image_size", "upsample", "latent_dim", "generator_width", "discriminator_width", "data_dir", "scale",
                 "loss", "spectral_norm", "ema", "augment", "attention_size", "phase_steps")  # fmt: skip
EMA_DECAY = 0.999
AUGMENT_POLICY = "color,translation,cutout"


@app.command()
def train(
    ctx: typer.Context,
    dataset: Annotated[Optional[str], typer.Argument(help="mnist, fashion-mnist, cifar10, or a folder of images (sub-folders are classes).", show_default=False)] = None,
    arch: Annotated[Arch, typer.Option(help="Model family.")] = "dcgan",
    image_size: Annotated[Optional[int], typer.Option(help="Image side in pixels (default: the dataset's own, 64 for folders).", show_default=False)] = None,
    upsample: Annotated[Upsample, typer.Option(help="dcgan generator: transposed convolutions or nearest upsample + 5x5 conv.")] = Upsample.transpose,
    latent_dim: Annotated[int, typer.Option(min=1, help="Length of the latent vector z.")] = 100,
    generator_width: Annotated[int, typer.Option(min=1, help="dcgan: channels of the generator's last stage (ngf).")] = 64,
    discriminator_width: Annotated[int, typer.Option(min=1, help="dcgan: channels of the discriminator's first stage (ndf).")] = 64,
    phase_steps: Annotated[int, typer.Option(min=0, help="progan: steps per fade-in or stable phase (0: spread over the run).")] = 0,
    attention_size: Annotated[int, typer.Option(min=0, help="sagan: feature-map side of the self-attention blocks (0: half the image side).")] = 0,
    scale: Annotated[int, typer.Option(min=2, max=4, help="Upscalers (srcnn, upgan): output size / input size, 2 to 4.")] = 2,
    content_weight: Annotated[float, typer.Option(min=0.0, help="upgan: weight of the L1 content loss next to the adversarial loss.")] = 100.0,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Passes over the data (default: 5 unless --steps).", show_default=False)] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Total training steps (overrides --epochs).", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per step (32 gives small datasets more updates per epoch).")] = 32,
    lr_g: Annotated[float, typer.Option(help="Generator learning rate (Adam).")] = 2e-4,
    lr_d: Annotated[float, typer.Option(help="Discriminator learning rate (Adam).")] = 2e-4,
    beta1: Annotated[float, typer.Option(help="Adam beta1, in [0, 1).")] = 0.5,
    beta2: Annotated[float, typer.Option(help="Adam beta2, in [0, 1).")] = 0.999,
    seed: Annotated[int, typer.Option(min=0, help="Seed for weights, data order and noise.")] = 0,
    sample_every: Annotated[Optional[int], typer.Option(min=1, help="Steps between sample grids, metrics rows and last.safetensors (default: 200).", show_default=False)] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(min=1, help="Steps between kept periodic checkpoints (default: 1000).", show_default=False)] = None,
    loss: Annotated[Loss, typer.Option(help="Adversarial loss: bce (non-saturating), hinge, or wgan-gp (gradient penalty).")] = Loss.bce,
    spectral_norm: Annotated[bool, typer.Option("--spectral-norm", help="Spectral normalisation in D (its BatchNorm is dropped).")] = False,
    ema: Annotated[bool, typer.Option("--ema", help=f"Keep a moving average of G's weights (decay {EMA_DECAY}); sample/eval use it unless --no-ema.")] = False,
    augment: Annotated[bool, typer.Option("--augment", help=f"DiffAugment ({AUGMENT_POLICY}) on everything D sees: for small datasets.")] = False,
    eval_every: Annotated[Optional[int], typer.Option(min=1, help="Steps between FID/KID/precision/recall measurements (needs --eval-classifier); keeps best.safetensors by FID.", show_default=False)] = None,
    eval_n: Annotated[int, typer.Option(min=10, help="Images generated per --eval-every measurement.")] = 2000,
    eval_classifier: Annotated[Optional[Path], typer.Option(help="Classifier run or checkpoint for --eval-every (gancli train DATA --arch classifier).", show_default=False)] = None,
    precision: Annotated[Precision, typer.Option(help="bf16 autocasts forward passes (CPUs with avx512_bf16/AMX, CUDA GPUs).")] = Precision.fp32,
    keep: Annotated[Optional[int], typer.Option(min=1, help="Keep only the newest K periodic checkpoints (default: all).", show_default=False)] = None,
    device: Annotated[Device, typer.Option(help="Where to train (under torchrun: one GPU per process, or the CPU).")] = Device.auto,
    time_limit: Annotated[Optional[float], typer.Option(min=0.01, help="Stop after this many minutes (saved like a finished run).", show_default=False)] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the models (slow to start; pays off on GPUs, not measured faster on CPUs).")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Run directory (default: runs/<dataset>-<arch>-<time>).", show_default=False)] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where named datasets are found or downloaded (default: ~/.cache/gancli/datasets).", show_default=False)] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue a run: its directory or a checkpoint file.", show_default=False)] = None,
) -> None:
    """Train a GAN on a dataset; writes checkpoints, sample grids and metrics.csv.

    Example: gancli train mnist --arch dcgan --epochs 5

    Several GPUs or machines: torchrun --nproc-per-node N -m gancli train ... (--batch-size is per process).
    """
    from gancli import checkpoints, runs, training
    from gancli.config import TrainConfig
    from gancli.distributed import is_main_process
    from gancli.data import check_dataset, native_image_size
    from gancli.models import check_image_size, get_architecture, is_classifier, is_upscaler
    from gancli.progress import TrainingDisplay

    if epochs is not None and steps is not None:
        raise UsageError("Give --epochs or --steps, not both.")
    for flag, value in (("--lr-g", lr_g), ("--lr-d", lr_d)):
        if not 0 < value < 1:
            raise UsageError(f"{flag} {value} is out of range; use a learning rate above 0 and below 1, e.g. 0.0002.")
    for flag, value in (("--beta1", beta1), ("--beta2", beta2)):
        if not 0 <= value < 1:
            raise UsageError(f"{flag} {value} is out of range; use a value in [0, 1).")
    length = {"epochs": epochs, "steps": steps} if (epochs or steps) else {}  # one of them replaces the other
    timing = {k: v for k, v in (("sample_every", sample_every), ("checkpoint_every", checkpoint_every), ("keep", keep), ("eval_every", eval_every)) if v is not None}
    if eval_every is not None or eval_classifier is not None:
        if eval_classifier is None:
            raise UsageError(f"--eval-every needs --eval-classifier RUN: train one with 'gancli train {dataset or 'DATA'} --arch classifier'.")
        timing |= {"eval_classifier": str(runs.resolve_checkpoint(eval_classifier)), "eval_n": eval_n}
    checkpoint = None
    if resume is not None:
        checkpoint = checkpoints.load_checkpoint(runs.resolve_checkpoint(resume))
        asked = dict(dataset=dataset, arch=getattr(arch, "value", arch), image_size=image_size, upsample=upsample.value,
                     latent_dim=latent_dim, generator_width=generator_width, discriminator_width=discriminator_width,
                     data_dir=str(data_dir) if data_dir else "", scale=scale, loss=loss.value, spectral_norm=spectral_norm,
                     ema=EMA_DECAY if ema else 0.0, augment=AUGMENT_POLICY if augment else "", attention_size=attention_size,
                     phase_steps=phase_steps)  # fmt: skip
        for name in MODEL_OPTIONS:
            given = ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")
            if given and asked[name] != getattr(checkpoint.config, name):
                flag = "DATASET" if name == "dataset" else "--" + name.replace("_", "-")
                raise UsageError(
                    f"{flag} cannot change when resuming (the checkpoint has {getattr(checkpoint.config, name)!r}); "
                    "drop it or start a new run."
                )
        config = checkpoint.config.with_changes(**length, **timing)
        run_dir = out or runs.run_dir_of(checkpoint.path)
    else:
        if dataset is None:
            raise UsageError("Missing DATASET: give mnist, fashion-mnist, cifar10 or a folder of images (or --resume RUN).")
        check_dataset(dataset)
        size = image_size or native_image_size(dataset)
        check_image_size(arch.value, size)
        recipe = [flag for flag, used in (("--loss", loss != Loss.bce), ("--spectral-norm", spectral_norm), ("--ema", ema),
                                          ("--augment", augment), ("--eval-every", eval_every is not None)) if used]  # fmt: skip
        if recipe and (is_upscaler(arch.value) or is_classifier(arch.value)):
            raise UsageError(f"{', '.join(recipe)} apply to GANs, not to --arch {arch.value}; drop them.")
        for flag, value, owner in (("--attention-size", attention_size, "sagan"), ("--phase-steps", phase_steps, "progan")):
            if value and arch.value != owner:
                raise UsageError(f"{flag} is for --arch {owner}, not {arch.value}; drop it.")
        if is_upscaler(arch.value) and size < 2 * scale:
            raise UsageError(f"--image-size {size} is too small to learn x{scale} upscaling; use at least {2 * scale}.")
        config = TrainConfig(
            arch=arch.value, dataset=dataset, image_size=size, upsample=upsample.value, latent_dim=latent_dim,
            generator_width=generator_width, discriminator_width=discriminator_width, batch_size=batch_size,
            lr_g=lr_g, lr_d=lr_d, beta1=beta1, beta2=beta2, seed=seed, scale=scale, content_weight=content_weight,
            precision=precision.value, loss=loss.value, spectral_norm=spectral_norm, ema=EMA_DECAY if ema else 0.0,
            augment=AUGMENT_POLICY if augment else "", data_dir=str(data_dir) if data_dir else "", **length, **timing,
            attention_size=attention_size, phase_steps=phase_steps,
        )  # fmt: skip
        # the architecture's own defaults (sagan: hinge loss, two learning rates) for options not given
        untouched = {k: v for k, v in get_architecture(arch.value).defaults if ctx.get_parameter_source(k).name in ("DEFAULT", "DEFAULT_MAP")}
        config = config.with_changes(**untouched)
        run_dir = out or runs.default_run_dir(dataset, arch.value)
        if runs.last_checkpoint_path(run_dir).exists():
            raise UsageError(f"'{run_dir}' already holds a run; continue it with --resume {run_dir} or choose another --out.")
    _check_writable(run_dir)

    with TrainingDisplay() as display:
        result = training.train(config, run_dir, device.value, reporter=display, resume=checkpoint, compile=compile,
                                time_limit=time_limit * 60 if time_limit else None)

    if not is_main_process():  # under torchrun, rank 0 reports for everyone
        if result.interrupted:
            raise typer.Exit(130 if result.interrupted == "SIGINT" else 143)
        return
    if result.last_row:
        from gancli.progress import format_stats

        typer.echo(f"Trained to step {result.step}/{result.total_steps} in {result.seconds:.1f} s; last {format_stats(result.last_row)}")
    typer.echo(f"Checkpoint: {result.checkpoint}")
    if result.last_sample:
        typer.echo(f"Samples:    {result.last_sample.parent}/ (latest {result.last_sample.name})")
    typer.echo(f"Metrics:    {run_dir / 'metrics.csv'}")
    if result.time_limited:
        typer.echo(f"Stopped at the --time-limit of {time_limit:g} min, at step {result.step} of {result.total_steps}. Continue with: gancli train --resume {run_dir}")
    if result.interrupted:
        typer.echo(f"Stopped by {result.interrupted} at step {result.step}. Resume with: gancli train --resume {run_dir}")
        raise typer.Exit(130 if result.interrupted == "SIGINT" else 143)
    if is_classifier(config.arch):
        typer.echo(f"Next:       gancli eval RUN --classifier {run_dir}   (RUN: a generator trained on {config.dataset})")
    elif is_upscaler(config.arch):
        typer.echo(f"Next:       gancli upscale IMAGES... --model {run_dir} --out upscaled/   (or --benchmark {config.dataset})")
    else:
        typer.echo(f"Next:       gancli sample --checkpoint {run_dir} --n 25 --seed 0 --out samples.png")


@app.command()
def sample(
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint file or run directory (default: the newest run under runs/).", show_default=False)] = None,
    n: Annotated[Optional[int], typer.Option("--n", min=1, help="How many images (default: 64; with --label all, per class: 8).", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help="Seed of the z stream; the same seed gives the same images (default: random, printed).", show_default=False)] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Render these seeds' own latents, e.g. 0-24 or 3,7,42; files are named seed0042.png.", show_default=False)] = None,
    label: Annotated[Optional[str], typer.Option(help="Conditional models: a class name or index, or 'all' for a grid with one row per class.", show_default=False)] = None,
    per_class: Annotated[Optional[int], typer.Option(min=1, help="Conditional models: this many images per class into --out-dir/<class>/ (an ImageFolder tree).", show_default=False)] = None,
    out: Annotated[Path, typer.Option(help="Grid PNG to write.")] = Path("samples.png"),
    out_dir: Annotated[Optional[Path], typer.Option(help="Write one PNG per image into this folder instead of a grid.", show_default=False)] = None,
    nrow: Annotated[Optional[int], typer.Option(min=1, help="Images per grid row (default: square-ish; a row per class with --label all).", show_default=False)] = None,
    upscale: Annotated[Optional[Path], typer.Option(help="Upscale every image with this upscaler checkpoint or run (srcnn, upgan).", show_default=False)] = None,
    truncation: Annotated[Optional[float], typer.Option(min=0.0, max=2.0, help="stylegan: pull styles towards the average, e.g. 0.7 (1: off; lower: sharper, less varied).", show_default=False)] = None,
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Runs trained with --ema: use the moving-average weights (or the last step's).")] = True,
    device: Annotated[Device, typer.Option(help="Where to run the generator.")] = Device.auto,
) -> None:
    """Generate images from a trained generator.

    Examples: gancli sample --checkpoint runs/r1 --n 25 --seed 7 --out digits.png;
    gancli sample --seeds 0-24; gancli sample --label all; gancli sample --per-class 600 --out-dir aug/
    """
    import random
    import time

    import torch
    import torchvision.utils  # noqa: F401  imported before the clock starts: it alone takes about a second

    from gancli import runs, sampling, training
    from gancli.images import save_each, save_grid
    from gancli.labels import ALL, parse_label
    from gancli.latent import parse_seeds

    if seeds is not None and (seed is not None or n is not None):
        raise UsageError("--seeds names every image itself; drop --n and --seed, or drop --seeds.")
    if per_class is not None and (out_dir is None or label is not None or seeds is not None or n is not None):
        raise UsageError("--per-class writes an ImageFolder tree: give it with --out-dir DIR and without --n, --label or --seeds.")
    seed_list = parse_seeds(seeds) if seeds is not None else None
    path = runs.resolve_checkpoint(checkpoint)
    dev = training.resolve_device(device.value)
    generator, config = _load_model(path, dev, "generator", ema)
    if truncation is not None:
        if not hasattr(generator, "truncation"):
            raise UsageError(f"--truncation needs a style-based generator; '{path}' is {config.arch} (train one with --arch stylegan).")
        generator.truncation = truncation
    if upscale is not None:
        generator = _then_upscale(generator, config, upscale, dev)
    conditional = getattr(generator, "conditional", False)
    if (label is not None or per_class is not None) and not conditional:
        flag = "--label" if label is not None else "--per-class"
        raise UsageError(f"'{path}' is unconditional; drop {flag} or train with --arch cdcgan or cgan.")
    class_index = None if label is None else ALL if label.lower() == ALL else parse_label(label, config.class_names)
    if seed is None:
        seed = random.randrange(2**31)
    _check_writable(out_dir if out_dir is not None else out.parent)
    started = time.perf_counter()

    if per_class is not None:
        count = sampling.export_image_folder(generator, config, per_class, seed, dev, out_dir)
        what = f"{per_class} images for each of {config.num_classes} classes to {out_dir}/<class>/ (seed {seed})"
    elif seed_list is not None:
        images = sampling.seed_images(generator, config, seed_list, dev, class_index)
        if out_dir is not None:
            names = [f"seed{s:04d}.png" for s in seed_list]
            if class_index == ALL:
                names = [f"{name}-seed{s:04d}.png" for name in config.class_names for s in seed_list]
            save_each(images, [out_dir / name for name in names])
            what = f"{out_dir / names[0]}" if len(names) == 1 else f"{len(names)} images to {out_dir}/ ({names[0]} ... {names[-1]})"
        else:
            columns = nrow or (len(seed_list) if class_index == ALL else None)
            save_grid(images, out, nrow=columns)
            what = f"a grid of {len(images)} images ({_layout(len(images), columns)}) to {out}"
        count = len(images)
    else:
        per_row = n or 8
        count = per_row * config.num_classes if class_index == ALL else n or 64
        columns = nrow or per_row if class_index == ALL else nrow
        labels = sampling.stream_labels(config, count, class_index) if conditional else None
        batches = sampling.generate(generator, config, count, seed, dev, labels)
        if out_dir is not None:
            written = 0
            for batch in batches:
                save_each(batch, [out_dir / f"{written + i:05d}.png" for i in range(len(batch))])
                written += len(batch)
            what = f"{count} images to {out_dir}/ (seed {seed})"
        else:
            save_grid(torch.cat(list(batches)), out, nrow=columns)
            what = f"a grid of {count} images ({_layout(count, columns)}) to {out} (seed {seed})"
    seconds = time.perf_counter() - started
    typer.echo(f"Wrote {what} in {seconds:.2f} s, {count / max(seconds, 1e-9):,.0f} images/s, from {path}")
    if conditional and label is None and per_class is None:
        typer.echo(f"Labels: every class in turn ({', '.join(config.class_names)}); pick one with --label.")


class Method(str, Enum):
    slerp = "slerp"
    lerp = "lerp"


@app.command()
def interpolate(
    seeds: Annotated[list[int], typer.Argument(help="Two or more seeds to walk through, in order.", show_default=False)],
    steps: Annotated[int, typer.Option(min=2, help="Images per segment in the grid, both ends included.")] = 8,
    method: Annotated[Method, typer.Option(help="slerp follows the sphere where Gaussian z live; lerp is a straight line.")] = Method.slerp,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Checkpoint file or run directory (default: the newest run under runs/).", show_default=False)] = None,
    out: Annotated[Path, typer.Option(help="Grid PNG to write: one row per segment.")] = Path("walk.png"),
    gif: Annotated[Optional[Path], typer.Option(help="Also write an animated GIF of the walk.", show_default=False)] = None,
    gif_steps: Annotated[int, typer.Option(min=2, help="Frames per segment in the GIF, both ends included.")] = 24,
    fps: Annotated[float, typer.Option(min=0.1, max=50.0, help="GIF frames per second.")] = 12.0,
    loop: Annotated[bool, typer.Option("--loop", help="Walk back to the first seed at the end.")] = False,
    label: Annotated[Optional[str], typer.Option(help="Conditional models: the class to hold fixed (default: the first class).", show_default=False)] = None,
    labels: Annotated[Optional[str], typer.Option(help="Conditional models: one class per seed, e.g. --labels 3 8 (or 3,8); the class embedding moves too.", show_default=False)] = None,
    mix: Annotated[Optional[int], typer.Option(min=0, help="stylegan: instead of a walk, a style-mixing grid: per seed, its image, its coarse styles with this seed's fine ones, and this seed's image.", show_default=False)] = None,
    mix_layer: Annotated[Optional[int], typer.Option(min=1, help="--mix: the first styled layer that takes the fine seed's style (default 3: after 8x8's first convolution).", show_default=False)] = None,
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Runs trained with --ema: use the moving-average weights (or the last step's).")] = True,
    device: Annotated[Device, typer.Option(help="Where to run the generator.")] = Device.auto,
) -> None:
    """Walk the latent space through seeds: a grid with one row per segment, optionally a GIF.

    Example: gancli interpolate 1 2 3 --steps 8 --out walk.png --gif walk.gif;
    stylegan: gancli interpolate 1 2 3 --mix 7 --out mixing.png
    """
    from gancli import runs, sampling, training
    from gancli.images import save_gif, save_grid
    from gancli.labels import parse_label, parse_label_list

    if len(seeds) < 2 and mix is None:
        raise UsageError("interpolate needs at least two seeds, e.g. gancli interpolate 1 2.")
    if any(s < 0 for s in seeds):
        raise UsageError("Seeds are whole numbers >= 0.")
    if label is not None and labels is not None:
        raise UsageError("Give --label (one class throughout) or --labels (one per seed), not both.")
    path = runs.resolve_checkpoint(checkpoint)
    dev = training.resolve_device(device.value)
    generator, config = _load_model(path, dev, "generator", ema)
    if mix is not None:
        if not hasattr(generator, "mixed"):
            raise UsageError(f"--mix needs a style-based generator; '{path}' is {config.arch} (train one with --arch stylegan).")
        if mix_layer is not None and mix_layer >= generator.num_styles:
            raise UsageError(f"--mix-layer {mix_layer} is past the last styled layer; use 1 to {generator.num_styles - 1}.")
        _check_writable(out.parent)
        images = sampling.style_mixing_grid(generator, config, list(seeds), mix, dev, mix_layer)
        save_grid(images, out, nrow=3)
        typer.echo(f"Wrote {out}: a row per seed ({', '.join(map(str, seeds))}): its image, its coarse styles with seed {mix}'s fine ones, seed {mix}'s image")
        return
    keyframes = seeds + [seeds[0]] if loop else list(seeds)
    classes = None
    if getattr(generator, "conditional", False):
        if labels is not None:
            classes = parse_label_list(labels, config.class_names)
            if len(classes) != len(seeds):
                raise UsageError(f"--labels gives {len(classes)} classes for {len(seeds)} seeds; give one class per seed.")
        else:
            classes = [parse_label(label, config.class_names) if label is not None else 0] * len(seeds)
        classes = classes + [classes[0]] if loop else classes
    elif label is not None or labels is not None:
        raise UsageError(f"'{path}' is unconditional; drop --label/--labels or train with --arch cdcgan or cgan.")
    _check_writable(out.parent)
    images = sampling.walk(generator, config, keyframes, steps, method.value, dev, classes)
    save_grid(images, out, nrow=steps)
    typer.echo(f"Wrote {out}: {len(keyframes) - 1} row(s) of {steps} images ({method.value}) through seeds {', '.join(map(str, keyframes))}")
    if gif is not None:
        _check_writable(gif.parent)
        frames = sampling.walk(generator, config, keyframes, gif_steps, method.value, dev, classes)
        keep = [0] + [i for i in range(1, len(frames)) if i % gif_steps != 0]  # each segment's start repeats the last one's end
        save_gif(frames[keep], gif, fps)
        typer.echo(f"Wrote {gif}: {len(keep)} frames at {fps:g} fps")
    if classes is not None and labels is None:
        typer.echo(f"Label: {config.class_names[classes[0]]} throughout" + ("" if label else " (the first class; pick one with --label)"))


class Extractor(str, Enum):
    classifier = "classifier"
    inception = "inception"


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="Generator checkpoint or run directory (default: the newest run under runs/).", show_default=False)] = None,
    n: Annotated[int, typer.Option("--n", min=10, help="Images to generate and compare with as many real ones.")] = 10_000,
    extractor: Annotated[Extractor, typer.Option(help="Feature space: gancli's dataset classifier (offline) or Inception-v3.")] = Extractor.classifier,
    classifier: Annotated[Optional[Path], typer.Option(help="Classifier run or checkpoint (default: the newest one under runs/ trained on the same data).", show_default=False)] = None,
    inception_weights: Annotated[Optional[Path], typer.Option(help="torchvision's inception_v3_google-0cc3c7bd.pth (default: the torch hub cache).", show_default=False)] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the generated images.")] = 0,
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Runs trained with --ema: score the moving-average weights (or the last step's).")] = True,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the dataset is found (default: the run's).", show_default=False)] = None,
    device: Annotated[Device, typer.Option(help="Where to run the networks.")] = Device.auto,
) -> None:
    """Score a generator: FID, KID, precision/recall and class coverage against the real data.

    Example: gancli train mnist --arch classifier; gancli eval runs/mnist-dcgan-... --n 10000
    """
    import time

    from gancli import runs, training
    from gancli.evaluate import append_record, evaluate as run_evaluation
    from gancli.features import ClassifierExtractor, InceptionExtractor

    path = runs.resolve_checkpoint(checkpoint)
    dev = training.resolve_device(device.value)
    generator, config = _load_model(path, dev, "generator", ema)
    if extractor == Extractor.classifier:
        from gancli.classify import check_matches

        classifier_path = runs.resolve_checkpoint(classifier) if classifier else runs.newest_checkpoint(runs.RUNS_ROOT, "classifier", config.dataset)
        features = ClassifierExtractor(classifier_path, dev)
        check_matches(features.config, config.dataset)
    else:
        features = InceptionExtractor(inception_weights, dev)
    if data_dir is not None:
        config = config.with_changes(data_dir=str(data_dir))
    result = run_evaluation(generator, config, features, n, seed, dev, config.data_dir or None)

    from gancli.checkpoints import read_metadata

    step = int(read_metadata(path).get("step", 0))
    weights = getattr(generator, "weights_source", "last step")
    typer.echo(f"Evaluated {path} (step {step}, {config.arch}, {weights} weights) with {n:,} generated images in {result.seconds:.1f} s")
    typer.echo(f"Extractor:  {result.extractor}")
    typer.echo(f"Real data:  {result.reference}")
    typer.echo(f"{'metric':<17}{'generated':>11}{'real floor':>12}")
    for name, value in result.scores.items():
        if name in ("KID_std", "class_KL_max"):
            continue
        floor = result.floor.get(name)
        shown = _metric_text(name, value, config)
        typer.echo(f"{name:<17}{shown:>11}{_metric_text(name, floor, config) if floor is not None else '-':>12}")
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "checkpoint": str(path), "step": step, "n": n, "seed": seed,
              "weights": weights, "extractor": result.extractor, "real_data": result.reference,
              "scores": result.scores, "real_floor": result.floor}  # fmt: skip
    eval_json = runs.run_dir_of(path) / "eval.json"
    try:
        append_record(eval_json, record)
        typer.echo(f"Appended to {eval_json}")
    except OSError as exc:
        typer.echo(f"Could not append to {eval_json} ({exc.strerror}); the scores above are not saved.", err=True)


def _metric_text(name: str, value: float, config) -> str:
    if name == "classes_covered":
        return f"{value:.0f}/{config.num_classes}"
    if name == "KID":
        return f"{value:.5f}"
    return f"{value:.3f}" if name != "FID" else f"{value:.2f}"


class UpscaleMethod(str, Enum):
    model = "model"
    bicubic = "bicubic"
    lanczos = "lanczos"


@app.command()
def upscale(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Image files, folders or glob patterns (grids too).", show_default=False)] = None,
    out: Annotated[Path, typer.Option(help="Folder for the upscaled PNGs (same names).")] = Path("upscaled"),
    model: Annotated[Optional[Path], typer.Option(help="Upscaler checkpoint or run directory (default: the newest srcnn/upgan run under runs/).", show_default=False)] = None,
    method: Annotated[UpscaleMethod, typer.Option(help="model, or a classical resampling filter.")] = UpscaleMethod.model,
    scale: Annotated[Optional[int], typer.Option(min=2, help="Output size / input size (default: the model's; 2 for bicubic/lanczos). A x2 model reaches 4, 8, ... by repeating.", show_default=False)] = None,
    benchmark: Annotated[Optional[str], typer.Option(help="Instead: downscale these high-res images (a folder, or mnist / fashion-mnist / cifar10 for its test split), restore them, and print PSNR and SSIM against bicubic.", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="--benchmark: use only the first N images.", show_default=False)] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="--benchmark on a named dataset: where to find it.", show_default=False)] = None,
    device: Annotated[Device, typer.Option(help="Where to run the model.")] = Device.auto,
) -> None:
    """Make images larger with a trained upscaler (srcnn, upgan) or a classical filter.

    Examples: gancli upscale samples.png --model runs/sr --out big/; gancli upscale --benchmark fashion-mnist --limit 1000
    """
    import math

    from gancli import runs, superres, training
    from gancli.images import expand_image_paths, load_image, save_each

    if benchmark is None and not inputs:
        raise UsageError("Give images to upscale (files, folders or globs), or --benchmark DIR_OR_DATASET.")
    if benchmark is not None and inputs:
        raise UsageError("--benchmark measures on its own images; drop the INPUTS or drop --benchmark.")
    dev = training.resolve_device(device.value)
    upscaler, channels, passes, model_scale, source = None, 0, 1, scale or 2, method.value
    if method == UpscaleMethod.model:
        path = runs.resolve_checkpoint(model, kind="upscaler")
        upscaler, config = _load_model(path, dev, "upscaler")
        channels, model_scale = config.channels, config.scale
        passes = round(math.log(scale or model_scale, model_scale))
        if model_scale**passes != (scale or model_scale):
            raise UsageError(f"--scale {scale} cannot be reached with the x{model_scale} model '{path}'; use a power of {model_scale}.")
        source = f"{config.arch} x{model_scale} from {path}" + (f", applied {passes} times" if passes > 1 else "")
    elif model is not None:
        raise UsageError(f"--model goes with --method model; drop it to use {method.value}.")
    total = model_scale**passes

    if benchmark is not None:
        if upscaler is None:
            raise UsageError("--benchmark compares a trained upscaler with bicubic; give --model (and no --method).")
        images, what = _benchmark_images(benchmark, data_dir, limit)
        scores = superres.benchmark(upscaler, channels, model_scale, passes, images, dev)
        typer.echo(f"Benchmark: {len(images)} images ({what}) downscaled x{total} with antialiased bicubic, then restored")
        typer.echo(f"{'method':<28}{'PSNR (dB)':>10}{'SSIM':>9}")
        for name, label in (("bicubic", "bicubic"), ("model", source.split(' from ')[0])):
            typer.echo(f"{label:<28}{scores[name]['PSNR']:>10.2f}{scores[name]['SSIM']:>9.4f}")
        gain_p = scores["model"]["PSNR"] - scores["bicubic"]["PSNR"]
        gain_s = scores["model"]["SSIM"] - scores["bicubic"]["SSIM"]
        typer.echo(f"{'model - bicubic':<28}{gain_p:>+10.2f}{gain_s:>+9.4f}")
        return

    paths = expand_image_paths(inputs)
    _check_writable(out)
    for path in paths:
        image = load_image(path)
        if upscaler is not None:
            result = superres.upscale_image(upscaler, channels, image, passes, model_scale, dev)
        else:
            result = _classical_upscale(image, total, method.value)
        save_each(result.unsqueeze(0), [out / f"{path.stem}.png"])
    typer.echo(f"Wrote {len(paths)} image(s) x{total} to {out}/ ({source})")


def _benchmark_images(source: str, data_dir: Path | None, limit: int | None):
    from gancli.data import NAMED_DATASETS, load_test_images
    from gancli.images import expand_image_paths, load_image

    if source in NAMED_DATASETS:
        images, what = load_test_images(source, data_dir)
        images = images[:limit] if limit else images
        return list(images), what
    paths = expand_image_paths([source])[:limit]
    return [load_image(p) for p in paths], f"from {source}"


def _classical_upscale(image, scale: int, method: str):
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor, to_pil_image

    picture = to_pil_image(image)
    filters = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
    return pil_to_tensor(picture.resize((picture.width * scale, picture.height * scale), filters[method]))


@app.command()
def grid(
    images: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.", show_default=False)],
    out: Annotated[Path, typer.Option(help="Grid PNG to write.")] = Path("grid.png"),
    nrow: Annotated[Optional[int], typer.Option(min=1, help="Images per row (default: square-ish).", show_default=False)] = None,
    padding: Annotated[int, typer.Option(min=0, help="Pixels between images.")] = 2,
) -> None:
    """Arrange images into one grid PNG (sizes follow the first image).

    Example: gancli grid runs/r1/samples/*.png --out progress.png --nrow 4
    """
    from gancli.images import expand_image_paths, load_images_like_first, save_grid

    paths = expand_image_paths(images)
    _check_writable(out.parent)
    tensors = load_images_like_first(paths)
    save_grid(tensors, out, nrow=nrow, padding=padding)
    typer.echo(f"Wrote a grid of {len(paths)} images ({_layout(len(paths), nrow)}) to {out}")


def _load_model(path: Path, device, kind: str, ema: bool = True):
    """Load a checkpoint's model, refusing the wrong kind with the command to use instead."""
    import json

    from gancli import sampling
    from gancli.checkpoints import read_metadata
    from gancli.models import get_architecture

    arch = json.loads(read_metadata(path).get("config", "{}")).get("arch", "")
    actual = get_architecture(arch).kind
    if actual != kind:
        if actual == "upscaler":
            raise UsageError(f"'{path}' is an upscaler ({arch}), not a generator; use it with gancli upscale --model {path} or sample --upscale {path}.")
        if actual == "classifier":
            raise UsageError(f"'{path}' is a classifier, not a {kind}; use it with gancli eval --classifier {path}.")
        raise UsageError(f"'{path}' is a generator ({arch}), not an upscaler; use it with gancli sample, or train one with --arch srcnn.")
    return sampling.load_generator(path, device, ema=ema)


def _then_upscale(generator, config, upscale_path: Path, device):
    """Wrap a generator so that its images come out through an upscaler (generate small, then upscale)."""
    from gancli import runs
    from gancli.superres import UpscaledGenerator

    path = runs.resolve_checkpoint(upscale_path, kind="upscaler")
    upscaler, up_config = _load_model(path, device, "upscaler")
    return UpscaledGenerator(generator, upscaler, up_config.channels, up_config.scale)


def _layout(n: int, nrow: int | None) -> str:
    from gancli.images import square_nrow

    columns = min(nrow or square_nrow(n), n)
    rows = -(-n // columns)
    return f"{columns} per row, {rows} row{'s' if rows > 1 else ''}"


def _check_writable(folder: Path) -> None:
    """Fail early, before any work, when `folder` cannot be created or written."""
    folder = Path(folder) if str(folder) else Path(".")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"Cannot write to '{folder}': '{existing}' is a file; choose another path.")
    if not os.access(existing, os.W_OK):
        raise UsageError(f"Cannot write to '{folder}': permission denied; choose another path.")


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status; errors become one line on stderr."""
    try:
        from typer._click import exceptions as click_errors  # typer >= 0.20 vendors click
    except ImportError:
        from click import exceptions as click_errors

    argv = list(argv if argv is not None else sys.argv[1:])
    debug = os.environ.get("GANCLI_DEBUG") == "1" or "--debug" in argv
    try:
        result = app(args=_gather_labels(argv), prog_name="gancli", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except (typer.Exit, getattr(click_errors, "Exit", typer.Exit)) as exc:
        return exc.exit_code
    except click_errors.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "gancli"
        print(f"Error: {exc.format_message()} (see '{command} --help')", file=sys.stderr)
        return 2
    except (typer.Abort, getattr(click_errors, "Abort", typer.Abort), KeyboardInterrupt):
        print("Interrupted.", file=sys.stderr)
        return 130
    except GancliError as exc:
        if debug:
            raise
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # unexpected: still one line unless debugging
        if debug:
            raise
        print(f"Error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)", file=sys.stderr)
        return 1


def _gather_labels(argv: list[str]) -> list[str]:
    """Let `--labels 3 8` mean `--labels 3,8`: the words after --labels, up to the next option."""
    if "--labels" not in argv:
        return argv
    i = argv.index("--labels") + 1
    j = i
    while j < len(argv) and not argv[j].startswith("-"):
        j += 1
    if j - i <= 1:
        return argv
    return argv[:i] + [",".join(argv[i:j])] + argv[j:]


def main() -> None:
    sys.exit(run())
