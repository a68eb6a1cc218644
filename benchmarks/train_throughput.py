"""Training throughput: gancli's loop against the classic PyTorch DCGAN loop, in one process.

(a) gancli: the dataset resized once and held as a uint8 tensor, batches by index
    (gancli.training.tasks.make_task(...).step), fused Adam, optional bf16 autocast.
(b) reference, in the style of pytorch/examples dcgan: a torchvision dataset, DataLoader
    (2 workers, shuffle) with per-sample Resize/ToTensor/Normalize, Adam, fp32.

Both train the same model for the same number of steps after warm-up. FLOPs per image come from
torch.utils.flop_counter on one step; the peak from a large matmul measured in this run.

Each case alternates the two loops `--repeats` times and reports the medians, so a slow spell
of the machine hits both. --compile adds torch.compile cases; --device cuda runs on a GPU.

    python benchmarks/train_throughput.py [--steps 30] [--warmup 5] [--repeats 3] [--compile] [--device cpu]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from gancli.config import TrainConfig
from gancli.data.datasets import BUNDLED_MNIST, load_dataset
from gancli.models import build_discriminator, build_generator
from gancli.device import bf16_supported, compiler
from gancli.training.tasks import make_task
from gancli.training.loop import epoch_order


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 4096, repeats: int = 3, tries: int = 5) -> float:
    """Measured GFLOP/s of an n x n matmul in `dtype`: the best of several tries."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    best = 0.0
    for _ in range(tries):
        synchronize(device)
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
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


class GancliLoop:
    """gancli's task, built once per case (a compiled one keeps its compiled code across repeats)."""

    def __init__(self, config: TrainConfig, device: torch.device, compiled: bool):
        self.dataset = load_dataset("mnist", config.image_size)
        torch.manual_seed(0)
        self.task = make_task(config, self.dataset, device)
        if compiled:
            self.task.wrap(compiler())
        self.config, self.device, self.done = config, device, 0

    def images_per_s(self, steps: int, warmup: int) -> float:
        b = self.config.batch_size
        per_epoch = len(self.dataset) // b
        order = epoch_order(len(self.dataset), 0, 0).to(self.device)
        for i in range(warmup + steps):
            if i == warmup:
                synchronize(self.device)
                started = time.perf_counter()
            position = (self.done + i) % per_epoch
            self.task.step(order[position * b : (position + 1) * b])
        synchronize(self.device)
        self.done += warmup + steps
        return steps * b / (time.perf_counter() - started)


class ReferenceLoop:
    """The pytorch/examples dcgan loop: DataLoader + per-sample transforms, plain Adam, fp32."""

    def __init__(self, config: TrainConfig, device: torch.device, root: Path):
        from torchvision import datasets, transforms

        data = datasets.MNIST(str(root), train=False, transform=transforms.Compose([
            transforms.Resize(config.image_size), transforms.CenterCrop(config.image_size),
            transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,)),
        ]))  # fmt: skip
        self.loader = torch.utils.data.DataLoader(data, batch_size=config.batch_size, shuffle=True, num_workers=2, drop_last=True)
        torch.manual_seed(0)
        self.net_g, self.net_d = build_generator(config).to(device), build_discriminator(config).to(device)
        self.opt_g = torch.optim.Adam(self.net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.config, self.device = config, device

    def images_per_s(self, steps: int, warmup: int) -> float:
        net_g, net_d, device = self.net_g, self.net_d, self.device
        criterion = torch.nn.BCEWithLogitsLoss()
        done = 0
        while done < warmup + steps:
            for real, _ in self.loader:  # a new epoch's workers start here, as in the example
                if done == warmup:
                    synchronize(device)
                    started = time.perf_counter()
                real = real.to(device)
                b = real.size(0)
                net_d.zero_grad()
                err_real = criterion(net_d(real), torch.full((b,), 1.0, device=device))
                err_real.backward()
                fake = net_g(torch.randn(b, self.config.latent_dim, device=device))
                err_fake = criterion(net_d(fake.detach()), torch.full((b,), 0.0, device=device))
                err_fake.backward()
                self.opt_d.step()
                net_g.zero_grad()
                criterion(net_d(fake), torch.full((b,), 1.0, device=device)).backward()
                self.opt_g.step()
                done += 1
                if done == warmup + steps:
                    break
        synchronize(device)
        return steps * self.config.batch_size / (time.perf_counter() - started)


def write_mnist_for_torchvision(tmp: Path) -> None:
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        with gzip.open(BUNDLED_MNIST / f"t10k-{kind}.gz") as src, open(raw / f"t10k-{kind}", "wb") as dst:
            shutil.copyfileobj(src, dst)
        shutil.copy(raw / f"t10k-{kind}", raw / f"train-{kind}")  # torchvision checks that both splits exist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd gancli loops")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as gancli train does on CUDA
    with tempfile.TemporaryDirectory() as tmp:
        write_mnist_for_torchvision(Path(tmp))
        peak32 = matmul_peak(torch.float32, device)
        peak16 = matmul_peak(torch.bfloat16, device) if bf16_supported(device) else None
        print(f"{device.type}, {torch.get_num_threads()} threads; matmul peak: fp32 {peak32:.0f} GFLOP/s"
              + (f", bf16 {peak16:.0f} GFLOP/s" if peak16 else ", no bf16"))  # fmt: skip
        cases = [("dcgan", 64, "fp32", False), ("dcgan", 64, "bf16", False), ("dcgan", 28, "fp32", False), ("gan", 28, "fp32", False)]
        if args.compile:
            cases += [(arch, size, precision, True) for arch, size, precision, _ in cases]
        print(f"{'case':<28}{'gancli img/s':>13}{'reference':>11}{'ratio':>7}{'GFLOP/img':>10}{'gancli % peak':>14}{'ref % peak':>11}")
        references: dict[tuple, ReferenceLoop] = {}
        for arch, size, precision, compiled in cases:
            if precision == "bf16" and not peak16:
                continue
            config = TrainConfig(arch=arch, image_size=size, channels=1, batch_size=64, precision=precision)
            ours_loop = GancliLoop(config, device, compiled)
            ref_loop = references.setdefault((arch, size), ReferenceLoop(config, device, Path(tmp)))
            ours, ref = [], []
            for _ in range(args.repeats):  # interleaved: a slow spell of the machine hits both loops
                ours.append(ours_loop.images_per_s(args.steps, args.warmup))
                ref.append(ref_loop.images_per_s(args.steps, args.warmup))
            ours_m, ref_m = statistics.median(ours), statistics.median(ref)
            flops = flops_per_image(config)
            peak = peak16 if precision == "bf16" else peak32
            name = f"{arch} {size}x{size} {precision}" + (" compile" if compiled else "")
            print(f"{name:<28}{ours_m:>13.1f}{ref_m:>11.1f}{ours_m / ref_m:>7.2f}{flops / 1e9:>10.3f}"
                  f"{100 * ours_m * flops / 1e9 / peak:>13.0f}%{100 * ref_m * flops / 1e9 / peak32:>10.0f}%", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
