"""Adversarial losses on D's logits: the non-saturating BCE loss, hinge, and Wasserstein with gradient penalty.

    bce      D: -log D(x) - log(1 - D(G(z)))     G: -log D(G(z))        (Goodfellow et al., 2014)
    hinge    D: relu(1 - D(x)) + relu(1 + D(G(z)))   G: -D(G(z))        (Lim & Ye, 2017; SAGAN)
    wgan-gp  D: D(G(z)) - D(x) + 10 (|grad D(x_hat)| - 1)^2   G: -D(G(z))  (Gulrajani et al., 2017)

and R1 (Mescheder et al., 2018), a penalty on D's gradient at real images that any of them may add (--r1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GP_WEIGHT = 10.0
DRIFT_WEIGHT = 1e-3  # keeps the critic's outputs near 0 so they stay finite (Karras et al., 2018)


class AdversarialLoss:
    """A loss on D's logits, chosen by name (--loss); tasks call its two halves and ask whether it wants a penalty."""

    name = ""
    penalty = False  # a gradient penalty on D, added in fp32 by the task (gradient_penalty below)

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, gen_logits: torch.Tensor) -> torch.Tensor:
        return -gen_logits.mean()


class NonSaturating(AdversarialLoss):
    name = "bce"

    def discriminator(self, real_logits, fake_logits):
        return F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + F.binary_cross_entropy_with_logits(
            fake_logits, torch.zeros_like(fake_logits)
        )

    def generator(self, gen_logits):  # non-saturating: fakes count as real for G's loss
        return F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))


class Hinge(AdversarialLoss):
    name = "hinge"

    def discriminator(self, real_logits, fake_logits):
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


class Wasserstein(AdversarialLoss):
    name, penalty = "wgan-gp", True

    def discriminator(self, real_logits, fake_logits):
        return fake_logits.mean() - real_logits.mean() + DRIFT_WEIGHT * real_logits.square().mean()


LOSSES: dict[str, AdversarialLoss] = {loss.name: loss for loss in (NonSaturating(), Hinge(), Wasserstein())}


def get_loss(name: str) -> AdversarialLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; use one of: {', '.join(LOSSES)}") from None


def discriminator_loss(name: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return get_loss(name).discriminator(real_logits, fake_logits)


def generator_loss(name: str, gen_logits: torch.Tensor) -> torch.Tensor:
    return get_loss(name).generator(gen_logits)


def gradient_penalty(discriminator, real: torch.Tensor, fake: torch.Tensor, condition: tuple, generator: torch.Generator | None) -> torch.Tensor:
    """GP_WEIGHT * E[(|grad D(x_hat)| - 1)^2] at random points x_hat between real and fake images."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    logits = discriminator(mixed, *condition)
    (grad,) = torch.autograd.grad(logits.sum(), mixed, create_graph=True)
    return GP_WEIGHT * (grad.flatten(1).norm(dim=1) - 1).square().mean()


def r1_penalty(discriminator, real: torch.Tensor, condition: tuple, augment) -> torch.Tensor:
    """E[|grad_x D(augment(x))|^2] over the real images x: D kept flat where the data is (Mescheder et al., 2018)."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(augment(real), *condition)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()
