"""Differentiable augmentation for small datasets: DiffAugment (Zhao et al., 2020) and ADA's adaptive strength
(Karras et al., 2020).

The same random colour, translation and cutout are applied to every image D sees, real or
fake, in D's step and in G's; being differentiable, they let G's gradients pass. D then cannot
memorise a few hundred images, and G is not pushed to reproduce the augmentations.
`--augment diff` applies all three to every image; `--augment ada` applies each with a probability p
that follows D's overfitting (AdaptiveAugment).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ADA_TARGET = 0.6  # the r_t = E[sign(D(real))] that p steers towards (StyleGAN2-ADA's value)
ADA_INTERVAL = 4  # steps between adjustments of p
# images over which p can move from 0 to 1: StyleGAN2-ADA's 500k suits its runs of millions of images; a CPU run
# of gancli sees a few hundred thousand in 10 minutes (measured: benchmarks/small_data.py)
ADA_SPEED_IMAGES = 100_000

def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    for name in policy:
        x = _AUGMENTS[name](x, generator)
    return x


def _rand(x: torch.Tensor, generator, *shape) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, generator=generator, dtype=x.dtype)


def _color(x, generator):
    x = x + (_rand(x, generator, 1, 1, 1) - 0.5)  # brightness (images in [-1, 1]: half the paper's shift in [0, 1] units x 2)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, generator, 1, 1, 1) * 2) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, generator, 1, 1, 1) + 0.5) + mean  # contrast


def _translation(x, generator, ratio: float = 0.125):
    """Shift each image by up to ratio of its size, filling with zeros (grey), by one gather."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = (torch.rand(b, 1, 1, device=x.device, generator=generator) * (2 * sh + 1)).long() - sh
    tx = (torch.rand(b, 1, 1, device=x.device, generator=generator) * (2 * sw + 1)).long() - sw
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy.unsqueeze(0) + ty + 1).clamp(0, h + 1)
    gx = (gx.unsqueeze(0) + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # out-of-range coordinates land on the zero border
    flat = padded.permute(0, 2, 3, 1)[torch.arange(b, device=x.device).view(b, 1, 1), gy, gx]
    return flat.permute(0, 3, 1, 2).contiguous()


def _cutout(x, generator, ratio: float = 0.5):
    """Zero a square of half the image's size, centred at a random pixel (clipped at the edges)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = (torch.rand(b, 1, 1, device=x.device, generator=generator) * h).long() - ch // 2
    left = (torch.rand(b, 1, 1, device=x.device, generator=generator) * w).long() - cw // 2
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (gy >= top) & (gy < top + ch) & (gx >= left) & (gx < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}


class AdaptiveAugment(torch.nn.Module):
    """ADA: each transform of `policy` applied to each image with probability p, p moved every ADA_INTERVAL steps
    by sign(r_t - ADA_TARGET) x images seen / ADA_SPEED_IMAGES, where r_t is the mean sign of D's logits on the
    (augmented) real images since the last move. p, r_t and the running sums are buffers: checkpoints keep them,
    and a resumed run goes on with the same p. Under torchrun the sums are added over ranks, so p is the same everywhere.
    """

    def __init__(self, policy: tuple[str, ...]):
        super().__init__()
        self.policy = policy
        self.register_buffer("p", torch.zeros((), dtype=torch.float64))
        self.register_buffer("r_t", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sums", torch.zeros(2, dtype=torch.float64))  # sign(D(real)) summed, and how many, since the last move
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self._calls: int | None = None  # a Python copy of `calls` (read once, after a resume has loaded it): no device sync per step

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        p = self.p.to(x.dtype)
        for name in self.policy:
            chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=generator, dtype=x.dtype) < p
            x = torch.where(chosen, _AUGMENTS[name](x, generator), x)
        return x

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor) -> None:
        """Count D's verdicts on this step's real images; every ADA_INTERVAL calls, move p."""
        import torch.distributed as dist

        if self._calls is None:
            self._calls = int(self.calls)
        logits = real_logits.detach().double()
        self.sums += torch.stack([logits.sign().sum(), logits.new_tensor(logits.numel())])
        self._calls += 1
        self.calls.fill_(self._calls)
        if self._calls % ADA_INTERVAL:
            return
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)
        self.r_t.copy_(self.sums[0] / self.sums[1])
        self.p.add_(torch.sign(self.r_t - ADA_TARGET) * self.sums[1] / ADA_SPEED_IMAGES).clamp_(0.0, 1.0)
        self.sums.zero_()

    def values(self) -> torch.Tensor:
        """(p, r_t) as float32, for the step's stats."""
        return torch.stack([self.p, self.r_t]).float()
