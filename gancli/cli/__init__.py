"""The `gancli` command line: a thin Typer layer over the core. Heavy imports live in the commands.

Each command parses its options, makes one or two core calls and prints what was written.
Options that several commands share are declared once below.
"""

from __future__ import annotations

import contextlib
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from gancli import __version__
from gancli.config import AUGMENT_POLICY, EMA_DECAY, MAX_SEED
from gancli.errors import GancliError, Interrupted, UsageError
from gancli.models import ARCHITECTURES
from gancli.cli.help import make_readable
from gancli.train.recipes import RECIPES

app = typer.Typer(
    name="gancli",
    help="Train GANs and turn them into images: train, sample, interpolate, eval, upscale, grid; data decodes a folder once.",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ARCH_HELP = "Model family: one of the architectures listed below."
ARCH_LIST = "Architectures (--arch):\n" + "\n".join(f"[bold]{a.name}[/bold]: {a.summary}" for a in ARCHITECTURES.values())


def choices(name: str, *values: str) -> type[Enum]:
    """A str Enum of option values (Typer shows them as the choices): wgan-gp becomes member wgan_gp."""
    return Enum(name, {value.replace("-", "_"): value for value in values}, type=str)


Arch = choices("Arch", *ARCHITECTURES)  # the registry decides the choices
RecipeName = choices("RecipeName", *RECIPES)
RECIPE_HELP = "Measured settings for new runs; your own flags win. " + "; ".join(f"{r.name}: {r.summary}" for r in RECIPES.values()) + "."
Upsample = choices("Upsample", "transpose", "nearest")
Precision = choices("Precision", "fp32", "bf16")
Loss = choices("Loss", "bce", "hinge", "wgan-gp")
Device = choices("Device", "auto", "cpu", "cuda", "mps")
Method = choices("Method", "slerp", "lerp")
Extractor = choices("Extractor", "classifier", "inception")
UpscaleMethod = choices("UpscaleMethod", "model", "bicubic", "lanczos")


# --- options several commands share ------------------------------------------------------------

DeviceOption = Annotated[Device, typer.Option(help="Where to run the networks (under torchrun: one GPU per process, or the CPU).")]
CheckpointOption = Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="Checkpoint file or run directory (default: the newest run under runs/).", show_default=False)]
EmaOption = Annotated[bool, typer.Option("--ema/--no-ema", help="Runs trained with --ema: use the moving-average weights (or the last step's).")]
DataDirOption = Annotated[Optional[Path], typer.Option(help="Where named datasets are found or downloaded (default: ~/.cache/gancli/datasets).", show_default=False)]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace files of the same names already in --outdir (default: refuse).")]
SkipExistingOption = Annotated[bool, typer.Option("--skip-existing", help="Keep files of the same names already in --outdir and write the rest (continues a stopped export).")]
MODEL, TRAINING, RECIPE, EVALUATION, OUTPUT = "Model", "Training", "Recipe", "Evaluation while training", "Output"


def _version(value: bool) -> None:
    if value:
        from gancli.models import ARCHITECTURES, PLUGIN_ERRORS

        typer.echo(f"gancli {__version__}")
        plugins = [a.name for a in ARCHITECTURES.values() if not a.module.startswith("gancli.")]
        if plugins:
            typer.echo(f"Plugin architectures: {', '.join(plugins)}")
        for error in PLUGIN_ERRORS:
            typer.echo(f"Plugin left out: {error}", err=True)
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors (or set GANCLI_DEBUG=1).")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """gancli: from a dataset to trained generators and images in a handful of commands."""
    if debug:
        os.environ["GANCLI_DEBUG"] = "1"


@app.command(epilog=ARCH_LIST)
def train(
    ctx: typer.Context,
    dataset: Annotated[Optional[str], typer.Argument(help="mnist, fashion-mnist, cifar10, or a folder of images (sub-folders are classes).", show_default=False)] = None,
    arch: Annotated[Arch, typer.Option(help=ARCH_HELP, rich_help_panel=MODEL)] = "dcgan",
    image_size: Annotated[Optional[int], typer.Option(min=4, max=512, help="Image side in pixels (default: the dataset's own, 64 for folders).", show_default=False, rich_help_panel=MODEL)] = None,
    upsample: Annotated[Upsample, typer.Option(help="dcgan, cdcgan generator: transposed convolutions or nearest upsample + 5x5 conv.", rich_help_panel=MODEL)] = Upsample.transpose,
    latent_dim: Annotated[int, typer.Option(min=1, max=4096, help="Length of the latent vector z.", rich_help_panel=MODEL)] = 100,
    generator_width: Annotated[int, typer.Option(min=1, max=1024, help="Channels of the generator's last stage (ngf).", rich_help_panel=MODEL)] = 64,
    discriminator_width: Annotated[int, typer.Option(min=1, max=1024, help="Channels of the discriminator's first stage (ndf).", rich_help_panel=MODEL)] = 64,
    phase_steps: Annotated[int, typer.Option(min=0, help="progan: steps per fade-in or stable phase (0: spread over the run).", rich_help_panel=MODEL)] = 0,
    attention_size: Annotated[int, typer.Option(min=0, help="sagan: feature-map side of the self-attention blocks (0: half the image side).", rich_help_panel=MODEL)] = 0,
    scale: Annotated[int, typer.Option(min=2, max=4, help="Upscalers (srcnn, upgan): output size / input size, 2 to 4.", rich_help_panel=MODEL)] = 2,
    content_weight: Annotated[float, typer.Option(min=0.0, help="upgan: weight of the L1 content loss next to the adversarial loss.", rich_help_panel=MODEL)] = 100.0,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Passes over the data (default: 5, and at least 1,000 steps, unless --steps).", show_default=False, rich_help_panel=TRAINING)] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Total training steps (overrides --epochs).", show_default=False, rich_help_panel=TRAINING)] = None,
    batch_size: Annotated[int, typer.Option(min=2, max=65536, help="Images per step (32 gives small datasets more updates per epoch).", rich_help_panel=TRAINING)] = 32,
    lr_g: Annotated[float, typer.Option(help="Generator learning rate (Adam).", rich_help_panel=TRAINING)] = 2e-4,
    lr_d: Annotated[float, typer.Option(help="Discriminator learning rate (Adam).", rich_help_panel=TRAINING)] = 2e-4,
    beta1: Annotated[float, typer.Option(help="Adam beta1, in [0, 1).", rich_help_panel=TRAINING)] = 0.5,
    beta2: Annotated[float, typer.Option(help="Adam beta2, in [0, 1).", rich_help_panel=TRAINING)] = 0.999,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed for weights, data order and noise.", rich_help_panel=TRAINING)] = 0,
    precision: Annotated[Precision, typer.Option(help="bf16 autocasts forward passes (CPUs with avx512_bf16/AMX, CUDA GPUs).", rich_help_panel=TRAINING)] = Precision.fp32,
    device: Annotated[Device, typer.Option(help="Where to train (under torchrun: one GPU per process, or the CPU).", rich_help_panel=TRAINING)] = Device.auto,
    processes: Annotated[int, typer.Option(min=1, max=1024, metavar="N", help="Train in N processes on this machine, as torchrun --nproc-per-node N does (one per GPU, or CPU processes).", rich_help_panel=TRAINING)] = 1,
    time_limit: Annotated[Optional[float], typer.Option(min=0.01, help="Stop after this many minutes (saved like a finished run).", show_default=False, rich_help_panel=TRAINING)] = None,
    compile: Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the models (slow to start; pays off on GPUs, not measured faster on CPUs).", rich_help_panel=TRAINING)] = False,
    resume: Annotated[Optional[Path], typer.Option(help="Continue a run: its directory or a checkpoint file.", show_default=False, rich_help_panel=TRAINING)] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where named datasets are found or downloaded (default: ~/.cache/gancli/datasets).", show_default=False, rich_help_panel=TRAINING)] = None,
    memory_budget: Annotated[Optional[str], typer.Option(metavar="SIZE", help="Most memory a folder's images may take, e.g. 8G or 500M (default: half the RAM; on CUDA, half the GPU's free memory); larger folders are read by batch from their cache.", show_default=False, rich_help_panel=TRAINING)] = None,
    recipe: Annotated[Optional[RecipeName], typer.Option(help=RECIPE_HELP, show_default=False, rich_help_panel=RECIPE)] = None,
    loss: Annotated[Loss, typer.Option(help="Adversarial loss: bce (non-saturating), hinge, or wgan-gp (gradient penalty).", rich_help_panel=RECIPE)] = Loss.bce,
    spectral_norm: Annotated[bool, typer.Option("--spectral-norm/--no-spectral-norm", help="Spectral normalisation in D (its BatchNorm becomes a bias); Adam betas 0 / 0.9 unless given.", rich_help_panel=RECIPE)] = False,
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help=f"Keep a moving average of G's weights (decay {EMA_DECAY}); sample/eval use it unless --no-ema.", rich_help_panel=RECIPE)] = False,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help=f"DiffAugment ({AUGMENT_POLICY}) on everything D sees: for small datasets.", rich_help_panel=RECIPE)] = False,
    eval_every: Annotated[Optional[int], typer.Option(min=1, help="Steps between FID/KID/precision/recall measurements (needs --eval-classifier); keeps best.safetensors by FID.", show_default=False, rich_help_panel=EVALUATION)] = None,
    eval_n: Annotated[int, typer.Option(min=10, help="Images generated per --eval-every measurement.", rich_help_panel=EVALUATION)] = 2000,
    eval_classifier: Annotated[Optional[Path], typer.Option(help="Classifier run or checkpoint for --eval-every (gancli train DATA --arch classifier).", show_default=False, rich_help_panel=EVALUATION)] = None,
    out: Annotated[Optional[Path], typer.Option("--outdir", "--out", "-o", help="Run directory (default: runs/<dataset>-<arch>-<time>); --out is the old spelling.", show_default=False, rich_help_panel=OUTPUT)] = None,
    sample_every: Annotated[Optional[int], typer.Option(min=1, help="Steps between sample grids, metrics rows and last.safetensors (default: 200).", show_default=False, rich_help_panel=OUTPUT)] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(min=1, help="Steps between kept periodic checkpoints (default: 1000).", show_default=False, rich_help_panel=OUTPUT)] = None,
    keep: Annotated[Optional[int], typer.Option(min=1, help="Keep only the newest K periodic checkpoints (default: all).", show_default=False, rich_help_panel=OUTPUT)] = None,
    tensorboard: Annotated[bool, typer.Option("--tensorboard/--no-tensorboard", help="Also log every metrics row and sample grid to RUN/tensorboard/ (needs: pip install tensorboard).", rich_help_panel=OUTPUT)] = False,
    threads: Annotated[Optional[int], typer.Option(min=1, max=1024, metavar="N", help="PyTorch CPU threads (default: the usable CPUs less the load at start; the same bytes need the same N).", show_default=False, rich_help_panel=TRAINING)] = None,
    force: Annotated[bool, typer.Option("--force", help="Start more --processes than this machine has GPUs or usable CPUs.", rich_help_panel=TRAINING)] = False,
) -> None:
    """Train a GAN (or an upscaler, or the dataset classifier); writes checkpoints, sample grids and metrics.csv.

    Example: gancli train mnist --arch dcgan --epochs 5. Several GPUs: torchrun --nproc-per-node N -m gancli train ...
    """
    from gancli.train import loop as training
    from gancli.train.plan import plan_training
    from gancli.train.distributed import check_process_count, die_with_launcher, launch
    from gancli.data.mapped import parse_size
    from gancli.store.runs import RunLock

    given = {name for name in ctx.params if ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")}
    if processes > 1 and "RANK" not in os.environ:  # start the processes; each runs this command
        check_process_count(processes, device.value, force)
        _config, run_dir, _checkpoint, _notices = plan_training(ctx.params, given)  # usage errors said once, before any start
        RunLock(run_dir).check_free()
        raise typer.Exit(launch(processes, _without_option(_ARGV, "--processes")))
    die_with_launcher()
    config, run_dir, checkpoint, notices = plan_training(ctx.params, given)
    if tensorboard:
        from gancli.train.tensorboard import check_folder

        check_folder(run_dir)
    budget = parse_size(memory_budget) if memory_budget is not None else None
    with _training_reporter(tensorboard) as reporter:
        result = training.train(config, run_dir, device.value, reporter, checkpoint, compile, time_limit * 60 if time_limit else None, notices=notices,
                                memory_budget=budget, threads=threads)  # fmt: skip
    _report_training(result, config, time_limit)


@contextlib.contextmanager
def _training_reporter(tensorboard: bool):
    """The live display; with --tensorboard, a TensorBoard log that passes everything on to it."""
    from gancli.cli.progress import TrainingDisplay

    with TrainingDisplay() as display:
        if not tensorboard:
            yield display
            return
        from gancli.train.tensorboard import TensorBoardLog

        log = TensorBoardLog(display)
        try:
            yield log
        finally:
            log.close()


def _report_training(result, config, time_limit: float | None) -> None:
    """Where everything went and what to run next; rank 0 speaks for every torchrun process."""
    from gancli.train.distributed import is_main_process
    from gancli.cli.progress import format_stats
    from gancli.store.runs import Run

    exit_code = {"SIGINT": 130, "SIGTERM": 143}.get(result.interrupted or "", 0)
    if not is_main_process():
        raise typer.Exit(exit_code)
    run_dir = result.run_dir
    if result.last_row:
        over = f"mean of the last {result.row_steps} steps" if result.row_steps > 1 else "last step"
        took = (f"{result.seconds:.1f} s of training ({result.seconds - result.seconds_before:.1f} s in this session)" if result.seconds_before
                else f"{result.seconds:.1f} s")  # fmt: skip
        _say(f"Trained to step {result.step}/{result.total_steps} in {took}; {over}: {format_stats(result.last_row, result.stats)}")
    _say(f"Checkpoint: {result.checkpoint}")
    if result.last_sample:
        _say(f"Samples:    {result.last_sample.parent}/ (latest {result.last_sample.name})")
    _say(f"Metrics:    {Run(run_dir).metrics}")
    if result.time_limited:
        _say(f"Stopped at the --time-limit of {time_limit:g} min, at step {result.step} of {result.total_steps}. Continue with: gancli train --resume {run_dir}")
    if result.interrupted:
        _say(f"Stopped by {result.interrupted} at step {result.step}. Resume with: gancli train --resume {run_dir}")
        raise typer.Exit(exit_code)
    from gancli.models import KINDS

    _say(f"Next:       {KINDS[result.kind].next_step.format(run=run_dir, dataset=config.dataset)}")


def _say(line: str) -> None:
    """A result line on stdout: in a terminal, wrapped at spaces to its width (never mid-word or mid-number)."""
    import shutil
    import textwrap

    if sys.stdout.isatty():
        width = shutil.get_terminal_size().columns
        line = textwrap.fill(line, width=max(40, width - 1), subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
    typer.echo(line)


@app.command()
def sample(
    checkpoint: CheckpointOption = None,
    n: Annotated[Optional[int], typer.Option("--n", "-n", min=1, max=100_000_000, help="How many images (default: 64; with --label all, per class: 8).", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, max=MAX_SEED, help="Seed of the z stream; the same seed gives the same images (default: random, printed).", show_default=False)] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Render these seeds' own latents, e.g. 0-24 or 3,7,42; files are named seed0042.png.", show_default=False)] = None,
    label: Annotated[Optional[str], typer.Option(help="Conditional models: a class name or index, or 'all' for a grid with one row per class.", show_default=False)] = None,
    per_class: Annotated[Optional[int], typer.Option(min=1, max=1_000_000, help="Conditional models: this many images per class into --outdir/<class>/ (an ImageFolder tree).", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Grid PNG to write.")] = Path("samples.png"),
    out_dir: Annotated[Optional[Path], typer.Option("--outdir", "--out-dir", "-d", help="Write one PNG per image into this folder instead of a grid (--out-dir: the old spelling).", show_default=False)] = None,
    nrow: Annotated[Optional[int], typer.Option(min=1, help="Images per grid row (default: square-ish; a row per class with --label all).", show_default=False)] = None,
    upscale: Annotated[Optional[Path], typer.Option(help="Upscale every image with this upscaler checkpoint or run (srcnn, upgan).", show_default=False)] = None,
    truncation: Annotated[Optional[float], typer.Option(min=0.0, max=2.0, help="stylegan: pull styles towards the average, e.g. 0.7 (1: off; lower: sharper, less varied).", show_default=False)] = None,
    overwrite: OverwriteOption = False,
    skip_existing: SkipExistingOption = False,
    ema: EmaOption = True,
    device: DeviceOption = Device.auto,
) -> None:
    """Generate images from a trained generator.

    Examples: gancli sample --checkpoint runs/r1 --n 25 --seed 7 --out digits.png;
    gancli sample --seeds 0-24; gancli sample --label all; gancli sample --per-class 600 --outdir aug/
    """
    import random
    import time

    from gancli.use import sampling
    from gancli.store.files import check_output, check_room, remove_orphans
    from gancli.data.images import check_writable
    from gancli.use.labels import ALL, parse_label
    from gancli.use.latent import parse_seeds

    if seeds is not None and (seed is not None or n is not None):
        raise UsageError("--seeds names every image itself; drop --n and --seed, or drop --seeds.")
    if per_class is not None and (out_dir is None or label is not None or seeds is not None or n is not None):
        raise UsageError("--per-class writes an ImageFolder tree: give it with --outdir DIR and without --n, --label or --seeds.")
    seed_list = parse_seeds(seeds) if seeds is not None else None
    model, generator = _open_generator(checkpoint, device, ema, upscale, truncation)
    config = model.config
    if (label is not None or per_class is not None) and not model.arch.conditional:
        raise UsageError(f"'{model.path}' is unconditional; drop {'--label' if label is not None else '--per-class'} or train with --arch cdcgan or cgan.")
    class_index = None if label is None else ALL if label.lower() == ALL else parse_label(label, config.class_names)
    given_seed = seed
    seed = random.randrange(2**31) if seed is None else seed
    existing = _existing_policy(overwrite, skip_existing, out_dir)
    check_writable(out_dir if out_dir is not None else out.parent)
    total = sampling.image_count(config, n, class_index, seed_list, per_class)
    if out_dir is None:
        check_output(out)
    else:
        remove_orphans(out_dir, depth=1)  # the temporary files of an export that was killed (class folders are one down)
        check_room(out_dir, total, sampling.file_bytes(config, generator))
    started = time.perf_counter()
    from gancli.cli.progress import work

    tally = sampling.Tally()
    try:
        if per_class is not None:
            with work(total, "Sampling") as advance:
                count = sampling.export_image_folder(generator, config, per_class, seed, model.device, out_dir, advance, existing, tally)
            what = f"{per_class} images for each of {config.num_classes} classes to {out_dir}/<class>/ (seed {seed})"
        elif seed_list is not None:
            count, what = sampling.write_seeds(generator, config, seed_list, model.device, class_index, out, out_dir, nrow, existing, tally)
        else:
            with work(total, "Sampling") as advance:
                count, what = sampling.write_stream(generator, config, n, seed, model.device, class_index, out, out_dir, nrow, advance, existing, tally)
    except KeyboardInterrupt:
        if out_dir is None:
            raise
        again = [a for a in _ARGV if a != "--overwrite"] + (["--seed", str(seed)] if given_seed is None and seed_list is None else [])
        again += [] if "--skip-existing" in again else ["--skip-existing"]
        raise Interrupted(f"Stopped after writing {tally.written:,} of {total:,} images to {out_dir}/ (each file is whole); continue with: gancli {' '.join(again)}") from None
    if tally.skipped:
        what += f"; kept {tally.skipped:,} existing file(s)"
    seconds = time.perf_counter() - started
    typer.echo(f"Wrote {what} in {seconds:.2f} s, {count / max(seconds, 1e-9):,.0f} images/s, from {model.path}")
    if model.arch.conditional and label is None and per_class is None:
        typer.echo(f"Labels: every class in turn ({', '.join(config.class_names)}); pick one with --label.")


def _existing_policy(overwrite: bool, skip_existing: bool, out_dir: Path | None) -> str:
    """What --overwrite and --skip-existing ask for files already in --outdir: refuse, overwrite or skip."""
    if overwrite and skip_existing:
        raise UsageError("Give --overwrite (replace existing files) or --skip-existing (keep them), not both.")
    if (overwrite or skip_existing) and out_dir is None:
        raise UsageError(f"{'--overwrite' if overwrite else '--skip-existing'} is about files in --outdir; give --outdir DIR or drop it.")
    return "overwrite" if overwrite else "skip" if skip_existing else "refuse"


def _open_generator(checkpoint: Path | None, device: Device, ema: bool, upscale: Path | None = None, truncation: float | None = None):
    """(the loaded model, the network to sample from): truncated and followed by an upscaler when asked."""
    from gancli.use.loading import open_model

    model = open_model(checkpoint, "generator", device.value, ema)
    generator = model.net
    if truncation is not None:
        if not model.arch.truncation:
            raise UsageError(f"--truncation needs a style-based generator; '{model.path}' is {model.config.arch} (train one with --arch stylegan).")
        generator.truncation = truncation
    if upscale is not None:
        from gancli.use.upscaling import UpscaledGenerator

        upscaler = open_model(upscale, "upscaler", device.value)
        generator = UpscaledGenerator(generator, upscaler.net, upscaler.config.channels, upscaler.config.scale)
    return model, generator


@app.command()
def interpolate(
    seeds: Annotated[list[int], typer.Argument(help="Two or more seeds to walk through, in order.", show_default=False)],
    steps: Annotated[int, typer.Option("--frames", "--steps", min=2, max=1000, help="Images per segment in the grid, both ends included (--steps: the old spelling).")] = 8,
    method: Annotated[Method, typer.Option(help="slerp follows the sphere where Gaussian z live; lerp is a straight line.")] = Method.slerp,
    checkpoint: CheckpointOption = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Grid PNG to write: one row per segment (default: walk.png when no --gif or --video is given).", show_default=False)] = None,
    gif: Annotated[Optional[Path], typer.Option(help="Also write an animated GIF of the walk.", show_default=False)] = None,
    video: Annotated[Optional[Path], typer.Option(help="Also write an H.264 MP4 of the walk (needs: pip install av).", show_default=False)] = None,
    gif_steps: Annotated[int, typer.Option(min=2, max=1000, help="Frames per segment in the GIF and video, both ends included.")] = 24,
    fps: Annotated[float, typer.Option(min=0.1, max=60.0, help="GIF and video frames per second.")] = 12.0,
    loop: Annotated[bool, typer.Option("--loop/--no-loop", help="Walk back to the first seed at the end.")] = False,
    label: Annotated[Optional[str], typer.Option(help="Conditional models: the class to hold fixed (default: the first class).", show_default=False)] = None,
    labels: Annotated[Optional[str], typer.Option(help="Conditional models: one class per seed, e.g. --labels 3 8 (or 3,8); the class embedding moves too.", show_default=False)] = None,
    mix: Annotated[Optional[int], typer.Option(min=0, max=MAX_SEED, help="stylegan: instead of a walk, a style-mixing grid: per seed, its image, its coarse styles with this seed's fine ones, and this seed's image.", show_default=False)] = None,
    mix_layer: Annotated[Optional[int], typer.Option(min=1, help="--mix: the first styled layer that takes the fine seed's style (default 3: after 8x8's first convolution).", show_default=False)] = None,
    ema: EmaOption = True,
    device: DeviceOption = Device.auto,
) -> None:
    """Walk the latent space through seeds: a grid with one row per segment, optionally a GIF.

    Example: gancli interpolate 1 2 3 --frames 8 --out walk.png --gif walk.gif;
    stylegan: gancli interpolate 1 2 3 --mix 7 --out mixing.png
    """
    from gancli.use import sampling
    from gancli.store.files import check_output
    from gancli.data.images import check_writable, save_gif, save_grid
    from gancli.use.video import check_video_support, save_video

    if len(seeds) < 2 and mix is None:
        raise UsageError("interpolate needs at least two seeds, e.g. gancli interpolate 1 2.")
    if video is not None:
        check_video_support()  # before any work: say what is missing at once
    if any(not 0 <= s <= MAX_SEED for s in seeds):
        raise UsageError(f"Seeds are whole numbers from 0 to {MAX_SEED}.")
    if label is not None and labels is not None:
        raise UsageError("Give --label (one class throughout) or --labels (one per seed), not both.")
    if out is None and (mix is not None or (gif is None and video is None)):
        out = Path("walk.png")  # nothing named: one default output, said below
    for path, what in ((out, "--out"), (gif, "--gif"), (video, "--video")):
        if path is not None:
            check_output(path, what)
            check_writable(path.parent)
    model, generator = _open_generator(checkpoint, device, ema)
    if mix is not None:
        return _mixing_grid(model, seeds, mix, mix_layer, out)
    keyframes = seeds + [seeds[0]] if loop else list(seeds)
    classes = _walk_classes(model, label, labels, len(seeds), loop)
    if out is not None:
        images = sampling.walk(generator, model.config, keyframes, steps, method.value, model.device, classes)
        save_grid(images, out, nrow=steps)
        typer.echo(f"Wrote {out}: {len(keyframes) - 1} row(s) of {steps} images ({method.value}) through seeds {', '.join(map(str, keyframes))}")
    if gif is not None or video is not None:
        count = sampling.walk_length(len(keyframes), gif_steps)
        for path, save in ((gif, save_gif), (video, save_video)):
            if path is not None:  # frames made and encoded a batch at a time: a long walk never sits in memory
                save(sampling.walk_batches(generator, model.config, keyframes, gif_steps, method.value, model.device, classes), path, fps)
                typer.echo(f"Wrote {path}: {count} frames at {fps:g} fps")
    if classes is not None and labels is None:
        typer.echo(f"Label: {model.config.class_names[classes[0]]} throughout" + ("" if label else " (the first class; pick one with --label)"))


def _mixing_grid(model, seeds: list[int], mix: int, mix_layer: int | None, out: Path) -> None:
    from gancli.use import sampling
    from gancli.data.images import check_writable, save_grid

    if not model.arch.mixing:
        raise UsageError(f"--mix needs a style-based generator; '{model.path}' is {model.config.arch} (train one with --arch stylegan).")
    if mix_layer is not None and mix_layer >= model.net.num_styles:
        raise UsageError(f"--mix-layer {mix_layer} is past the last styled layer; use 1 to {model.net.num_styles - 1}.")
    check_writable(out.parent)
    save_grid(sampling.style_mixing_grid(model.net, model.config, list(seeds), mix, model.device, mix_layer), out, nrow=3)
    typer.echo(f"Wrote {out}: a row per seed ({', '.join(map(str, seeds))}): its image, its coarse styles with seed {mix}'s fine ones, seed {mix}'s image")


def _walk_classes(model, label: str | None, labels: str | None, count: int, loop: bool) -> list[int] | None:
    """One class per keyframe for conditional generators (None for unconditional ones)."""
    from gancli.use.labels import parse_label, parse_label_list

    if not model.arch.conditional:
        if label is not None or labels is not None:
            raise UsageError(f"'{model.path}' is unconditional; drop --label/--labels or train with --arch cdcgan or cgan.")
        return None
    names = model.config.class_names
    if labels is not None:
        classes = parse_label_list(labels, names)
        if len(classes) != count:
            raise UsageError(f"--labels gives {len(classes)} classes for {count} seeds; give one class per seed.")
    else:
        classes = [parse_label(label, names) if label is not None else 0] * count
    return classes + [classes[0]] if loop else classes


@app.command("eval")
def evaluate(
    run: Annotated[Optional[Path], typer.Argument(help="Generator checkpoint or run directory (default: the newest run under runs/); or give it as --checkpoint.", show_default=False)] = None,
    checkpoint: CheckpointOption = None,
    n: Annotated[int, typer.Option("--n", "-n", min=10, max=1_000_000, help="Images to generate and compare with as many real ones.")] = 10_000,
    extractor: Annotated[Extractor, typer.Option(help="Feature space: gancli's dataset classifier (offline) or Inception-v3.")] = Extractor.classifier,
    classifier: Annotated[Optional[Path], typer.Option(help="Classifier run or checkpoint (default: the most accurate one under runs/ trained on the same data).", show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option(min=1, max=1024, metavar="N", help="PyTorch CPU threads (default: the usable CPUs less the load at start; the same bytes need the same N).", show_default=False, rich_help_panel=TRAINING)] = None,
    force: Annotated[bool, typer.Option("--force", help="Score with a classifier below the accuracy that makes scores meaningful (80% held out).")] = False,
    inception_weights: Annotated[Optional[Path], typer.Option(help="torchvision's inception_v3_google-0cc3c7bd.pth (default: the torch hub cache).", show_default=False)] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed of the generated images.")] = 0,
    ema: EmaOption = True,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the dataset is found (default: the run's).", show_default=False)] = None,
    device: DeviceOption = Device.auto,
) -> None:
    """Score a generator: FID, KID, precision/recall and class coverage against the real data.

    Example: gancli train mnist --arch classifier; gancli eval runs/mnist-dcgan-... --n 10000
    """
    from gancli.evaluation.evaluate import evaluate as run_evaluation
    from gancli.evaluation.features import open_extractor
    from gancli.use.loading import open_model

    from gancli.data.datasets import trust_data_dir

    trust_data_dir(data_dir)
    if run is not None and checkpoint is not None:
        raise UsageError("Give the checkpoint once: as RUN or as --checkpoint, not both.")
    model = open_model(run or checkpoint, "generator", device.value, ema)
    config = model.config.with_changes(data_dir=str(data_dir)) if data_dir is not None else model.config
    features = open_extractor(extractor.value, config.dataset, classifier, inception_weights, model.device, force, Path(config.data_dir) if config.data_dir else None)
    from gancli.cli.progress import work

    with work(n, f"Generating and scoring {n:,} images") as advance:
        result = run_evaluation(model.net, config, features, n, seed, model.device, config.data_dir or None, advance)
    _print_evaluation(model, result, n, seed)


def _print_evaluation(model, result, n: int, seed: int) -> None:
    """The scores next to the real-data floor, and a record appended to the run's eval.json."""
    import time

    from gancli.evaluation.evaluate import append_record, metric_text
    from gancli.store.runs import Run, run_dir_of

    config = model.config
    typer.echo(f"Evaluated {model.path} (step {model.step}, {config.arch}, {model.weights} weights) with {n:,} generated images in {result.seconds:.1f} s")
    typer.echo(f"Extractor:  {result.extractor}")
    typer.echo(f"Real data:  {result.reference}")
    typer.echo(f"{'metric':<17}{'generated':>11}{'real floor':>12}")
    for name, value in result.scores.items():
        if name in ("KID_std", "class_KL_max"):
            continue
        floor = result.floor.get(name)
        shown = "KID (MMD^2)" if name == "KID" else name
        typer.echo(f"{shown:<17}{metric_text(name, value, config):>11}{metric_text(name, floor, config) if floor is not None else '-':>12}")
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "checkpoint": str(model.path), "step": model.step, "n": n, "seed": seed,
              "weights": model.weights, "extractor": result.extractor, "real_data": result.reference,
              "scores": result.scores, "real_floor": result.floor}  # fmt: skip
    eval_json = Run(run_dir_of(model.path)).evaluations
    try:
        moved = append_record(eval_json, record)
    except (OSError, GancliError) as exc:
        typer.echo(f"Could not append to {eval_json} ({getattr(exc, 'strerror', None) or exc}); the scores above are not saved.", err=True)
        return
    if moved is not None:
        typer.echo(f"{eval_json} was not a list of evaluations; kept it as {moved} and started a new one.", err=True)
    typer.echo(f"Appended to {eval_json}")


@app.command()
def upscale(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Image files, folders or glob patterns (grids too).", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--outdir", "--out", "-o", help="Folder for the upscaled PNGs (same names); --out is the old spelling.")] = Path("upscaled"),
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Upscaler checkpoint or run directory (default: the newest srcnn/upgan run under runs/).", show_default=False)] = None,
    method: Annotated[UpscaleMethod, typer.Option(help="model, or a classical resampling filter.")] = UpscaleMethod.model,
    scale: Annotated[Optional[int], typer.Option("--scale", "-s", min=2, max=16, help="Output size / input size, 2 to 16 (default: the model's; 2 for bicubic/lanczos). A x2 model reaches 4, 8, 16 by repeating.", show_default=False)] = None,
    benchmark: Annotated[Optional[str], typer.Option(help="Instead: downscale these high-res images (a folder, or mnist / fashion-mnist / cifar10 for its test split), restore them, and print PSNR and SSIM against bicubic.", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="--benchmark: use only the first N images.", show_default=False)] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="--benchmark on a named dataset: where to find it.", show_default=False)] = None,
    overwrite: OverwriteOption = False,
    skip_existing: SkipExistingOption = False,
    device: DeviceOption = Device.auto,
) -> None:
    """Make images larger with a trained upscaler (srcnn, upgan) or a classical filter.

    Examples: gancli upscale samples.png --model runs/sr --outdir big/; gancli upscale --benchmark fashion-mnist --limit 1000
    """
    import math

    from gancli.device import resolve_device
    from gancli.store.files import existing_names, refuse_existing, refuse_overwriting_inputs, refuse_shared_outputs, remove_orphans
    from gancli.data.images import check_writable, expand_image_paths
    from gancli.use.loading import open_model
    from gancli.use.upscaling import upscale_files

    if benchmark is None and not inputs:
        raise UsageError("Give images to upscale (files, folders or globs), or --benchmark DIR_OR_DATASET.")
    if benchmark is not None and inputs:
        raise UsageError("--benchmark measures on its own images; drop the INPUTS or drop --benchmark.")
    upscaler, passes, model_scale, source = None, 1, scale or 2, method.value
    if method == UpscaleMethod.model:
        upscaler = open_model(model, "upscaler", device.value)
        model_scale = upscaler.config.scale
        passes = round(math.log(scale or model_scale, model_scale))
        if model_scale**passes != (scale or model_scale):
            raise UsageError(f"--scale {scale} cannot be reached with the x{model_scale} model '{upscaler.path}'; use a power of {model_scale}.")
        source = f"{upscaler.config.arch} x{model_scale} from {upscaler.path}" + (f", applied {passes} times" if passes > 1 else "")
    elif model is not None:
        raise UsageError(f"--model goes with --method model; drop it to use {method.value}.")
    if benchmark is not None:
        return _upscale_benchmark(upscaler, passes, benchmark, data_dir, limit, source)
    existing = _existing_policy(overwrite, skip_existing, out)
    paths = expand_image_paths(inputs)
    outputs = [out / f"{p.stem}.png" for p in paths]
    refuse_overwriting_inputs(outputs, paths)
    refuse_shared_outputs(outputs, paths)
    check_writable(out)
    remove_orphans(out, depth=0)  # the temporary files of an upscale that was killed
    found = sorted(existing_names(out) & {o.name for o in outputs})
    refuse_existing(out, found, existing)
    if existing == "skip":
        kept = {out / name for name in found}
        paths, outputs = [p for p, o in zip(paths, outputs) if o not in kept], [o for o in outputs if o not in kept]
        if not paths:
            typer.echo(f"Nothing to do: all {len(found)} upscaled image(s) are already in {out}/ (--skip-existing).")
            return
    net, channels = (upscaler.net, upscaler.config.channels) if upscaler else (None, 0)
    dev = upscaler.device if upscaler else resolve_device(device.value)
    from gancli.data.images import image_size
    from gancli.cli.progress import work
    from gancli.use.upscaling import work_pixels

    from gancli.use.upscaling import check_output_size

    sizes = [image_size(p) for p in paths]
    for w, h in sizes:
        check_output_size(h, w, model_scale**passes)  # every image, from its header, before any work
    total = sum(work_pixels(h, w, passes, model_scale) if net is not None else h * w for w, h in sizes)
    with work(total, f"Upscaling {len(paths)} image(s) x{model_scale**passes}") as advance:
        upscale_files(paths, outputs, model_scale**passes, net, channels, passes, model_scale, method.value, dev, advance)
    kept = f"; kept {len(found)} existing" if existing == "skip" and found else ""
    typer.echo(f"Wrote {len(paths)} image(s) x{model_scale**passes} to {out}/ ({source}){kept}")


def _upscale_benchmark(upscaler, passes: int, source: str, data_dir: Path | None, limit: int | None, label: str) -> None:
    from gancli.use.upscaling import benchmark, benchmark_images

    if upscaler is None:
        raise UsageError("--benchmark compares a trained upscaler with bicubic; give --model (and no --method).")
    from gancli.data.datasets import trust_data_dir

    trust_data_dir(data_dir)
    images, what = benchmark_images(source, data_dir, limit)
    scale = upscaler.config.scale
    smallest = 2 * scale**passes
    too_small = sum(1 for image in images if min(image.shape[-2:]) < smallest)
    if too_small:
        raise UsageError(f"{too_small} of the {len(images)} benchmark images are too small to downscale x{scale**passes}; each needs at least {smallest}x{smallest} pixels.")
    scores = benchmark(upscaler.net, upscaler.config.channels, scale, passes, images, upscaler.device)
    typer.echo(f"Benchmark: {len(images)} images ({what}) downscaled x{scale**passes} with antialiased bicubic, then restored")
    typer.echo(f"{'method':<28}{'PSNR (dB)':>10}{'SSIM':>9}")
    for name, shown in (("bicubic", "bicubic"), ("model", label.split(" from ")[0])):
        typer.echo(f"{shown:<28}{scores[name]['PSNR']:>10.2f}{scores[name]['SSIM']:>9.4f}")
    gain_p = scores["model"]["PSNR"] - scores["bicubic"]["PSNR"]
    gain_s = scores["model"]["SSIM"] - scores["bicubic"]["SSIM"]
    typer.echo(f"{'model - bicubic':<28}{gain_p:>+10.2f}{gain_s:>+9.4f}")


@app.command()
def data(
    folder: Annotated[Path, typer.Argument(help="A folder of images (sub-folders are classes).", show_default=False)],
    image_size: Annotated[int, typer.Option(min=4, max=512, help="Side to decode to, as gancli train --image-size.")] = 64,
    workers: Annotated[Optional[int], typer.Option(min=1, max=256, help="Decoding processes (default: one per core).", show_default=False)] = None,
) -> None:
    """Decode a folder of images once into gancli's cache, so that training on it starts at once.

    Example: gancli data photos/ --image-size 64; then gancli train photos/ --image-size 64
    """
    import time

    from gancli.data.datasets import check_dataset, list_images
    from gancli.store.files import printable
    from gancli.cli.progress import work
    from gancli.data.folder_cache import decoded_folder
    from gancli.data.mapped import default_budget, format_size

    if not folder.is_dir():
        raise UsageError(f"'{folder}' is not a folder; give a folder of images.")
    check_dataset(str(folder))
    paths = list_images(folder)
    if not paths:
        raise UsageError(f"No images found in '{folder}'; gancli reads .png, .jpg, .jpeg, .webp and .bmp files.")
    started = time.perf_counter()
    decoded = decoded_folder(folder, paths, image_size, workers, progress=work)
    n, channels = decoded.images.shape[0], decoded.images.shape[1]
    how = "Already decoded (the folder is unchanged):" if decoded.hit else f"Decoded in {time.perf_counter() - started:.1f} s:"
    if decoded.rebuilt:
        typer.echo(f"Note: the cache was damaged ({decoded.rebuilt}); decoded the images again.")
    names = decoded.class_names
    classes = f"{len(names)} {'class' if len(names) == 1 else 'classes'} ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})" if names else "no classes"
    typer.echo(f"{how} {n:,} {'image' if n == 1 else 'images'} of '{folder}' at {image_size}x{image_size}, {channels} channel(s), {classes}")
    if decoded.skipped:
        names = ", ".join(printable(n) for n in decoded.skipped[:20]) + (f" and {len(decoded.skipped) - 20} more" if len(decoded.skipped) > 20 else "")
        typer.echo(f"Skipped {len(decoded.skipped)} unreadable file(s): {names}")
    size, budget = decoded.images.nbytes, default_budget()
    held = "fits in memory: training holds it" if size <= budget else "over the memory budget: training reads it by batch"
    typer.echo(f"Cache:      {decoded.path} ({format_size(size)}; {held}; the default --memory-budget here is {format_size(budget)})")
    typer.echo(f"Next:       gancli train {folder} --image-size {image_size}")


@app.command()
def grid(
    images: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Grid PNG to write.")] = Path("grid.png"),
    nrow: Annotated[Optional[int], typer.Option(min=1, help="Images per row (default: square-ish).", show_default=False)] = None,
    padding: Annotated[int, typer.Option(min=0, max=256, help="Pixels between images.")] = 2,
) -> None:
    """Arrange images into one grid PNG (sizes follow the first image).

    Example: gancli grid runs/r1/samples/*.png --out progress.png --nrow 4
    """
    from gancli.store.files import check_output, refuse_overwriting_inputs
    from gancli.data.images import check_writable, expand_image_paths, grid_layout, grid_of, grid_of_files

    paths = expand_image_paths(images)
    refuse_overwriting_inputs([out], paths)
    check_output(out)
    check_writable(out.parent)
    cell, first = grid_of_files(paths, out, nrow=nrow, padding=padding)
    shrunk = f", cells {cell[0]}x{cell[1]} (the first image is {first[0]}x{first[1]})" if cell != first else ""
    typer.echo(f"Wrote {grid_of(len(paths))} ({grid_layout(len(paths), nrow)}{shrunk}) to {out}")


# --- running the app ---------------------------------------------------------------------------


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status; errors become one line on stderr."""
    try:
        from typer._click import exceptions as click_errors  # typer >= 0.20 vendors click
    except ImportError:
        from click import exceptions as click_errors

    argv = list(argv if argv is not None else sys.argv[1:]) or ["--help"]  # bare `gancli`: the help, no error line
    _ARGV[:] = argv
    debug = os.environ.get("GANCLI_DEBUG") == "1" or "--debug" in argv
    try:
        command = typer.main.get_command(app)
        make_readable(command)
        result = command.main(args=_gather_labels(argv), prog_name="gancli", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except (typer.Exit, getattr(click_errors, "Exit", typer.Exit)) as exc:
        return exc.exit_code
    except click_errors.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "gancli"
        if _first_rank():
            print(f"Error: {_did_you_mean(exc.format_message())} (see '{command} --help')", file=sys.stderr)
        return 2
    except (typer.Abort, getattr(click_errors, "Abort", typer.Abort), KeyboardInterrupt) as exc:
        if isinstance(exc.__context__, EOFError) and not isinstance(exc, KeyboardInterrupt):  # click turns EOFError into Abort
            return _bug(exc.__context__, debug)
        print("Interrupted.", file=sys.stderr)
        return 130
    except GancliError as exc:
        if debug:
            raise
        if isinstance(exc, UsageError) and not _first_rank():
            return exc.exit_code  # every torchrun process makes the same usage error: rank 0 says it once
        rank = "" if _first_rank() else f"[rank {os.environ['RANK']}] "
        print(f"Error: {rank}{exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # unexpected: a bug, said in one line with where the traceback went
        return _bug(exc, debug)


def _bug(exc: BaseException, debug: bool) -> int:
    if debug:
        raise exc
    from gancli.errors import save_traceback
    from gancli.store.files import printable

    where = save_traceback(exc)
    how = f"the full traceback is in {where}" if where else "run again with --debug to see the traceback"
    first = printable((str(exc).strip().splitlines() or [""])[0][:200])
    print(f"Error: unexpected {type(exc).__name__} ({first}); this is a bug in gancli: {how}.", file=sys.stderr)
    return 1


def _did_you_mean(message: str) -> str:
    """Click's "'dcgann' is not one of 'gan', 'dcgan', ..." with the nearest choice named."""
    import difflib
    import re

    message = message.replace("Value error, ", "")
    match = re.search(r"'([^']*)' is not one of (.*)", message)
    if match:
        close = difflib.get_close_matches(match.group(1).lower(), re.findall(r"'([^']*)'", match.group(2)), n=1, cutoff=0.6)
        if close:
            message = message.rstrip(".") + f"; did you mean '{close[0]}'?"
    return message


_ARGV: list[str] = []  # the command line being run: train --processes starts it again in each process


def _without_option(argv: list[str], flag: str) -> list[str]:
    """argv without `flag VALUE` or `flag=VALUE`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def _first_rank() -> bool:
    """Not under torchrun, or its rank 0."""
    return os.environ.get("RANK", "0") == "0"


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
