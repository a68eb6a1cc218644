"""Adversarial training: train_step() is one update of D then G; train() runs a whole run.

train() owns seeding, the device, the fixed preview noise, metrics and checkpoint timing. It
prints nothing: a reporter (the Rich display in the CLI) is told about progress.
"""

from __future__ import annotations

import contextlib
import csv
import math
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F

from gancli import checkpoints
from gancli.config import DEFAULT_EPOCHS, TrainConfig
from gancli.data import ImageDataset, load_dataset
from gancli.errors import GancliError, UsageError
from gancli.images import save_grid, to_uint8
from gancli.latent import latent_batches
from gancli.visuals import write_training_visuals
from gancli.models import build_discriminator, build_generator, check_classes, is_conditional, is_upscaler
from gancli.runs import CHECKPOINTS, LAST

# Order of the values train_step() returns; also the metrics.csv columns.
STAT_NAMES = ("loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2")
METRICS_COLUMNS = ("step", "epoch", *STAT_NAMES, "images_per_s", "seconds")
PREVIEW_COUNT = 64  # fixed-z samples in each samples/step_*.png (8 x 8)
PREVIEW_COLUMNS = 8  # conditional previews: one row per class (at most PREVIEW_MAX_CLASSES), one fixed z per column
PREVIEW_MAX_CLASSES = 16
DISPLAY_INTERVAL_S = 0.25


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; explicit names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or --device auto.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps was asked for but Apple's MPS is not available; use --device cpu or --device auto.")
    if name not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {name} is unknown; use auto, cpu, cuda or mps.")
    return torch.device(name)


def train_step(
    real: torch.Tensor,
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    z: torch.Tensor,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
    autocast=contextlib.nullcontext,
) -> torch.Tensor:
    """One update of D, then one of G, with the non-saturating BCE loss on logits.

    Args:
        real: a batch of real images (B, C, H, W) in [-1, 1].
        z: latent vectors (B, latent_dim) for this step's fakes.
        labels: for conditional models, (labels of the real images, labels asked of G), each (B,).
        autocast: a context for the forward passes (bf16 autocast for --precision bf16); backward
            passes run outside it, as PyTorch recommends.

    Returns the detached values named by STAT_NAMES: loss_D, loss_G, D(x), and D(G(z)) in the D
    step (D_G_z1, before D's update) and in the G step (D_G_z2, after D's update, before G's), as
    in the PyTorch DCGAN example.
    """
    ones = torch.ones(real.shape[0], device=real.device)
    zeros = torch.zeros_like(ones)
    # conditional models get the labels as a second argument; unconditional ones get nothing
    c_real, c_fake = ((labels[0],), (labels[1],)) if labels is not None else ((), ())

    # (1) D: maximise log D(x) + log(1 - D(G(z)))
    opt_d.zero_grad(set_to_none=True)
    with autocast():
        real_logits = discriminator(real, *c_real)
        fake = generator(z, *c_fake)
        fake_logits = discriminator(fake.detach(), *c_fake)
        loss_d = F.binary_cross_entropy_with_logits(real_logits, ones) + F.binary_cross_entropy_with_logits(fake_logits, zeros)
    loss_d.backward()
    opt_d.step()

    # (2) G: maximise log D(G(z)), the non-saturating loss; fakes count as real for G's loss
    opt_g.zero_grad(set_to_none=True)
    with autocast():
        gen_logits = discriminator(fake, *c_fake)
        loss_g = F.binary_cross_entropy_with_logits(gen_logits, ones)
        if labels is not None:
            loss_g = loss_g + MODE_SEEKING_WEIGHT * mode_seeking_penalty(fake.float(), z)
    loss_g.backward()
    opt_g.step()

    with torch.no_grad():
        return torch.stack(
            [loss_d, loss_g, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(), torch.sigmoid(gen_logits).mean()]
        ).float()


# Conditional generators otherwise learn to ignore z and draw one image per class (measured on
# MNIST with cdcgan: within-class spread fell to 7% of the real digits').
MODE_SEEKING_WEIGHT = 1.0


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mode seeking regularisation (Mao et al., 2019): 1 / (|G(z1, y) - G(z2, y)| / |z1 - z2|).

    The batch's second half asks for the same labels as its first half (see conditional_labels),
    so pairs (i, i + ceil(B/2)) differ in z alone; the penalty grows when their images do not.
    """
    offset = (fake.shape[0] + 1) // 2
    pairs = fake.shape[0] - offset
    if pairs == 0:
        return fake.new_zeros(())
    images = (fake[:pairs] - fake[offset : offset + pairs]).abs().mean()
    latents = (z[:pairs] - z[offset : offset + pairs]).abs().mean()
    return 1.0 / (images / latents + 1e-5)


def conditional_labels(batch: int, num_classes: int, device, generator: torch.Generator) -> torch.Tensor:
    """Labels asked of G: uniform over classes, the second half of the batch repeating the first."""
    first = torch.randint(num_classes, ((batch + 1) // 2,), device=device, generator=generator)
    return torch.cat([first, first])[:batch]


def epoch_order(num_images: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: a function of (seed, epoch) alone, so resuming needs no state."""
    return torch.randperm(num_images, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


# --- what train() tells its reporter -----------------------------------------------------------


@dataclass
class TrainingPlan:
    config: TrainConfig
    run_dir: Path
    device: str
    dataset: str
    notices: list[str]
    start_step: int
    total_steps: int
    steps_per_epoch: int


@dataclass
class TrainingProgress:
    step: int
    total_steps: int
    epoch: float
    stats: dict[str, float]  # STAT_NAMES -> mean since the previous update
    images_per_s: float
    seconds: float


@dataclass
class TrainingResult:
    run_dir: Path
    checkpoint: Path
    step: int
    total_steps: int
    seconds: float
    last_row: dict[str, float] = field(default_factory=dict)
    last_sample: Path | None = None
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" when stopped early


class Reporter(Protocol):
    def start(self, plan: TrainingPlan) -> None: ...
    def update(self, progress: TrainingProgress) -> None: ...


class SilentReporter:
    def start(self, plan: TrainingPlan) -> None:
        pass

    def update(self, progress: TrainingProgress) -> None:
        pass


# --- the run -----------------------------------------------------------------------------------


class GANTask:
    """What train() needs to fit a GAN: models, optimisers, one step, a preview grid."""

    def __init__(self, config: TrainConfig, dataset: ImageDataset, device: torch.device):
        self.config, self.device = config, device
        self.conditional = is_conditional(config.arch)
        check_classes(config.arch, config.num_classes, config.dataset)
        self.generator = build_generator(config).to(device)
        self.discriminator = build_discriminator(config).to(device)
        betas = (config.beta1, config.beta2)
        self.modules = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {
            "optimizer_g": adam(self.generator.parameters(), config.lr_g, betas),
            "optimizer_d": adam(self.discriminator.parameters(), config.lr_d, betas),
        }
        self.autocast = precision_context(config.precision, device)
        self.stat_names = STAT_NAMES
        self.noise = torch.Generator(device=device).manual_seed(config.seed + 1)
        self.train_count = len(dataset)
        self.notices: list[str] = []
        self.images = dataset.images.to(device)
        self.labels = dataset.labels.to(device) if self.conditional else None
        z, y = preview_inputs(config)
        self.preview_z, self.preview_cond = z.to(device), ((y.to(device),) if self.conditional else ())

    def step(self, index: torch.Tensor) -> torch.Tensor:
        real = self.images[index].float().div_(127.5).sub_(1)
        z = torch.randn(real.shape[0], self.config.latent_dim, device=self.device, generator=self.noise)
        labels = None
        if self.labels is not None:  # fakes ask for classes uniformly at random
            labels = (self.labels[index], conditional_labels(real.shape[0], self.config.num_classes, self.device, self.noise))
        opt_g, opt_d = self.optimizers["optimizer_g"], self.optimizers["optimizer_d"]
        return train_step(real, self.generator, self.discriminator, opt_g, opt_d, z, labels, self.autocast)

    def evaluate(self) -> dict[str, float]:
        return {}

    @torch.no_grad()
    def preview(self, path: Path) -> None:
        self.generator.eval()
        fakes = self.generator(self.preview_z, *self.preview_cond)
        self.generator.train()
        save_grid(to_uint8(fakes), path, nrow=PREVIEW_COLUMNS)


def adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with the fused implementation where this PyTorch has it for the device, else foreach."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()) and _cpu_has_bf16()
    return False


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


def precision_context(precision: str, device: torch.device):
    """A factory of autocast contexts for --precision: fp32 does nothing, bf16 autocasts forwards."""
    if precision == "fp32":
        return contextlib.nullcontext
    if not bf16_supported(device):
        raise UsageError(f"--precision bf16 needs bf16 hardware support, which this {device.type} lacks; use --precision fp32.")
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def make_task(config: TrainConfig, dataset: ImageDataset, device: torch.device):
    """The training task for config.arch: a GAN, or an upscaler (srcnn, upgan)."""
    if is_upscaler(config.arch):
        from gancli.superres import UpscalerTask

        return UpscalerTask(config, dataset, device)
    return GANTask(config, dataset, device)


def train(
    config: TrainConfig,
    run_dir: Path,
    device: str = "auto",
    reporter: Reporter | None = None,
    resume: checkpoints.Checkpoint | None = None,
) -> TrainingResult:
    """Train (or, given `resume`, continue) a run in `run_dir`; returns where things were written."""
    reporter = reporter or SilentReporter()
    dev = resolve_device(device)
    dataset = load_dataset(config.dataset, config.image_size, Path(config.data_dir) if config.data_dir else None)
    config, notices = _fit_to_data(config, dataset, resumed=resume is not None)

    torch.manual_seed(config.seed)  # model initialisation
    task = make_task(config, dataset, dev)
    notices += task.notices
    steps_per_epoch = max(1, task.train_count // config.batch_size)
    total_steps = config.steps if config.steps is not None else (config.epochs or DEFAULT_EPOCHS) * steps_per_epoch
    start_step, seconds_before = 0, 0.0
    if resume is not None:
        start_step, seconds_before = _restore(resume, task, dev, notices)
        if start_step >= total_steps:
            raise UsageError(
                f"The run is already at step {start_step} of {total_steps}; pass a larger --steps or --epochs to train further."
            )

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config.to_json() + "\n")
    eval_names = tuple(task.evaluate())
    metrics = MetricsLog(run_dir / "metrics.csv", ("step", "epoch", *task.stat_names, *eval_names, "images_per_s", "seconds"), start_step)

    reporter.start(TrainingPlan(config, run_dir, str(dev), dataset.description, notices, start_step, total_steps, steps_per_epoch))
    result = TrainingResult(run_dir, run_dir / CHECKPOINTS / LAST, start_step, total_steps, seconds_before)

    def save(path: Path, step: int, **extra: str) -> None:
        tensors = {f"{name}.{k}": v for name, module in task.modules.items() for k, v in module.state_dict().items()}
        groups = {}
        for name, optimizer in task.optimizers.items():
            state, groups[f"{name}_param_groups"] = checkpoints.optimizer_tensors(optimizer, name)
            tensors |= state
        tensors["rng.noise"] = task.noise.get_state()
        checkpoints.save_checkpoint(
            path, config, step, step // steps_per_epoch, tensors, **groups,
            noise_device=dev.type, seconds=f"{result.seconds:.3f}", dataset_description=dataset.description,
            **{k.lower(): f"{v:.6f}" for k, v in last_eval.items()},
        )  # fmt: skip

    def preview(step: int) -> Path:
        path = run_dir / "samples" / f"step_{step:06d}.png"
        task.preview(path)
        return path

    last_eval: dict[str, float] = {}  # the latest held-out metrics, stored in checkpoints written after them
    row_sum = torch.zeros(len(task.stat_names), device=dev)
    shown_sum = torch.zeros_like(row_sum)
    row_steps = shown_steps = 0
    started = row_started = shown_at = time.perf_counter()
    order, order_epoch = None, -1
    step = start_step
    best = _best_so_far(run_dir / CHECKPOINTS / BEST) if resume is not None else -math.inf
    with _stop_requests() as stop:
        while step < total_steps:
            epoch, position = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_order(task.train_count, config.seed, epoch).to(dev), epoch
            index = order[position * config.batch_size : (position + 1) * config.batch_size]
            stats = task.step(index)
            step += 1
            row_sum += stats
            shown_sum += stats
            row_steps += 1
            shown_steps += 1
            now = time.perf_counter()
            result.seconds = seconds_before + (now - started)
            at_row = step % config.sample_every == 0 or step == total_steps or stop.requested
            if at_row or now - shown_at >= DISPLAY_INTERVAL_S:
                means = (shown_sum / shown_steps).tolist()
                if not all(math.isfinite(v) for v in means):
                    raise GancliError(
                        f"Training diverged at step {step}: the losses are not finite. The last good checkpoint "
                        f"is {result.checkpoint}; try a lower --lr-g/--lr-d or another --seed."
                    )
                evaluation = task.evaluate()
                last_eval.clear()
                last_eval.update(evaluation)
                speed = shown_steps * config.batch_size / max(now - shown_at, 1e-9)
                shown = dict(zip(task.stat_names, means)) | evaluation
                reporter.update(TrainingProgress(step, total_steps, step / steps_per_epoch, shown, speed, result.seconds))
                shown_sum.zero_()
                shown_steps, shown_at = 0, now
            if at_row:
                _check_weights(task, step, result.checkpoint)
                row = dict(zip(task.stat_names, (row_sum / row_steps).tolist())) | evaluation
                row.update(step=step, epoch=round(step / steps_per_epoch, 3))
                row.update(images_per_s=row_steps * config.batch_size / max(now - row_started, 1e-9), seconds=result.seconds)
                metrics.append(row)
                result.last_row, result.last_sample, result.step = row, preview(step), step
                save(result.checkpoint, step)
                if BEST_METRIC in evaluation and evaluation[BEST_METRIC] > best:
                    best = evaluation[BEST_METRIC]
                    save(run_dir / CHECKPOINTS / BEST, step)
                row_sum.zero_()
                row_steps, row_started = 0, time.perf_counter()
            if step % config.checkpoint_every == 0:
                save(run_dir / CHECKPOINTS / f"step_{step:06d}.safetensors", step)
                _prune_periodic(run_dir / CHECKPOINTS, config.keep)
            if stop.requested:
                result.interrupted = stop.requested
                break
    write_training_visuals(run_dir)
    return result


def preview_inputs(config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed z (and labels) behind every samples/step_*.png of a run.

    Unconditional: 64 latents. Conditional: a row per class, the same 8 latents in every row,
    so the grid shows what the label changes while z stays put.
    """
    if not is_conditional(config.arch):
        return next(latent_batches(config.seed, PREVIEW_COUNT, config.latent_dim, PREVIEW_COUNT)), torch.zeros(0, dtype=torch.long)
    classes = min(config.num_classes, PREVIEW_MAX_CLASSES)
    z = next(latent_batches(config.seed, PREVIEW_COLUMNS, config.latent_dim, PREVIEW_COLUMNS))
    return z.repeat(classes, 1), torch.arange(classes).repeat_interleave(PREVIEW_COLUMNS)


def _fit_to_data(config: TrainConfig, dataset: ImageDataset, resumed: bool) -> tuple[TrainConfig, list[str]]:
    """Channels and classes follow the data; the batch size shrinks for tiny datasets."""
    notices = list(dataset.notices)
    if resumed and (config.channels, tuple(config.class_names)) != (dataset.channels, dataset.class_names):
        raise GancliError(
            f"The data in '{config.dataset}' no longer matches the checkpoint ({dataset.channels} channels, "
            f"{len(dataset.class_names)} classes vs {config.channels} and {config.num_classes}); restore it or start a new run."
        )
    changes = dict(channels=dataset.channels, class_names=dataset.class_names, num_classes=len(dataset.class_names))
    if config.batch_size > len(dataset):
        notices.append(f"--batch-size {config.batch_size} is larger than the dataset ({len(dataset)} images); using {len(dataset)}.")
        changes["batch_size"] = len(dataset)
    return config.with_changes(**changes), notices


BEST = "best.safetensors"
BEST_METRIC = "PSNR"  # the held-out metric that picks best.safetensors, where a task measures one


def _check_weights(task, step: int, last_good: Path) -> None:
    """Refuse to save non-finite weights: they would overwrite the last good checkpoint."""
    for name, module in task.modules.items():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise GancliError(
                    f"Training diverged at step {step}: the {name} weights are not finite. The last good checkpoint "
                    f"is {last_good}; try a lower --lr-g/--lr-d or another --seed."
                )


def _prune_periodic(folder: Path, keep: int | None) -> None:
    """Keep only the newest `keep` step_*.safetensors (None or 0: keep all)."""
    if keep:
        for old in sorted(folder.glob("step_*.safetensors"))[:-keep]:
            old.unlink(missing_ok=True)


def _best_so_far(path: Path) -> float:
    """The metric stored in an existing best.safetensors, so a resumed run only replaces it when it does better."""
    try:
        return float(checkpoints.read_metadata(path).get(BEST_METRIC.lower(), "-inf"))
    except (GancliError, ValueError):
        return -math.inf


def _restore(resume, task, dev, notices) -> tuple[int, float]:
    for name, module in task.modules.items():
        checkpoints.load_state(module, resume, name)
    for name, optimizer in task.optimizers.items():
        checkpoints.load_optimizer(optimizer, resume, name)
    state = resume.tensors.get("rng.noise")
    if state is not None and resume.metadata.get("noise_device") == dev.type:
        task.noise.set_state(state)
    else:  # RNG states do not carry across device types; continue with a stream derived from the step
        task.noise.manual_seed(resume.config.seed + 1 + resume.step)
        notices.append(f"Resumed on {dev.type}, saved on {resume.metadata.get('noise_device', '?')}: the noise stream differs from an uninterrupted run.")
    return resume.step, float(resume.metadata.get("seconds", 0.0))


class MetricsLog:
    """metrics.csv, one row per --sample-every steps; resuming drops rows past the resumed step."""

    def __init__(self, path: Path, columns: tuple[str, ...], truncate_after: int):
        self.path, self.columns = path, columns
        rows = []
        if path.exists() and truncate_after > 0:
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= truncate_after]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({k: _fmt(row[k]) for k in self.columns})


def _fmt(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"


class _StopFlag:
    requested: str | None = None


@contextmanager
def _stop_requests():
    """SIGINT/SIGTERM ask the loop to finish its step and save; a second SIGINT stops at once."""
    flag = _StopFlag()
    previous = {}

    def handler(signum, frame):
        if flag.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.requested = signal.Signals(signum).name

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
