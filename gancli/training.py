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

from gancli import checkpoints, distributed
from gancli.config import DEFAULT_EPOCHS, TrainConfig
from gancli.data import ImageDataset, load_dataset
from gancli.errors import GancliError, UsageError
from gancli.losses import discriminator_loss, generator_loss, gradient_penalty
from gancli.augment import diff_augment
from gancli.images import save_grid, to_uint8
from gancli.latent import latent_batches
from gancli.visuals import write_training_visuals
from gancli.models import build_discriminator, build_generator, check_classes, get_architecture, is_classifier, is_conditional, is_upscaler
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
    loss: str = "bce",
    augment=None,
    noise: torch.Generator | None = None,
) -> torch.Tensor:
    """One update of D, then one of G, with the adversarial loss `loss` on logits (gancli.losses).

    Args:
        real: a batch of real images (B, C, H, W) in [-1, 1].
        z: latent vectors (B, latent_dim) for this step's fakes.
        labels: for conditional models, (labels of the real images, labels asked of G), each (B,).
        autocast: a context for the forward passes (bf16 autocast for --precision bf16); backward
            passes run outside it, as PyTorch recommends.
        loss: "bce" (non-saturating), "hinge" or "wgan-gp".
        augment: a differentiable augmentation applied to every image D sees (DiffAugment), or None.
        noise: the random stream of the gradient penalty's mixing weights.

    Returns the detached values named by STAT_NAMES: loss_D, loss_G, D(x), and D(G(z)) in the D
    step (D_G_z1, before D's update) and in the G step (D_G_z2, after D's update, before G's), as
    in the PyTorch DCGAN example.
    """
    aug = augment or (lambda images: images)
    # conditional models get the labels as a second argument; unconditional ones get nothing
    c_real, c_fake = ((labels[0],), (labels[1],)) if labels is not None else ((), ())

    # (1) D: maximise log D(x) + log(1 - D(G(z)))
    opt_d.zero_grad(set_to_none=True)
    with autocast():
        real_logits = discriminator(aug(real), *c_real)
        fake = generator(z, *c_fake)
        fake_logits = discriminator(aug(fake.detach()), *c_fake)
        loss_d = discriminator_loss(loss, real_logits, fake_logits)
    if loss == "wgan-gp":  # in fp32: a double backward through bf16 would lose the penalty's precision
        loss_d = loss_d + gradient_penalty(discriminator, real, fake, c_real, noise)
    loss_d.backward()
    opt_d.step()

    # (2) G: maximise log D(G(z)), the non-saturating loss; fakes count as real for G's loss
    opt_g.zero_grad(set_to_none=True)
    with autocast():
        gen_logits = discriminator(aug(fake), *c_fake)
        loss_g = generator_loss(loss, gen_logits)
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
    processes: int = 1  # torchrun ranks, each with config.batch_size images per step


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
    time_limited: bool = False  # stopped by time_limit: a normal end


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
    """What train() needs to fit a GAN: models, optimisers, one step, a preview grid, sample-quality scores."""

    def __init__(self, config: TrainConfig, dataset: ImageDataset, device: torch.device):
        self.config, self.device = config, device
        self.conditional = is_conditional(config.arch)
        check_classes(config.arch, config.num_classes, config.dataset)
        # channels_last: measured 10% faster for DCGAN 64x64 on this CPU; the same maths, another memory layout
        self.generator = build_generator(config).to(device, memory_format=torch.channels_last)
        self.discriminator = build_discriminator(config).to(device, memory_format=torch.channels_last)
        betas = (config.beta1, config.beta2)
        self.modules = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {
            "optimizer_g": adam(self.generator.parameters(), config.lr_g, betas),
            "optimizer_d": adam(self.discriminator.parameters(), config.lr_d, betas),
        }
        self.autocast = precision_context(config.precision, device)
        self.growing = hasattr(self.discriminator, "fade_real")  # progan: the step moves it through its resolutions
        self.stat_names = STAT_NAMES
        self.noise = torch.Generator(device=device).manual_seed(config.seed + 1)
        self.augment = None
        if config.augment:
            policy = tuple(config.augment.split(","))
            self.augment = lambda images: diff_augment(images, policy, self.noise)
        self.ema = None
        if config.ema:  # weights and BatchNorm statistics averaged over steps: what sampling uses
            from torch.optim.swa_utils import AveragedModel

            self.ema = AveragedModel(self.generator, multi_avg_fn=ema_with_warmup(config.ema), use_buffers=True)
            self.modules["generator_ema"] = self.ema
        self.sample_quality = SampleQuality(config, device) if config.eval_every else None
        self.best_metric = ("FID", "min") if self.sample_quality else None
        self.train_count = len(dataset)
        defaults = get_architecture(config.arch).defaults
        self.notices: list[str] = [f"{config.arch} trains with " + ", ".join(f"{k} {getattr(config, k)}" for k, _ in defaults)] if defaults else []
        self.images = dataset.images.to(device)
        self.labels = dataset.labels.to(device) if self.conditional else None
        z, y = preview_inputs(config)
        self.preview_z, self.preview_cond = z.to(device), ((y.to(device),) if self.conditional else ())

    def step(self, index: torch.Tensor) -> torch.Tensor:
        real = self.images[index].float().div_(127.5).sub_(1)
        if self.growing:  # progan: reals at the resolution G has reached, faded like its images
            real = self.modules["discriminator"].fade_real(real)
        z = torch.randn(real.shape[0], self.config.latent_dim, device=self.device, generator=self.noise)
        labels = None
        if self.labels is not None:  # fakes ask for classes uniformly at random
            labels = (self.labels[index], conditional_labels(real.shape[0], self.config.num_classes, self.device, self.noise))
        opt_g, opt_d = self.optimizers["optimizer_g"], self.optimizers["optimizer_d"]
        stats = train_step(real, self.generator, self.discriminator, opt_g, opt_d, z, labels, self.autocast,
                           self.config.loss, self.augment, self.noise)  # fmt: skip
        if self.growing:
            for name in ("generator", "discriminator"):
                self.modules[name].step += 1
        if self.ema is not None:
            self.ema.update_parameters(self.modules["generator"])
        return stats

    def sampling_generator(self) -> torch.nn.Module:
        """The generator users get from this run: the moving average where there is one."""
        return self.ema.module if self.ema is not None else self.modules["generator"]

    def evaluate(self) -> dict[str, float]:
        """The latest sample-quality scores (measured every --eval-every steps by measure()); progan's growth."""
        scores = self.sample_quality.latest() if self.sample_quality else {}
        if self.growing:  # where G is now (the step about to run), not an average over the row
            level, alpha = self.modules["generator"].growth()
            scores = {"resolution": self.modules["generator"].sizes[level], "alpha": alpha} | scores
        return scores

    def measure(self, step: int, final: bool = False) -> None:
        if self.sample_quality and (step % self.config.eval_every == 0 or final):
            self.sample_quality.measure(self.sampling_generator(), step)

    def wrap(self, wrapper) -> None:
        """Run the training forwards through wrapper(module) (DDP, torch.compile); self.modules stay bare."""
        self.generator, self.discriminator = wrapper(self.generator), wrapper(self.discriminator)

    @torch.no_grad()
    def preview(self, path: Path) -> None:
        generator = self.sampling_generator()  # bare: a DDP forward would wait for the other ranks
        generator.eval()
        fakes = generator(self.preview_z, *self.preview_cond)
        generator.train()
        save_grid(to_uint8(fakes), path, nrow=PREVIEW_COLUMNS)


def ema_with_warmup(decay: float):
    """An AveragedModel update: exponential moving average whose decay ramps up as min(decay, (1 + n) / (10 + n)).

    A fixed 0.999 would keep 74% of the random initial weights after 300 steps; the ramp (as in
    TensorFlow's ExponentialMovingAverage with num_updates) makes short runs sample well too.
    """

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = float(num_averaged)
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1 - min(decay, (1 + n) / (10 + n)))
        for a, c in zip(averaged, current):
            if not a.is_floating_point():  # counters such as BatchNorm's num_batches_tracked
                a.copy_(c)

    return update


class SampleQuality:
    """FID and friends of the generator every --eval-every steps, with the run's dataset classifier."""

    def __init__(self, config: TrainConfig, device: torch.device):
        from gancli.classify import check_matches
        from gancli.evaluate import SCORE_NAMES
        from gancli.features import ClassifierExtractor

        if not config.eval_classifier:
            raise UsageError(f"--eval-every needs a classifier: train one with 'gancli train {config.dataset} --arch classifier' and pass --eval-classifier RUN.")
        self.extractor = ClassifierExtractor(Path(config.eval_classifier), device)
        check_matches(self.extractor.config, config.dataset)
        self.config, self.device = config, device
        names = SCORE_NAMES + (("classes_covered", "class_KL") if self.extractor.num_classes >= 2 else ())
        self.scores: dict[str, float | None] = dict.fromkeys(names)

    def latest(self) -> dict[str, float | None]:
        return dict(self.scores)

    def measure(self, generator: torch.nn.Module, step: int) -> None:
        from gancli.evaluate import evaluate

        was_training = generator.training
        result = evaluate(generator, self.config, self.extractor, self.config.eval_n, seed=0, device=self.device)
        generator.train(was_training)
        self.scores = {k: result.scores.get(k) for k in self.scores}


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


def compiler():
    """torch.compile with the backend in GANCLI_COMPILE_BACKEND (default inductor; tests use 'eager')."""
    import os

    backend = os.environ.get("GANCLI_COMPILE_BACKEND", "inductor")
    return lambda module: torch.compile(module, backend=backend)


def make_task(config: TrainConfig, dataset: ImageDataset, device: torch.device):
    """The training task for config.arch: a GAN, an upscaler (srcnn, upgan) or the dataset classifier."""
    if is_classifier(config.arch):
        from gancli.classify import ClassifierTask

        return ClassifierTask(config, dataset, device)
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
    compile: bool = False,
    time_limit: float | None = None,
    clock=time.perf_counter,
) -> TrainingResult:
    """Train (or, given `resume`, continue) a run in `run_dir`; returns where things were written.

    Under torchrun every rank calls this; rank 0 alone writes files and tells the reporter.
    `compile` runs the training forwards through torch.compile. `time_limit` (seconds of `clock`,
    wall time by default; benchmarks pass time.process_time) ends the run early, saved as usual.
    """
    cluster = distributed.cluster_from_env()
    reporter = reporter if reporter is not None and cluster.is_main else SilentReporter()
    dev = resolve_device(device)
    if cluster.distributed and is_upscaler(config.arch):
        raise UsageError(f"--arch {config.arch} trains in one process; run it without torchrun.")
    dataset = load_dataset(config.dataset, config.image_size, Path(config.data_dir) if config.data_dir else None)
    config, notices = _fit_to_data(config, dataset, resumed=resume is not None)
    if config.arch == "progan" and not config.phase_steps:
        config = _spread_growth(config, len(dataset) // max(1, config.batch_size * cluster.world_size), notices)
    if cluster.distributed:
        dev = distributed.start(cluster, dev)
    try:
        result = _train(config, run_dir, dev, reporter, resume, compile, cluster, dataset, notices, time_limit, clock)
        distributed.finish(cluster)  # ranks leave together: rank 0 may still be writing files
        return result
    finally:
        distributed.stop()


def _train(config, run_dir, dev, reporter, resume, compile, cluster, dataset, notices, time_limit, clock) -> TrainingResult:
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    torch.manual_seed(config.seed)  # model initialisation, the same on every rank
    task = make_task(config, dataset, dev)
    notices += task.notices
    images_per_step = config.batch_size * cluster.world_size
    if images_per_step > task.train_count:
        raise UsageError(
            f"{cluster.world_size} processes x --batch-size {config.batch_size} need {images_per_step} images per step, "
            f"but the data has {task.train_count}; use a smaller --batch-size or fewer processes."
        )
    steps_per_epoch = max(1, task.train_count // images_per_step)
    total_steps = config.steps if config.steps is not None else (config.epochs or DEFAULT_EPOCHS) * steps_per_epoch
    start_step, seconds_before = 0, 0.0
    if resume is not None:
        start_step, seconds_before = _restore(resume, task, dev, notices)
        if start_step >= total_steps:
            raise UsageError(
                f"The run is already at step {start_step} of {total_steps}; pass a larger --steps or --epochs to train further."
            )
        saved_with = int(resume.metadata.get("processes", 1))
        if saved_with != cluster.world_size:
            notices.append(f"Resumed with {cluster.world_size} process(es), saved with {saved_with}: the data order differs from an uninterrupted run.")
    if cluster.rank:  # each rank draws its own z; rank 0 keeps the single-process stream
        task.noise.manual_seed(config.seed + 1 + cluster.rank * 1_000_003 + start_step)
    if cluster.distributed:
        task.wrap(lambda module: distributed.replicate(module, dev))
    if compile:
        task.wrap(compiler())

    writes = cluster.is_main
    eval_names = tuple(task.evaluate())
    metrics = None
    if writes:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.to_json() + "\n")
        columns = ("step", "epoch", *task.stat_names, *eval_names, "images_per_s", "seconds")
        metrics = MetricsLog(run_dir / "metrics.csv", columns, start_step)
    device_text = str(dev) if not cluster.distributed else f"{dev.type} x {cluster.world_size} processes (DDP)"
    reporter.start(TrainingPlan(config, run_dir, device_text, dataset.description, notices, start_step, total_steps, steps_per_epoch, cluster.world_size))
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
            processes=str(cluster.world_size), **{k.lower(): f"{v:.6f}" for k, v in last_eval.items() if v is not None},
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
    best_metric, direction = getattr(task, "best_metric", None) or (None, "max")
    sign = 1 if direction == "max" else -1  # compared as sign * value: higher is better
    best = _best_so_far(run_dir / CHECKPOINTS / BEST, best_metric, sign) if resume is not None and writes else -math.inf
    stopping: str | None = None
    clock_started = clock()
    with _stop_requests() as stop:
        while step < total_steps:
            epoch, position = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_order(task.train_count, config.seed, epoch).to(dev), epoch
            stats = task.step(distributed.shard(order, position, config.batch_size, cluster))
            step += 1
            row_sum += stats
            shown_sum += stats
            row_steps += 1
            shown_steps += 1
            now = time.perf_counter()
            result.seconds = seconds_before + (now - started)
            reason = stop.requested or (TIME_LIMIT if time_limit and clock() - clock_started >= time_limit else None)
            if not cluster.distributed:
                stopping = reason
            elif step % STOP_CHECK_STEPS == 0 or step == total_steps:  # ranks agree when to stop
                stopping = distributed.most_urgent(reason, (TIME_LIMIT, "SIGTERM", "SIGINT"), cluster, dev)
            eval_due = bool(config.eval_every) and (step % config.eval_every == 0 or step == total_steps)
            at_row = step % config.sample_every == 0 or step == total_steps or bool(stopping) or eval_due
            if writes and at_row and hasattr(task, "measure"):  # the costly held-out scores: at rows only
                task.measure(step, final=step == total_steps or bool(stopping))
            if writes and (at_row or now - shown_at >= DISPLAY_INTERVAL_S):
                means = (shown_sum / shown_steps).tolist()
                if not all(math.isfinite(v) for v in means):
                    raise GancliError(
                        f"Training diverged at step {step}: the losses are not finite. The last good checkpoint "
                        f"is {result.checkpoint}; try a lower --lr-g/--lr-d or another --seed."
                    )
                evaluation = task.evaluate()
                last_eval.clear()
                last_eval.update(evaluation)
                speed = shown_steps * images_per_step / max(now - shown_at, 1e-9)
                shown = dict(zip(task.stat_names, means)) | evaluation
                reporter.update(TrainingProgress(step, total_steps, step / steps_per_epoch, shown, speed, result.seconds))
                shown_sum.zero_()
                shown_steps, shown_at = 0, now
            if at_row:
                _check_weights(task, step, result.checkpoint)
                row_means = distributed.mean_over_ranks(row_sum / row_steps, cluster).tolist()
                if writes:
                    row = dict(zip(task.stat_names, row_means)) | last_eval
                    row.update(step=step, epoch=round(step / steps_per_epoch, 3))
                    row.update(images_per_s=row_steps * images_per_step / max(now - row_started, 1e-9), seconds=result.seconds)
                    metrics.append(row)
                    result.last_row, result.last_sample = row, preview(step)
                    save(result.checkpoint, step)
                    value = last_eval.get(best_metric)
                    if value is not None and (eval_due or not config.eval_every) and sign * value > best:
                        best = sign * value
                        save(run_dir / CHECKPOINTS / BEST, step)
                result.step = step
                row_sum.zero_()
                row_steps, row_started = 0, time.perf_counter()
            if writes and step % config.checkpoint_every == 0:
                save(run_dir / CHECKPOINTS / f"step_{step:06d}.safetensors", step)
                _prune_periodic(run_dir / CHECKPOINTS, config.keep)
            if stopping:
                result.interrupted = stopping if stopping != TIME_LIMIT else None
                result.time_limited = stopping == TIME_LIMIT
                break
    if writes:
        write_training_visuals(run_dir)
    return result


STOP_CHECK_STEPS = 8  # under torchrun, ranks compare stop requests every this many steps (a collective)
TIME_LIMIT = "time limit"


def _spread_growth(config: TrainConfig, steps_per_epoch: int, notices: list[str]) -> TrainConfig:
    """progan with no --phase-steps: fit the whole schedule (a stable 4x4 phase, then fade-in + stable per doubling) into the run."""
    from gancli.models.progan import resolutions

    levels = len(resolutions(config.image_size))
    total = config.steps if config.steps is not None else (config.epochs or DEFAULT_EPOCHS) * max(1, steps_per_epoch)
    phase = max(1, math.ceil(total / (2 * levels - 1)))
    notices.append(f"progan grows 4x4 -> {config.image_size}x{config.image_size} in {2 * levels - 1} phases of {phase} steps (--phase-steps).")
    return config.with_changes(phase_steps=phase)


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


BEST = "best.safetensors"  # the checkpoint with the best held-out metric, for tasks with a best_metric


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


def _best_so_far(path: Path, metric: str | None, sign: int) -> float:
    """sign * the metric stored in an existing best.safetensors, so a resumed run only replaces it when it does better."""
    try:
        return sign * float(checkpoints.read_metadata(path)[metric.lower()])
    except (GancliError, ValueError, KeyError, AttributeError):
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
    if value is None:  # not measured at this row (e.g. FID between --eval-every steps)
        return ""
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
