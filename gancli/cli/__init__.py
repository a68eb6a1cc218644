"""The `gancli` command line: a thin Typer layer over gancli's API (gancli.api). Heavy imports live in the commands.

Each command parses its options, makes one API call and prints what was written. `gancli train`'s
flags come from the one table of TrainConfig fields (gancli.config, through gancli.cli.options);
options that several commands share are declared once below.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gancli import __version__
from gancli.cli.options import FlagValues, choices, option, switch, table_options
from gancli.config import MAX_SEED, TRAINING
from gancli.errors import GancliError, Interrupted, UsageError
from gancli.models import ARCHITECTURES
from gancli.training.recipes import RECIPES

app = typer.Typer(
    name="gancli",
    help="Train GANs and turn them into images: train, sample, interpolate, eval, upscale, grid; data decodes a folder once.",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": []},  # each command declares --help/-h below: a switch, shown without a type
)

ARCH_LIST = "Architectures (--arch):\n" + "\n".join(f"[bold]{a.name}[/bold]: {a.summary}" for a in ARCHITECTURES.values())
RecipeName = choices("RecipeName", *RECIPES)
RECIPE_HELP = "Measured settings for new runs; your own flags win. " + "; ".join(f"{r.name}: {r.summary}" for r in RECIPES.values()) + "."
Device = choices("Device", "auto", "cpu", "cuda", "mps")
Method = choices("Method", "slerp", "lerp")
Extractor = choices("Extractor", "classifier", "inception")
UpscaleMethod = choices("UpscaleMethod", "model", "bicubic", "lanczos")


# --- options several commands share ------------------------------------------------------------


def _show_help(ctx: typer.Context, value: bool) -> None:
    if value:
        typer.echo(ctx.get_help(), nl=False)
        raise typer.Exit()


HelpOption = Annotated[bool, switch("--help", "-h", help="Show this message and exit.", is_eager=True, expose_value=False, callback=_show_help)]
DeviceOption = Annotated[Device, typer.Option(help="Where to run the networks (under torchrun: one GPU per process, or the CPU).")]
CheckpointOption = Annotated[Optional[Path], option("--checkpoint", "-c", help="Checkpoint file or run directory (default: the newest run under runs/).", show_default=False, metavar="RUN")]
EmaOption = Annotated[bool, switch("--ema/--no-ema", help="Runs trained with --ema: use the moving-average weights (or the last step's).", show_default=True)]
TruncationOption = Annotated[Optional[float], option(low=0.0, high=2.0, metavar="PSI", help="stylegan: pull styles towards the average, e.g. 0.7 (1: off; lower: sharper, less varied).", show_default=False)]
OverwriteOption = Annotated[bool, switch("--overwrite", help="Replace files of the same names already in --outdir (default: refuse).")]
SkipExistingOption = Annotated[bool, switch("--skip-existing", help="Keep files of the same names already in --outdir and write the rest (continues a stopped export).")]
ThreadsOption = Annotated[Optional[int], option(low=1, high=1024, metavar="N", help="PyTorch CPU threads (default: the usable CPUs less the load at start; the same bytes need the same N).", show_default=False, rich_help_panel=TRAINING)]


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
    debug: Annotated[bool, switch("--debug", help="Show full tracebacks on errors (or set GANCLI_DEBUG=1).")] = False,
    version: Annotated[bool, switch("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    help: HelpOption = False,
) -> None:
    """gancli: from a dataset to trained generators and images in a handful of commands."""
    if debug:
        os.environ["GANCLI_DEBUG"] = "1"


@app.command(epilog=ARCH_LIST, cls=FlagValues)  # --augment alone means --augment diff
@table_options  # DATASET, --arch and every other setting of the run: one option per TrainConfig field (gancli.config)
def train(
    ctx: typer.Context,
    device: Annotated[Device, typer.Option(help="Where to train (under torchrun: one GPU per process, or the CPU).", rich_help_panel=TRAINING)] = Device.auto,
    processes: Annotated[int, option(low=1, high=1024, metavar="N", help="Train in N processes on this machine, as torchrun --nproc-per-node N does (one per GPU, or CPU processes).", rich_help_panel=TRAINING)] = 1,
    time_limit: Annotated[Optional[float], option(low=0.01, metavar="MINUTES", help="Stop after this many minutes (saved like a finished run).", show_default=False, rich_help_panel=TRAINING)] = None,
    compile: Annotated[bool, switch("--compile/--no-compile", help="torch.compile the models (slow to start; pays off on GPUs, not measured faster on CPUs).", rich_help_panel=TRAINING)] = False,
    resume: Annotated[Optional[Path], option(metavar="RUN", help="Continue a run: its directory or a checkpoint file.", show_default=False, rich_help_panel=TRAINING)] = None,
    memory_budget: Annotated[Optional[str], option(metavar="SIZE", help="Most memory a folder's images may take, e.g. 8G or 500M (default: half the RAM; on CUDA, half the GPU's free memory); larger folders are read by batch from their cache.", show_default=False, rich_help_panel=TRAINING)] = None,
    threads: ThreadsOption = None,
    force: Annotated[bool, switch("--force", help="Start more --processes than this machine has GPUs or usable CPUs.", rich_help_panel=TRAINING)] = False,
    recipe: Annotated[Optional[RecipeName], typer.Option(help=RECIPE_HELP, show_default=False, rich_help_panel="Recipe")] = None,
    outdir: Annotated[Optional[Path], option("--outdir", "--out", "-o", metavar="PATH", help="Run directory (default: runs/<dataset>-<arch>-<time>); --out is the old spelling.", show_default=False, rich_help_panel="Output")] = None,
    tensorboard: Annotated[bool, switch("--tensorboard/--no-tensorboard", help="Also log every metrics row and sample grid to RUN/tensorboard/ (needs: pip install tensorboard).", rich_help_panel="Output")] = False,
    help: HelpOption = False,
    **options,
) -> None:
    """Train a GAN (or an upscaler, or the dataset classifier); writes checkpoints, sample grids and metrics.csv.

    Example: gancli train mnist --arch dcgan --epochs 5. Several GPUs: torchrun --nproc-per-node N -m gancli train ...
    """
    from gancli import api
    from gancli.training.distributed import die_with_launcher

    given = {name for name in ctx.params if ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")}
    if processes > 1 and "RANK" not in os.environ:  # start the processes; each runs this command
        from gancli.training.start import launch_processes

        raise typer.Exit(launch_processes(ctx.params, given, processes, force, _without_option(_ARGV, "--processes")))
    die_with_launcher()
    with _training_display() as display:
        result = api.train_with(ctx.params, given, display)
    _report_training(result, time_limit)


@contextlib.contextmanager
def _training_display():
    from gancli.cli.progress import TrainingDisplay

    with TrainingDisplay() as display:
        yield display


def _report_training(result, time_limit: float | None) -> None:
    """Where everything went and what to run next; rank 0 speaks for every torchrun process."""
    from gancli.cli.progress import format_stats
    from gancli.models import KINDS
    from gancli.store.runs import Run
    from gancli.training.distributed import is_main_process

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
    _say(f"Next:       {KINDS[result.kind].next_step.format(run=run_dir, dataset=result.dataset)}")


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
    n: Annotated[Optional[int], option("--n", "-n", low=1, high=100_000_000, metavar="N", help="How many images (default: 64; with --label all, per class: 8).", show_default=False)] = None,
    seed: Annotated[Optional[int], option(low=0, high=MAX_SEED, metavar="SEED", help="Seed of the z stream; the same seed gives the same images (default: random, printed).", show_default=False)] = None,
    seeds: Annotated[Optional[str], option(metavar="SEEDS", help="Render these seeds' own latents, e.g. 0-24 or 3,7,42; files are named seed0042.png.", show_default=False)] = None,
    label: Annotated[Optional[str], option(metavar="CLASS", help="Conditional models: a class name or index, or 'all' for a grid with one row per class.", show_default=False)] = None,
    per_class: Annotated[Optional[int], option(low=1, high=1_000_000, metavar="N", help="Conditional models: this many images per class into --outdir/<class>/ (an ImageFolder tree).", show_default=False)] = None,
    out: Annotated[Path, option("--out", "-o", metavar="PATH", help="Grid PNG to write.")] = Path("samples.png"),
    out_dir: Annotated[Optional[Path], option("--outdir", "--out-dir", "-d", metavar="DIR", help="Write one PNG per image into this folder instead of a grid (--out-dir: the old spelling).", show_default=False)] = None,
    nrow: Annotated[Optional[int], option(low=1, metavar="N", help="Images per grid row (default: square-ish; a row per class with --label all).", show_default=False)] = None,
    upscale: Annotated[Optional[Path], option(metavar="RUN", help="Upscale every image with this upscaler checkpoint or run (srcnn, upgan).", show_default=False)] = None,
    truncation: TruncationOption = None,
    latent: Annotated[Optional[list[Path]], option(metavar="FILE", help="Draw projected latents instead (gancli project): files or folders of them; with --outdir, DIR/NAME.png each.", show_default=False)] = None,
    force: Annotated[bool, switch("--force", help="--latent: draw latents projected with another run too.")] = False,
    overwrite: OverwriteOption = False,
    skip_existing: SkipExistingOption = False,
    ema: EmaOption = True,
    device: DeviceOption = Device.auto,
    help: HelpOption = False,
) -> None:
    """Generate images from a trained generator.

    Examples: gancli sample --checkpoint runs/r1 --n 25 --seed 7 --out digits.png;
    gancli sample --seeds 0-24; gancli sample --label all; gancli sample --per-class 600 --outdir aug/
    """
    from gancli import api
    from gancli.cli.progress import work
    from gancli.use.export import ExportStopped
    from gancli.use.latent import parse_seeds

    seed_list = parse_seeds(seeds) if seeds is not None else None
    model = api.load(checkpoint, ema, device.value, kind="generator")
    upscaler = api.load(upscale, device=device.value, kind="upscaler") if upscale is not None else None
    try:
        done = model.write_samples(out, out_dir, n=n, seed=seed, seeds=seed_list, label=label, per_class=per_class, nrow=nrow, upscaler=upscaler,
                                   truncation=truncation, existing=_existing_policy(overwrite, skip_existing), progress=work, latents=latent,
                                   force=force)  # fmt: skip
    except ExportStopped as stop:
        again = [a for a in _ARGV if a != "--overwrite"] + (["--seed", str(stop.seed)] if seed is None and seed_list is None else [])
        raise Interrupted(f"{stop}; continue with: gancli {' '.join(again + ([] if '--skip-existing' in again else ['--skip-existing']))}") from None
    typer.echo(f"Wrote {done.what} in {done.seconds:.2f} s, {done.count / max(done.seconds, 1e-9):,.0f} images/s, from {model.path}")
    for note in done.notes:
        typer.echo(note)


def _existing_policy(overwrite: bool, skip_existing: bool) -> str:
    """What --overwrite and --skip-existing ask for files already in --outdir: refuse, overwrite or skip."""
    if overwrite and skip_existing:
        raise UsageError("Give --overwrite (replace existing files) or --skip-existing (keep them), not both.")
    return "overwrite" if overwrite else "skip" if skip_existing else "refuse"


@app.command()
def interpolate(
    seeds: Annotated[list[str], typer.Argument(help="Two or more seeds or projected latent files (gancli project) to walk through, in order.", show_default=False, metavar="SEED|LATENT...")],
    steps: Annotated[int, option("--frames", "--steps", low=2, high=1000, metavar="N", help="Images per segment in the grid, both ends included (--steps: the old spelling).")] = 8,
    method: Annotated[Method, typer.Option(help="slerp follows the sphere where Gaussian z live; lerp is a straight line.")] = Method.slerp,
    checkpoint: CheckpointOption = None,
    out: Annotated[Optional[Path], option("--out", "-o", metavar="PATH", help="Grid PNG to write: one row per segment (default: walk.png when no --gif or --video is given).", show_default=False)] = None,
    gif: Annotated[Optional[Path], option(metavar="GIF", help="Also write an animated GIF of the walk.", show_default=False)] = None,
    video: Annotated[Optional[Path], option(metavar="MP4", help="Also write an H.264 MP4 of the walk (needs: pip install av).", show_default=False)] = None,
    gif_steps: Annotated[int, option(low=2, high=1000, metavar="N", help="Frames per segment in the GIF and video, both ends included.")] = 24,
    fps: Annotated[float, option(low=0.1, high=60.0, metavar="FPS", help="GIF and video frames per second.")] = 12.0,
    loop: Annotated[bool, switch("--loop/--no-loop", help="Walk back to the first seed at the end.")] = False,
    label: Annotated[Optional[str], option(metavar="CLASS", help="Conditional models: the class to hold fixed (default: the first class).", show_default=False)] = None,
    labels: Annotated[Optional[list[str]], option(metavar="CLASSES", help="Conditional models: one class per seed, e.g. --labels 3,8 (or --labels 3 --labels 8); the class embedding moves too.", show_default=False)] = None,
    mix: Annotated[Optional[int], option(low=0, high=MAX_SEED, metavar="SEED", help="stylegan: instead of a walk, a style-mixing grid: per seed, its image, its coarse styles with this seed's fine ones, and this seed's image.", show_default=False)] = None,
    mix_layer: Annotated[Optional[int], option(low=1, metavar="N", help="--mix: the first styled layer that takes the fine seed's style (default 3: after 8x8's first convolution).", show_default=False)] = None,
    out_dir: Annotated[Optional[Path], option("--outdir", "-d", metavar="DIR", help="Also write each image of the grid as its own PNG: DIR/frame0000.png ..., row by row.", show_default=False)] = None,
    truncation: TruncationOption = None,
    force: Annotated[bool, switch("--force", help="Walk through latents projected with another run too.")] = False,
    overwrite: OverwriteOption = False,
    skip_existing: SkipExistingOption = False,
    ema: EmaOption = True,
    device: DeviceOption = Device.auto,
    help: HelpOption = False,
) -> None:
    """Walk the latent space through seeds: a grid with one row per segment, optionally a GIF.

    Example: gancli interpolate 1 2 3 --frames 8 --out walk.png --gif walk.gif;
    stylegan: gancli interpolate 1 2 3 --mix 7 --out mixing.png
    """
    from gancli import api

    if len(seeds) < 2 and mix is None:
        raise UsageError("interpolate needs at least two seeds, e.g. gancli interpolate 1 2.")
    seeds = [_keyframe(s, mix is not None) for s in seeds]
    if out is None and (mix is not None or (gif is None and video is None and out_dir is None)):
        out = Path("walk.png")  # nothing named: one default output, said below
    model = api.load(checkpoint, ema, device.value, kind="generator")
    if mix is not None:
        return typer.echo(model.write_mixing(seeds, mix, out, mix_layer, truncation=truncation))
    classes = ",".join(labels) if labels is not None else None
    for line in model.write_walk(seeds, out, gif, video, outdir=out_dir, frames=steps, gif_frames=gif_steps, fps=fps, method=method.value, loop=loop,
                                 label=label, labels=classes, truncation=truncation, existing=_existing_policy(overwrite, skip_existing),
                                 force=force):  # fmt: skip
        typer.echo(line)


def _keyframe(text: str, seeds_only: bool) -> int | Path:
    """A walk's keyframe as typed: a seed, or a latent file."""
    if text.isascii() and text.isdigit():
        if int(text) > MAX_SEED:
            raise UsageError(f"Seeds are whole numbers from 0 to {MAX_SEED}.")
        return int(text)
    if seeds_only or not text.endswith(".safetensors"):
        raise UsageError(f"Invalid value for 'seeds': '{text}' is neither a seed (a whole number from 0) nor a latent file "
                         "(NAME.latent.safetensors from gancli project).")  # fmt: skip
    return Path(text)


USEFUL = "Usefulness (--usefulness)"


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    run: Annotated[Optional[Path], typer.Argument(help="Generator checkpoint or run directory (default: the newest run under runs/); or give it as --checkpoint.", show_default=False)] = None,
    checkpoint: CheckpointOption = None,
    n: Annotated[int, option("--n", "-n", low=10, high=1_000_000, metavar="N", help="Images to generate and compare with as many real ones.")] = 10_000,
    extractor: Annotated[Extractor, typer.Option(help="Feature space: gancli's dataset classifier (offline) or Inception-v3.")] = Extractor.classifier,
    classifier: Annotated[Optional[Path], option(metavar="RUN", help="Classifier run or checkpoint (default: the most accurate one under runs/ trained on the same data).", show_default=False)] = None,
    threads: ThreadsOption = None,
    force: Annotated[bool, switch("--force", help="Score with a classifier below the accuracy that makes scores meaningful (80% held out).")] = False,
    inception_weights: Annotated[Optional[Path], option(metavar="FILE", help="torchvision's inception_v3_google-0cc3c7bd.pth (default: the torch hub cache).", show_default=False)] = None,
    seed: Annotated[int, option(low=0, high=MAX_SEED, metavar="SEED", help="Seed of the generated images.")] = 0,
    ema: EmaOption = True,
    data_dir: Annotated[Optional[Path], option(metavar="DIR", help="Where the dataset is found (default: the run's).", show_default=False)] = None,
    device: DeviceOption = Device.auto,
    usefulness: Annotated[bool, switch("--usefulness", help="Instead: do the run's images help a classifier? Trains gancli's classifier on real, synthetic, and real + synthetic images; tests each on held-out real ones (conditional runs).", rich_help_panel=USEFUL)] = False,
    real: Annotated[Optional[str], option(metavar="DATA", help="The real labelled training images (default: the run's data).", show_default=False, rich_help_panel=USEFUL)] = None,
    test: Annotated[Optional[str], option(metavar="DATA", help="Held-out labelled images to test on (default: the named dataset's test split).", show_default=False, rich_help_panel=USEFUL)] = None,
    per_class: Annotated[Optional[int], option(low=1, high=1_000_000, metavar="N", help="Synthetic images per class (default: as many as the real data has).", show_default=False, rich_help_panel=USEFUL)] = None,
    steps: Annotated[Optional[int], option(low=1, high=10**7, metavar="N", help="Classifier training steps of 64 images, the same for each case (default: 1,000).", show_default=False, rich_help_panel=USEFUL)] = None,
    seeds: Annotated[int, option(low=1, high=100, metavar="N", help="Repeat with N seeds (synthetic images, classifier start and batch order) for a spread.", rich_help_panel=USEFUL)] = 1,
    help: HelpOption = False,
) -> None:
    """Score a generator: FID, KID, precision/recall and class coverage against the real data; or, with --usefulness,
    whether its images help a classifier.

    Example: gancli train mnist --arch classifier; gancli eval runs/mnist-dcgan-... --n 10000
    """
    from gancli import api
    from gancli.cli.progress import work

    if run is not None and checkpoint is not None:
        raise UsageError("Give the checkpoint once: as RUN or as --checkpoint, not both.")
    _check_eval_mode(ctx, usefulness)
    if usefulness:
        result = api.usefulness(run or checkpoint, real=real, test=test, per_class=per_class, steps=steps, seeds=seeds, ema=ema, data_dir=data_dir,
                                device=device.value, threads=threads, progress=work)  # fmt: skip
        return _print_usefulness(result)
    result = api.evaluate(run or checkpoint, n=n, classifier=classifier, extractor=extractor.value, inception_weights=inception_weights, seed=seed,
                          ema=ema, data_dir=data_dir, device=device.value, force=force, threads=threads, progress=work)  # fmt: skip
    _print_evaluation(result, n)


def _check_eval_mode(ctx: typer.Context, usefulness: bool) -> None:
    """Options of the other mode are refused, not ignored."""
    typed = {name for name in ctx.params if ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")}
    scoring, useful = ("n", "extractor", "classifier", "force", "inception_weights", "seed"), ("real", "test", "per_class", "steps", "seeds")
    wrong = [name for name in (scoring if usefulness else useful) if name in typed]
    if wrong:
        flags = ", ".join("--" + name.replace("_", "-") for name in wrong)
        raise UsageError(f"{flags} {'do not apply to --usefulness' if usefulness else 'are for --usefulness'}; "
                         f"{'drop them' if usefulness else 'add --usefulness or drop them'}.")  # fmt: skip


def _print_usefulness(result) -> None:
    """(a), (b), (c) with their spread over seeds, the change from (a) to (c), and CAS per class."""
    model, config = result.model, result.model.config
    seeds = "seed 0" if len(result.seeds) == 1 else f"seeds 0-{len(result.seeds) - 1}, mean ± half the range"
    typer.echo(f"Usefulness of {model.path} (step {model.step}, {config.arch}, {model.weights} weights): gancli's classifier, "
               f"{result.steps:,} steps per case, {seeds}, in {result.seconds:.0f} s")  # fmt: skip
    typer.echo(f"Real:       {result.real_from}")
    typer.echo(f"Synthetic:  {result.per_class:,} per class ({result.per_class * config.num_classes:,} images)")
    typer.echo(f"Test:       {result.test_from} ({result.test_count:,} images)")
    names = {"real": "(a) real", "synthetic": "(b) synthetic only (CAS)", "real+synthetic": "(c) real + synthetic"}
    for case, name in names.items():
        spread = f" ± {100 * result.spread(case):.1f}" if len(result.seeds) > 1 else ""
        typer.echo(f"{name:<27}{100 * result.mean(case):6.1f}%{spread}")
    typer.echo(f"(c) - (a):  {100 * result.change:+.1f} points ({'the synthetic images helped' if result.change > 0 else 'no help'})")
    per_class = [sum(seed[k] for seed in result.class_accuracy) / len(result.class_accuracy) for k in range(config.num_classes)]
    typer.echo("CAS per class: " + ", ".join(f"{name} {100 * a:.0f}%" for name, a in zip(config.class_names, per_class)))
    if result.unsaved:
        return typer.echo(result.unsaved, err=True)
    typer.echo(f"Appended to {result.saved}")


def _print_evaluation(result, n: int) -> None:
    """The scores next to the real-data floor, and where they were saved."""
    from gancli.evaluation.evaluate import metric_text

    model, config = result.model, result.model.config
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
    if result.unsaved:
        return typer.echo(result.unsaved, err=True)
    if result.moved is not None:
        typer.echo(f"{result.saved} was not a list of evaluations; kept it as {result.moved} and started a new one.", err=True)
    typer.echo(f"Appended to {result.saved}")


@app.command()
def upscale(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Image files, folders or glob patterns (grids too).", show_default=False)] = None,
    out: Annotated[Path, option("--outdir", "--out", "-o", metavar="DIR", help="Folder for the upscaled PNGs (same names); --out is the old spelling.")] = Path("upscaled"),
    model: Annotated[Optional[Path], option("--model", "-m", metavar="RUN", help="Upscaler checkpoint or run directory (default: the newest srcnn/upgan run under runs/).", show_default=False)] = None,
    method: Annotated[UpscaleMethod, typer.Option(help="model, or a classical resampling filter.")] = UpscaleMethod.model,
    scale: Annotated[Optional[int], option("--scale", "-s", low=2, high=16, metavar="N", help="Output size / input size, 2 to 16 (default: the model's; 2 for bicubic/lanczos). A x2 model reaches 4, 8, 16 by repeating.", show_default=False)] = None,
    benchmark: Annotated[Optional[str], option(metavar="DATA", help="Instead: downscale these high-res images (a folder, or mnist / fashion-mnist / cifar10 for its test split), restore them, and print PSNR and SSIM against bicubic.", show_default=False)] = None,
    limit: Annotated[Optional[int], option(low=1, metavar="N", help="--benchmark: use only the first N images.", show_default=False)] = None,
    data_dir: Annotated[Optional[Path], option(metavar="DIR", help="--benchmark on a named dataset: where to find it.", show_default=False)] = None,
    overwrite: OverwriteOption = False,
    skip_existing: SkipExistingOption = False,
    device: DeviceOption = Device.auto,
    help: HelpOption = False,
) -> None:
    """Make images larger with a trained upscaler (srcnn, upgan) or a classical filter.

    Examples: gancli upscale samples.png --model runs/sr --outdir big/; gancli upscale --benchmark fashion-mnist --limit 1000
    """
    from gancli import api
    from gancli.cli.progress import work

    if benchmark is None and not inputs:
        raise UsageError("Give images to upscale (files, folders or globs), or --benchmark DIR_OR_DATASET.")
    if benchmark is not None:
        if inputs:
            raise UsageError("--benchmark measures on its own images; drop the INPUTS or drop --benchmark.")
        if method != UpscaleMethod.model:
            raise UsageError("--benchmark compares a trained upscaler with bicubic; give --model (and no --method).")
        return _print_benchmark(*api.benchmark_upscaler(model, benchmark, scale, data_dir, limit, device.value))
    existing = _existing_policy(overwrite, skip_existing)
    plan, written, kept = api.upscale_files(inputs, out, model, method.value, scale, existing, device.value, progress=work)
    if not written:
        return typer.echo(f"Nothing to do: all {kept} upscaled image(s) are already in {out}/ (--skip-existing).")
    typer.echo(f"Wrote {written} image(s) x{plan.scale} to {out}/ ({plan.source})" + (f"; kept {kept} existing" if kept else ""))


def _print_benchmark(plan, scores: dict, count: int, what: str) -> None:
    typer.echo(f"Benchmark: {count} images ({what}) downscaled x{plan.scale} with antialiased bicubic, then restored")
    typer.echo(f"{'method':<28}{'PSNR (dB)':>10}{'SSIM':>9}")
    for name, shown in (("bicubic", "bicubic"), ("model", plan.source.split(" from ")[0])):
        typer.echo(f"{shown:<28}{scores[name]['PSNR']:>10.2f}{scores[name]['SSIM']:>9.4f}")
    gain_p = scores["model"]["PSNR"] - scores["bicubic"]["PSNR"]
    gain_s = scores["model"]["SSIM"] - scores["bicubic"]["SSIM"]
    typer.echo(f"{'model - bicubic':<28}{gain_p:>+10.2f}{gain_s:>+9.4f}")


@app.command()
def project(
    images: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns to find in the generator's latent space.", show_default=False)],
    checkpoint: CheckpointOption = None,
    out_dir: Annotated[Path, option("--outdir", "-d", metavar="DIR", help="Where NAME.latent.safetensors and NAME.png (target | reconstruction) go.")] = Path("projected"),
    steps: Annotated[int, option(low=1, high=100_000, metavar="N", help="Optimisation steps per image.")] = 1000,
    seed: Annotated[int, option(low=0, high=MAX_SEED, metavar="SEED", help="Seed of the random starting points.")] = 0,
    label: Annotated[Optional[str], option(metavar="CLASS", help="Conditional models: the class to project with (default: try each, keep the best).", show_default=False)] = None,
    feature_weight: Annotated[float, option(low=0.0, high=1e6, metavar="X", help="Weight of the run's discriminator features next to the pixel loss.")] = 0.0,
    classifier: Annotated[Optional[Path], option(metavar="RUN", help="With --feature-weight: a dataset classifier's features instead of the discriminator's.", show_default=False)] = None,
    batch_size: Annotated[int, option(low=1, high=4096, metavar="N", help="Images optimised at once.")] = 64,
    overwrite: OverwriteOption = False,
    skip_existing: SkipExistingOption = False,
    ema: EmaOption = True,
    device: DeviceOption = Device.auto,
    help: HelpOption = False,
) -> None:
    """Find the latents that make a generator draw your images: latent files for sample --latent and interpolate.

    Example: gancli project photos/*.png -c runs/fashion --outdir proj/; gancli interpolate proj/a.latent.safetensors proj/b.latent.safetensors
    """
    import statistics

    from gancli import api
    from gancli.cli.progress import work

    model = api.load(checkpoint, ema, device.value, kind="generator")
    projected, notes = model.write_projections(images, out_dir, steps=steps, seed=seed, label=label, feature_weight=feature_weight,
                                               batch=batch_size, existing=_existing_policy(overwrite, skip_existing), progress=work,
                                               classifier=classifier)  # fmt: skip
    for note in notes:
        typer.echo(f"Note: {note}")
    scores = projected.psnr
    typer.echo(f"Projected {len(projected.latents)} image(s) with {model.path} ({steps} steps): PSNR mean {statistics.mean(scores):.2f} dB, "
               f"lowest {min(scores):.2f} dB; latents and side-by-side PNGs in {out_dir}/")  # fmt: skip
    typer.echo(f"Next:       gancli interpolate {out_dir}/A.latent.safetensors {out_dir}/B.latent.safetensors -c {model.path} --gif walk.gif")


@app.command()
def explore(
    runs: Annotated[Optional[list[Path]], typer.Argument(help="Run folders or checkpoint files (default: every run under --runs).", show_default=False)] = None,
    runs_dir: Annotated[Path, option("--runs", metavar="DIR", help="Where to find runs when none is given.")] = Path("runs"),
    upscaler: Annotated[Optional[Path], option(metavar="RUN", help="An upscaler run (srcnn, upgan): show each image upscaled beside it.", show_default=False)] = None,
    latents: Annotated[Optional[list[Path]], option("--latents", metavar="DIR", help="Folders of projected latents (gancli project): each run shows its own beside its seeds.", show_default=False)] = None,
    host: Annotated[str, option(metavar="HOST", help="Address to listen on; anything but a loopback address lets other machines in.")] = "127.0.0.1",
    port: Annotated[int, option(low=0, high=65535, metavar="PORT", help="Port to listen on (0: a free one).")] = 0,
    open_browser: Annotated[bool, switch("--open/--no-open", help="Open the page in a web browser.")] = False,
    ema: EmaOption = True,
    device: DeviceOption = Device.auto,
    help: HelpOption = False,
) -> None:
    """Play with trained generators in a web browser: seeds, classes, walks, style mixing, upscaling.

    Example: gancli explore runs/digits (then open the URL it prints; over SSH: ssh -L PORT:127.0.0.1:PORT HOST)
    """
    from gancli import api
    from gancli.explore.server import is_loopback

    server = api.explorer(runs, runs_dir=runs_dir, upscaler=upscaler, host=host, port=port, device=device.value, ema=ema, latents=latents)
    if not is_loopback(host):
        typer.echo(f"Warning: listening on {host}: anyone who can reach this machine can use the explorer and see its runs' images.", err=True)
    typer.echo(f"Serving {len(server.gallery.entries)} run(s) at {server.url}  (Ctrl-C stops it)")
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("Stopped.")
    finally:
        server.server.server_close()


@app.command()
def data(
    folder: Annotated[Path, typer.Argument(help="A folder of images (sub-folders are classes).", show_default=False)],
    image_size: Annotated[int, option(low=4, high=512, metavar="N", help="Side to decode to, as gancli train --image-size.")] = 64,
    workers: Annotated[Optional[int], option(low=1, high=256, metavar="N", help="Decoding processes (default: one per core).", show_default=False)] = None,
    help: HelpOption = False,
) -> None:
    """Decode a folder of images once into gancli's cache, so that training on it starts at once.

    Example: gancli data photos/ --image-size 64; then gancli train photos/ --image-size 64
    """
    import time

    from gancli import api
    from gancli.cli.progress import work

    started = time.perf_counter()
    decoded = api.decode_folder(folder, image_size, workers, progress=work)
    _print_decoded(decoded, folder, image_size, time.perf_counter() - started)


def _print_decoded(decoded, folder: Path, image_size: int, seconds: float) -> None:
    from gancli.data.mapped import default_budget, format_size
    from gancli.store.files import printable

    n, channels = decoded.images.shape[0], decoded.images.shape[1]
    how = "Already decoded (the folder is unchanged):" if decoded.hit else f"Decoded in {seconds:.1f} s:"
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
    out: Annotated[Path, option("--out", "-o", metavar="PATH", help="Grid PNG to write.")] = Path("grid.png"),
    nrow: Annotated[Optional[int], option(low=1, metavar="N", help="Images per row (default: square-ish).", show_default=False)] = None,
    padding: Annotated[int, option(low=0, high=256, metavar="N", help="Pixels between images.")] = 2,
    help: HelpOption = False,
) -> None:
    """Arrange images into one grid PNG (sizes follow the first image).

    Example: gancli grid runs/r1/samples/*.png --out progress.png --nrow 4
    """
    from gancli import api
    from gancli.data.images import grid_layout, grid_of

    count, cell, first = api.grid(images, out, nrow, padding)
    shrunk = f", cells {cell[0]}x{cell[1]} (the first image is {first[0]}x{first[1]})" if cell != first else ""
    typer.echo(f"Wrote {grid_of(count)} ({grid_layout(count, nrow)}{shrunk}) to {out}")


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
        result = command.main(args=argv, prog_name="gancli", standalone_mode=False)
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


def main() -> None:
    sys.exit(run())
