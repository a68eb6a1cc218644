"""Training throughput: gancli's loop against the classic PyTorch DCGAN loop, in one process.

(a) gancli: the dataset resized once and held as a uint8 tensor, batches by index
    (gancli.training.make_task(...).step), fused Adam, optional bf16 autocast.
(b) reference, in the style of pytorch/examples dcgan: a torchvision dataset, DataLoader
    (2 workers, shuffle) with per-sample Resize/ToTensor/Normalize, Adam, fp32.

Both train the same model for the same number of steps after warm-up. FLOPs per image come from
torch.utils.flop_counter on one step; the peak from a large matmul measured in this run.

    python benchmarks/train_throughput.py [--steps 30] [--warmup 5]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from gancli.config import TrainConfig
from gancli.data import BUNDLED_MNIST, load_dataset
from gancli.models import build_discriminator, build_generator
from gancli.training import bf16_supported, epoch_order, make_task


def matmul_peak(dtype: torch.dtype, n: int = 4096, repeats: int = 3, tries: int = 5) -> float:
    """Measured GFLOP/s of an n x n matmul in `dtype` on the CPU: the best of several tries."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(tries):
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9)
    return best


def flops_per_image(config: TrainConfig, batch: int = 8) -> float:
    """FLOPs of one training step (D on real and fake, G through D, both backward passes) per image."""
    g, d = build_generator(config), build_discriminator(config)
    real = torch.randn(batch, config.channels, config.image_size, config.image_size)
    with FlopCounterMode(display=False) as counter:
        fake = g(torch.randn(batch, config.latent_dim))
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        loss_d.backward()
        F.softplus(-d(fake)).mean().backward()
    return counter.get_total_flops() / batch


def time_gancli(config: TrainConfig, steps: int, warmup: int) -> float:
    dataset = load_dataset("mnist", config.image_size)
    torch.manual_seed(0)
    task = make_task(config, dataset, torch.device("cpu"))
    order = epoch_order(len(dataset), 0, 0)
    for i in range(warmup + steps):
        if i == warmup:
            started = time.perf_counter()
        task.step(order[i * config.batch_size : (i + 1) * config.batch_size])
    return steps * config.batch_size / (time.perf_counter() - started)


def time_reference(config: TrainConfig, steps: int, warmup: int, root: Path) -> float:
    """The pytorch/examples dcgan loop: DataLoader + per-sample transforms, plain Adam, fp32."""
    from torchvision import datasets, transforms

    data = datasets.MNIST(str(root), train=False, transform=transforms.Compose([
        transforms.Resize(config.image_size), transforms.CenterCrop(config.image_size),
        transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,)),
    ]))  # fmt: skip
    loader = torch.utils.data.DataLoader(data, batch_size=config.batch_size, shuffle=True, num_workers=2, drop_last=True)
    torch.manual_seed(0)
    net_g, net_d = build_generator(config), build_discriminator(config)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = torch.nn.BCEWithLogitsLoss()
    done = 0
    while done < warmup + steps:
        for real, _ in loader:
            if done == warmup:
                started = time.perf_counter()
            b = real.size(0)
            net_d.zero_grad()
            err_real = criterion(net_d(real), torch.full((b,), 1.0))
            err_real.backward()
            fake = net_g(torch.randn(b, config.latent_dim))
            err_fake = criterion(net_d(fake.detach()), torch.full((b,), 0.0))
            err_fake.backward()
            opt_d.step()
            net_g.zero_grad()
            criterion(net_d(fake), torch.full((b,), 1.0)).backward()
            opt_g.step()
            done += 1
            if done == warmup + steps:
                break
    return steps * config.batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            with gzip.open(BUNDLED_MNIST / f"t10k-{kind}.gz") as src, open(raw / f"t10k-{kind}", "wb") as dst:
                shutil.copyfileobj(src, dst)
            shutil.copy(raw / f"t10k-{kind}", raw / f"train-{kind}")  # torchvision checks that both splits exist
        peak32 = matmul_peak(torch.float32)
        peak16 = matmul_peak(torch.bfloat16) if bf16_supported(torch.device("cpu")) else None
        print(f"matmul peak: fp32 {peak32:.0f} GFLOP/s" + (f", bf16 {peak16:.0f} GFLOP/s" if peak16 else ", no bf16"))
        cases = [("dcgan", 64, "fp32"), ("dcgan", 64, "bf16"), ("dcgan", 28, "fp32"), ("gan", 28, "fp32")]
        print(f"{'case':<22}{'gancli img/s':>13}{'reference':>11}{'ratio':>7}{'GFLOP/img':>10}{'gancli % peak':>14}{'ref % peak':>11}")
        reference_cache: dict[tuple, float] = {}
        for arch, size, precision in cases:
            if precision == "bf16" and not peak16:
                continue
            config = TrainConfig(arch=arch, image_size=size, channels=1, batch_size=64, precision=precision)
            ours = time_gancli(config, args.steps, args.warmup)
            key = (arch, size)
            if key not in reference_cache:
                reference_cache[key] = time_reference(config, args.steps, args.warmup, Path(tmp))
            ref = reference_cache[key]
            flops = flops_per_image(config)
            peak = peak16 if precision == "bf16" else peak32
            print(f"{arch} {size}x{size} {precision:<9}{ours:>13.1f}{ref:>11.1f}{ours / ref:>7.2f}{flops / 1e9:>10.3f}"
                  f"{100 * ours * flops / 1e9 / peak:>13.0f}%{100 * ref * flops / 1e9 / peak32:>10.0f}%")  # fmt: skip


if __name__ == "__main__":
    main()
