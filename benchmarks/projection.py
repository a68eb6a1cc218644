"""Projection quality and speed: how well `gancli project` redraws images the run never saw, against the best of
10,000 random samples per image (nearest neighbour in pixel space), and images the generator drew itself.

Targets: held-out images at least 3 dB above the baseline; the generator's own images at least 30 dB; at most 2 s
per image at 28 px in batches of 64 on 2 CPU cores. Also: which loss terms help (on a subset), and the time at 64 px.

    python benchmarks/projection.py RUN [--images 1000] [--steps 300] [--terms 128]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def scores(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    from gancli.evaluation.metrics import psnr_each, ssim_each

    x, y = a.float() / 127.5 - 1, b.float() / 127.5 - 1
    return float(psnr_each(x, y).mean()), float(ssim_each(x, y).mean())


def nearest_of_random(g, targets: torch.Tensor, samples: int) -> torch.Tensor:
    """For each target, the closest (pixel L2) of `samples` random images of the generator."""
    drawn = torch.cat([g.sample(n=min(1000, samples - i), seed=10_000 + i) for i in range(0, samples, 1000)]).float().flatten(1)
    best = torch.empty(len(targets), dtype=torch.long)
    flat = targets.float().flatten(1)
    for i in range(0, len(flat), 256):
        best[i : i + 256] = torch.cdist(flat[i : i + 256], drawn).argmin(1)
    return drawn[best].view_as(targets).round().to(torch.uint8)


def loss_terms(args, g, targets, projected) -> list[tuple]:
    """PSNR and SSIM on the first args.terms images with each loss term and setting changed, one at a time."""
    subset = targets[: args.terms]
    terms = []
    for name, kw in () if not len(subset) else (("pixel L2 (the default)", {}), ("+ discriminator features x1", {"feature_weight": 1.0}),
                     ("+ discriminator features x10", {"feature_weight": 10.0}),
                     *((("+ classifier features x1", {"feature_weight": 1.0, "classifier": args.classifier}),
                        ("+ classifier features x10", {"feature_weight": 10.0, "classifier": args.classifier})) if args.classifier else ())):  # fmt: skip
        if args.terms_only and "discriminator" in name:
            continue  # --terms-only: the default and the classifier's rows
        out, _ = projected(subset, **kw)
        terms.append((name, *scores(out, subset)))
    if args.terms_only:
        return terms
    from gancli.use import projection

    if subset.numel() and hasattr(g.net, "forward_w"):
        projection.STYLES_SHARED = True
        terms.append(("one w shared by every layer instead of w+", *scores(projected(subset)[0], subset)))
        projection.STYLES_SHARED = False
    elif subset.numel():
        prior, starts = projection.PRIOR, projection.STARTS
        projection.PRIOR = 0.0
        terms.append(("no Gaussian-shell prior", *scores(projected(subset)[0], subset)))
        projection.PRIOR, projection.STARTS = prior, 1
        terms.append(("one random start instead of the nearest of 256", *scores(projected(subset)[0], subset)))
        projection.STARTS = starts
    for steps in (args.steps // 3, args.steps * 3) if subset.numel() else ():
        terms.append((f"{steps} steps", *scores(projected(subset, steps=steps)[0], subset)))

    return terms


def print_terms(args, g, targets, projected) -> None:
    print_table(loss_terms(args, g, targets, projected), args.terms)


def print_table(terms: list[tuple], count: int) -> None:
    print(f"\nLoss terms and settings, on the first {count} held-out images:")
    print("| projection | PSNR dB | SSIM |")
    print("| --- | ---: | ---: |")
    for name, p, s in terms:
        print(f"| {name} | {p:.2f} | {s:.3f} |")


def main() -> None:
    import gancli
    from gancli.data.datasets import load_test_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--terms", type=int, default=128, help="images for the loss-term comparison")
    parser.add_argument("--label", action="store_true", help="conditional runs: project with each image's true class")
    parser.add_argument("--classifier", type=Path, help="a dataset classifier run: adds its features as a loss term to the comparison")
    parser.add_argument("--terms-only", action="store_true", help="only the default and the classifier's rows of the loss-term comparison")
    args = parser.parse_args()
    g = gancli.load(args.run, device="cpu")
    images, labels, source = load_test_images(g.config.dataset)
    from gancli.use.projection import fit_images

    targets = fit_images(list(images[: args.images]), g.config.image_size, g.config.channels)[0]  # 28 px test images for a 32 px run
    truth = labels[: args.images].tolist()
    print(f"{g!r}; {len(targets)} held-out images: {source}; {torch.get_num_threads()} threads")
    rows = []

    def projected(x, steps=args.steps, **kw):
        """Reconstructions of x and the seconds they took; with --label, each class's images with their class."""
        started = time.perf_counter()
        if not (args.label and g.arch.conditional):
            return g.project(x, steps=steps, **kw).images, time.perf_counter() - started
        out = torch.empty_like(x)
        for c in sorted(set(truth[: len(x)])):
            idx = [i for i, t in enumerate(truth[: len(x)]) if t == c]
            out[idx] = g.project(x[idx], steps=steps, label=c, **kw).images
        return out, time.perf_counter() - started

    if args.terms_only:
        return print_terms(args, g, targets, projected)
    baseline = nearest_of_random(g, targets, 10_000)
    rows.append(("best of 10,000 random samples (baseline)", *scores(baseline, targets), None))
    drawn, seconds = projected(targets)
    rows.append((f"gancli project, {args.steps} steps", *scores(drawn, targets), seconds / len(targets)))
    base_psnr, proj_psnr = rows[0][1], rows[1][1]
    own = g.sample(seeds=list(range(5_000, 5_000 + args.images)), **({"label": 0} if g.arch.conditional else {}))
    own_drawn = g.project(own, steps=args.steps, **({"label": 0} if g.arch.conditional else {})).images
    own_psnr, own_ssim = scores(own_drawn, own)
    rows.append(("the generator's own images (seeds 5000-...)", own_psnr, own_ssim, None))

    terms = loss_terms(args, g, targets, projected)

    work = Path(tempfile.mkdtemp(prefix="gancli-proj-"))
    subprocess.run([sys.executable, "-m", "gancli", "train", "mnist", "--image-size", "64", "--steps", "2", "--outdir", str(work / "d64"),
                    "--device", "cpu"], check=True, capture_output=True)  # fmt: skip
    g64 = gancli.load(work / "d64", device="cpu")
    x64 = g64.sample(n=64, seed=1)
    g64.project(x64, steps=1)  # the start (nearest of 256) and the final render, without the steps
    started = time.perf_counter()
    g64.project(x64, steps=31)
    per64 = (time.perf_counter() - started) / 64
    once = time.perf_counter()
    g64.project(x64, steps=1)
    fixed = (time.perf_counter() - once) / 64
    per64 = fixed + (per64 - fixed) / 30 * args.steps  # 30 steps timed, scaled to --steps

    print("| images | PSNR dB | SSIM | s per image (batches of 64) |")
    print("| --- | ---: | ---: | ---: |")
    for name, p, s, t in rows:
        print(f"| {name} | {p:.2f} | {s:.3f} | {'' if t is None else f'{t:.2f}'} |")
    print(f"| dcgan 64x64 at its default widths (timing only: 30 steps timed, scaled to {args.steps}) | | | {per64:.2f} |")
    print(f"held-out: projection - baseline = {proj_psnr - base_psnr:+.2f} dB (target +3: {'met' if proj_psnr - base_psnr >= 3 else 'MISSED'}); "
          f"own images {own_psnr:.2f} dB (target 30: {'met' if own_psnr >= 30 else 'MISSED'}); "
          f"{rows[1][3]:.2f} s per image at 28 px (target 2: {'met' if rows[1][3] <= 2 else 'MISSED'})")  # fmt: skip
    print_table(terms, args.terms)


if __name__ == "__main__":
    main()
