"""Does a conditional generator draw the class it is asked for?

Trains a small CNN on the bundled MNIST digits (9,000 for training, 1,000 held out), exports
`gancli sample --per-class N --out-dir DIR` from a checkpoint through the real command line,
reads DIR back with torchvision.datasets.ImageFolder, and prints the classifier's accuracy on
the requested classes, per class and overall.

    python benchmarks/conditional_accuracy.py runs/cdcgan-mnist [--per-class 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets, transforms

from gancli.data.datasets import BUNDLED_MNIST, read_idx_pair


def digit_classifier(seed: int = 0, epochs: int = 3) -> tuple[nn.Module, float]:
    """A two-convolution CNN trained on 9,000 bundled digits; returns it and its held-out accuracy."""
    torch.manual_seed(seed)
    images, labels = read_idx_pair(BUNDLED_MNIST, "t10k")
    x = images.float() / 127.5 - 1
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        order = torch.randperm(9000)
        for i in range(0, 9000, 128):
            idx = order[i : i + 128]
            loss = F.cross_entropy(net(x[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        held_out = (net(x[9000:]).argmax(1) == labels[9000:]).float().mean().item()
    return net, held_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="conditional MNIST checkpoint or run directory")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    net, held_out = digit_classifier()
    print(f"classifier: held-out accuracy on 1,000 real digits {held_out:.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "aug"
        cmd = [sys.executable, "-m", "gancli", "sample", "--checkpoint", args.checkpoint,
               "--per-class", str(args.per_class), "--seed", str(args.seed), "--out-dir", str(out)]  # fmt: skip
        subprocess.run(cmd, check=True)
        folder = datasets.ImageFolder(str(out), transform=transforms.Compose([transforms.Grayscale(), transforms.ToTensor()]))
        x = torch.stack([img for img, _ in folder]) * 2 - 1
        wanted = torch.tensor(folder.targets)
        names = folder.classes
    with torch.no_grad():
        predicted = net(x).argmax(1)
    digits = torch.tensor([int(name) for name in names])[wanted]  # ImageFolder indexes sorted names
    hits = predicted == digits
    real, real_labels = read_idx_pair(BUNDLED_MNIST, "t10k")
    real = real.float() / 127.5 - 1
    # Diversity within a class: mean per-pixel standard deviation over that class's images.
    # A generator that ignores z (mode collapse) scores near 0 however accurate its classes are.
    ratios = []
    for c, name in enumerate(names):
        mask = wanted == c
        fake_spread = x[mask].std(0).mean().item()
        real_spread = real[real_labels == int(name)].std(0).mean().item()
        ratios.append(fake_spread / real_spread)
        print(f"class {name}: accuracy {hits[mask].float().mean():.3f} of {int(mask.sum())}, spread {fake_spread:.3f} (real {real_spread:.3f})")
    print(f"overall: {hits.float().mean():.3f} of {len(hits)} samples recognised as the requested digit")
    print(f"diversity: generated spread / real spread, mean over classes {sum(ratios) / len(ratios):.2f}")


if __name__ == "__main__":
    main()
