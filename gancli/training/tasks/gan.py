"""The adversarial task: train_step() is one update of D then G; GANTask feeds it batches.

Every GAN architecture trains here; what differs between them (labels, growth) comes from the
registry entry's capabilities, and the recipe (loss, spectral norm, EMA, DiffAugment, FID while
training) from the config.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from gancli.training.augment import AdaptiveAugment, diff_augment
from gancli.config import AUGMENT_POLICY, R1_INTERVAL, TrainConfig
from gancli.data.datasets import ImageDataset
from gancli.errors import UsageError
from gancli.data.images import save_grid, to_uint8
from gancli.use.latent import latent_batches
from gancli.training.losses import get_loss, gradient_penalty, r1_penalty
from gancli.models import build_discriminator, build_generator, check_classes, get_architecture
from gancli.training.tasks.base import Stat, Task

PREVIEW_COUNT = 64  # fixed-z samples in each samples/step_*.png (8 x 8)
PREVIEW_COLUMNS = 8  # conditional previews: one row per class (at most PREVIEW_MAX_CLASSES), one fixed z per column
PREVIEW_MAX_CLASSES = 16

_D_OUTPUT = dict(panel="discriminator outputs", bounds=(0.0, 1.0))
STATS = (
    Stat("loss_D", panel="losses"),
    Stat("loss_G", panel="losses"),
    Stat("D_x", "D(x)", **_D_OUTPUT),
    Stat("D_G_z1", "D(G(z)) in D step", **_D_OUTPUT),
    Stat("D_G_z2", "D(G(z)) in G step", short="in G step", **_D_OUTPUT),
)
ADAPTIVE = (Stat("ada_p", "augment p", panel="adaptive augmentation", bounds=(0.0, 1.0)), Stat("ada_r_t", "r_t", panel="adaptive augmentation"))
GROWTH = (Stat("resolution", fmt="{:.0f}", panel="resolution", text="{0:.0f}x{0:.0f}"), Stat("alpha", fmt="{:.2f}", panel="resolution", bounds=(0.0, 1.0)))
QUALITY = {
    "FID": Stat("FID", fmt="{:.2f}", panel="FID (lower is better)"),
    "KID": Stat("KID", fmt="{:.4f}", shown=False),
    "precision": Stat("precision", panel="precision and recall", bounds=(0.0, 1.0), shown=False),
    "recall": Stat("recall", panel="precision and recall", bounds=(0.0, 1.0), shown=False),
    "classes_covered": Stat("classes_covered", "classes", fmt="{:.0f}"),
    "class_KL": Stat("class_KL", shown=False),
}

# Conditional generators otherwise learn to ignore z and draw one image per class (measured on
# MNIST with cdcgan: within-class spread fell to 7% of the real digits').
MODE_SEEKING_WEIGHT = 1.0


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
    r1: float = 0.0,
    penalised=None,
) -> torch.Tensor:
    """One update of D, then one of G, with the adversarial loss `loss` on logits (gancli.training.losses).

    Args:
        real: a batch of real images (B, C, H, W) in [-1, 1].
        z: latent vectors (B, latent_dim) for this step's fakes.
        labels: for conditional models, (labels of the real images, labels asked of G[, wrong labels
            for the real images]), each (B,). With wrong labels, D also learns that a real image with
            another class's label is fake (the matching-aware discriminator of Reed et al., 2016).
        autocast: a context for the forward passes (bf16 autocast for --precision bf16); backward
            passes run outside it, as PyTorch recommends.
        loss: "bce" (non-saturating), "hinge" or "wgan-gp".
        augment: a differentiable augmentation applied to every image D sees (DiffAugment), or None; one with an
            `observe` method (AdaptiveAugment) is shown D's logits on the real images after D's forward pass.
        noise: the random stream of the gradient penalty's mixing weights.
        r1: the weight of D's R1 penalty this step, gamma / 2 (times the interval, when it is applied lazily); 0: none.
        penalised: D as the gradient penalties run it (a double backward), when `discriminator` cannot (compiled).

    Returns the detached values named by STATS: loss_D, loss_G, D(x), and D(G(z)) in the D
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
        rejected = fake_logits
        if labels is not None and len(labels) > 2:  # real images with a wrong label count as fakes (GAN-CLS)
            rejected = torch.cat([fake_logits, discriminator(aug(real), labels[2])])
        loss_d = get_loss(loss).discriminator(real_logits, rejected)
    if hasattr(augment, "observe"):  # ADA: D's verdicts on the real images steer the augmentation's strength
        augment.observe(real_logits)
    if get_loss(loss).penalty:  # in fp32: a double backward through bf16 would lose the penalty's precision
        loss_d = loss_d + gradient_penalty(penalised or discriminator, real, fake, c_real, noise)
    if r1:  # in fp32 too, and through the same augmentation as D's other view of the reals
        loss_d = loss_d + r1 * r1_penalty(penalised or discriminator, real, c_real, aug)
    loss_d.backward()
    opt_d.step()

    # (2) G: maximise log D(G(z)), the non-saturating loss; fakes count as real for G's loss
    opt_g.zero_grad(set_to_none=True)
    with autocast():
        gen_logits = discriminator(aug(fake), *c_fake)
        loss_g = get_loss(loss).generator(gen_logits)
        if labels is not None:
            loss_g = loss_g + MODE_SEEKING_WEIGHT * mode_seeking_penalty(fake.float(), z)
    loss_g.backward()
    opt_g.step()

    with torch.no_grad():
        return torch.stack(
            [loss_d, loss_g, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(), torch.sigmoid(gen_logits).mean()]
        ).float()


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


def wrong_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Each label replaced by another class, uniformly among the other num_classes - 1."""
    shift = torch.randint(1, num_classes, labels.shape, device=labels.device, generator=generator)
    return (labels + shift) % num_classes


def preview_inputs(config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed z (and labels) behind every samples/step_*.png of a run.

    Unconditional: 64 latents. Conditional: a row per class, the same 8 latents in every row,
    so the grid shows what the label changes while z stays put.
    """
    if not get_architecture(config.arch).conditional:
        return next(latent_batches(config.seed, PREVIEW_COUNT, config.latent_dim, PREVIEW_COUNT)), torch.zeros(0, dtype=torch.long)
    classes = min(config.num_classes, PREVIEW_MAX_CLASSES)
    z = next(latent_batches(config.seed, PREVIEW_COLUMNS, config.latent_dim, PREVIEW_COLUMNS))
    return z.repeat(classes, 1), torch.arange(classes).repeat_interleave(PREVIEW_COLUMNS)


def ema_decay(decay: float, warmup: float, n: float) -> float:
    """The moving average's decay at its n-th update (n = 0, 1, ...).

    A fixed 0.999 would keep 74% of the random initial weights after 300 steps, so it ramps up: with warmup 0, as
    min(decay, (1 + n) / (10 + n)) (TensorFlow's ExponentialMovingAverage with num_updates); with warmup r, the
    half-life (log 0.5 / log decay steps) is at most r * n steps (StyleGAN2's ema_rampup, counted in steps).
    """
    if not warmup:
        return min(decay, (1 + n) / (10 + n))
    return min(decay, 0.5 ** (1 / max(warmup * n, 1e-8)))


def ema_with_warmup(decay: float, warmup: float = 0.0):
    """An AveragedModel update: exponential moving average whose decay ramps up as ema_decay() says."""

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = float(num_averaged)
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1 - ema_decay(decay, warmup, n))
        for a, c in zip(averaged, current):
            if not a.is_floating_point():  # counters such as BatchNorm's num_batches_tracked
                a.copy_(c)

    return update


class GANTask(Task):
    """What the loop needs to fit a GAN: G, D, their optimisers, one step, a fixed-z preview, sample quality."""

    stats = STATS

    def __init__(self, config: TrainConfig, dataset: ImageDataset, device: torch.device):
        super().__init__(config, dataset, device)
        check_classes(config.arch, config.num_classes, config.dataset)
        betas = (config.beta1, config.beta2)
        generator = self.add("generator", build_generator(config), config.lr_g, betas, "optimizer_g")
        discriminator = self.add("discriminator", build_discriminator(config), config.lr_d, betas, "optimizer_d")
        if config.freeze_d:
            from gancli.training.finetune import freeze_blocks

            frozen = freeze_blocks(discriminator, config, config.freeze_d)
            self.notices.append(f"--freeze-d {config.freeze_d}: D's first {config.freeze_d} blocks ({frozen:,} weights) stay as --init left them.")
        self.augment = self.adaptive = None
        policy = tuple(AUGMENT_POLICY.split(","))
        if config.augment == "diff":
            self.augment = lambda images: diff_augment(images, policy, self.noise)
        elif config.augment == "ada":  # its p is state: kept in checkpoints with the networks
            self.adaptive = self.modules["augment"] = AdaptiveAugment(policy).to(device)
            self.augment = _Observed(self.adaptive, self.noise)
            self.stats = STATS + ADAPTIVE
        self.ema = None
        if config.ema:  # weights and BatchNorm statistics averaged over steps: what sampling uses
            from torch.optim.swa_utils import AveragedModel

            self.ema = AveragedModel(generator, multi_avg_fn=ema_with_warmup(config.ema, config.ema_warmup), use_buffers=True)
            self.modules["generator_ema"] = self.ema
        self.quality = SampleQuality(config, device) if config.eval_every else None
        if self.quality is not None and self.quality.warning:
            self.notices.append(self.quality.warning)
        self.best_metric = ("FID", "min") if self.quality else None
        self.scores = (GROWTH if self.arch.growth else ()) + (self.quality.stats if self.quality else ())
        if self.arch.defaults:
            self.notices.append(f"{config.arch} trains with " + ", ".join(f"{k} {getattr(config, k)}" for k, _ in self.arch.defaults))
        self.images = dataset.images.to(device)
        self.labels = dataset.labels.to(device) if self.arch.conditional else None
        z, y = preview_inputs(config)
        self.preview_z, self.preview_cond = z.to(device), ((y.to(device),) if self.arch.conditional else ())

    def step(self, index: torch.Tensor) -> torch.Tensor:
        real = self.images[index].float().div_(127.5).sub_(1)
        if self.arch.growth:  # reals at the resolution G has reached, faded like its images
            real = self.modules["discriminator"].fade_real(real)
        z = torch.randn(real.shape[0], self.config.latent_dim, device=self.device, generator=self.noise)
        labels = None
        if self.labels is not None:  # fakes ask for classes uniformly at random
            labels = (self.labels[index], conditional_labels(real.shape[0], self.config.num_classes, self.device, self.noise))
            if self.config.label_mismatch and self.config.num_classes > 1:
                labels += (wrong_labels(labels[0], self.config.num_classes, self.noise),)
        stats = train_step(real, self.nets["generator"], self.nets["discriminator"], self.optimizers["optimizer_g"],
                           self.optimizers["optimizer_d"], z, labels, self.autocast, self.config.loss, self.augment, self.noise,
                           self.r1_weight(), self.twice["discriminator"])  # fmt: skip
        self.steps_taken += 1
        if self.arch.growth:
            self.modules["generator"].advance()
            self.modules["discriminator"].advance()
        if self.ema is not None:
            self.ema.update_parameters(self.modules["generator"])
        return stats if self.adaptive is None else torch.cat([stats, self.adaptive.values()])

    def r1_weight(self) -> float:
        """gamma / 2 times R1_INTERVAL on every R1_INTERVAL-th step (the first included), else 0 (lazy regularisation)."""
        if not self.config.r1 or self.steps_taken % R1_INTERVAL:
            return 0.0
        return self.config.r1 / 2 * R1_INTERVAL

    def start_from(self, checkpoint) -> list[str]:
        """G and D take the checkpoint's weights (the moving average starts from G); label layers start afresh when the
        classes differ."""
        from gancli.training.finetune import load_weights

        source = checkpoint.config
        if source.channels != self.config.channels:
            raise UsageError(f"--init '{checkpoint.path}' draws {source.channels}-channel images but '{self.config.dataset}' has "
                             f"{self.config.channels} channels; start from a run on images like these.")  # fmt: skip
        relabelled = self.arch.conditional and tuple(source.class_names) != tuple(self.config.class_names)
        for name in ("generator", "discriminator"):
            load_weights(self.modules[name], checkpoint, name, relabelled)
        if self.ema is not None:
            self.ema.module.load_state_dict(self.modules["generator"].state_dict())
        notices = [f"Starting from '{checkpoint.path}' (step {checkpoint.step:,} of {source.arch} on {source.dataset}): G and D take its weights."]
        if relabelled:
            notices.append(f"Its classes ({_names(source.class_names)}) are not this data's ({_names(self.config.class_names)}): "
                           "the label layers start afresh.")  # fmt: skip
        return notices

    def sampling_generator(self) -> torch.nn.Module:
        """The generator users get from this run: the moving average where there is one."""
        return self.ema.module if self.ema is not None else self.modules["generator"]

    def latest(self) -> dict[str, float | None]:
        scores = self.quality.latest() if self.quality else {}
        if self.arch.growth:  # where G is now (the step about to run), not an average over the row
            level, alpha = self.modules["generator"].growth()
            scores = {"resolution": self.modules["generator"].sizes[level], "alpha": alpha} | scores
        return scores

    def measure(self, step: int, final: bool = False) -> None:
        if self.quality and (step % self.config.eval_every == 0 or final):
            self.quality.measure(self.sampling_generator(), step)

    @torch.no_grad()
    def preview(self, path: Path) -> None:
        generator = self.sampling_generator()  # bare: a DDP forward would wait for the other ranks
        generator.eval()
        fakes = generator(self.preview_z, *self.preview_cond)
        generator.train()
        save_grid(to_uint8(fakes), path, nrow=PREVIEW_COLUMNS)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


class _Observed:
    """AdaptiveAugment drawing from the task's random stream, as train_step calls an augmentation."""

    def __init__(self, adaptive: AdaptiveAugment, noise: torch.Generator):
        self.adaptive, self.noise = adaptive, noise

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.adaptive(images, self.noise)

    def observe(self, real_logits: torch.Tensor) -> None:
        self.adaptive.observe(real_logits)


class SampleQuality:
    """FID and friends of the generator every --eval-every steps, with the run's dataset classifier."""

    def __init__(self, config: TrainConfig, device: torch.device):
        from gancli.evaluation.classify import check_matches
        from gancli.evaluation.evaluate import SCORE_NAMES
        from gancli.evaluation.features import ClassifierExtractor, accuracy_problem

        if not config.eval_classifier:
            raise UsageError(f"--eval-every needs a classifier: train one with 'gancli train {config.dataset} --arch classifier' and pass --eval-classifier RUN.")
        self.extractor = ClassifierExtractor(Path(config.eval_classifier), device)
        check_matches(self.extractor.config, config.dataset)
        problem = accuracy_problem(self.extractor, config.dataset)  # named with --eval-classifier: said, not refused
        self.warning = f"{problem}. FID while training will not mean much." if problem else None
        self.config, self.device = config, device
        names = SCORE_NAMES + (("classes_covered", "class_KL") if self.extractor.num_classes >= 2 else ())
        self.stats = tuple(QUALITY[name] for name in names)
        self.scores: dict[str, float | None] = dict.fromkeys(names)

    def latest(self) -> dict[str, float | None]:
        return dict(self.scores)

    def measure(self, generator: torch.nn.Module, step: int) -> None:
        from gancli.evaluation.evaluate import evaluate

        was_training = generator.training
        result = evaluate(generator, self.config, self.extractor, self.config.eval_n, seed=0, device=self.device)
        generator.train(was_training)
        self.scores = {k: result.scores.get(k) for k in self.scores}
