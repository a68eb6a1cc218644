"""Image-quality metrics: FID, KID, precision/recall and class coverage on feature vectors (the features
come from gancli.evaluation.features), and PSNR/SSIM between image pairs (upscalers).

Pure tensor maths, computed in float64 where it matters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of features (N, D), in float64."""
    x = features.double()
    return x.mean(0), torch.cov(x.T)


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """FID (Heusel et al., 2017): |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2).

    Tr((S1 S2)^1/2) is the sum of the square roots of the eigenvalues of S1^1/2 S2 S1^1/2, a
    symmetric matrix, so a symmetric eigensolver gives it stably.
    """
    values, vectors = torch.linalg.eigh(sigma1)
    root1 = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
    middle = root1 @ sigma2 @ root1
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_root
    return max(float(value), 0.0)


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID of two feature sets. With fewer images than dimensions (e.g. 16 Inception vectors of 2,048) the
    covariances have low rank: S1 = A A^T, S2 = B B^T with A, B the centred features / sqrt(n - 1), and
    Tr((S1 S2)^1/2) is the nuclear norm of A^T B, an n1 x n2 matrix, instead of two D x D eigensolves."""
    if min(len(real), len(fake)) >= real.shape[1]:
        return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))
    a, b = (_centred(x) for x in (real, fake))
    trace_root = torch.linalg.matrix_norm(a.T @ b, ord="nuc")
    value = (real.double().mean(0) - fake.double().mean(0)).square().sum() + a.square().sum() + b.square().sum() - 2 * trace_root
    return max(float(value), 0.0)


def _centred(features: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (D, N): centred columns scaled so that the result times its transpose is the covariance."""
    x = features.double()
    return ((x - x.mean(0)) / math.sqrt(max(len(x) - 1, 1))).T


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID (Binkowski et al., 2018): unbiased MMD^2 with the kernel (x.y / D + 1)^3, mean and std over subsets."""
    generator = torch.Generator().manual_seed(seed)
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    values = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=generator)[:m]].double()
        y = fake[torch.randperm(len(fake), generator=generator)[:m]].double()
        k_xx, k_yy, k_xy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off_diagonal = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
        values.append(float(off_diagonal - 2 * k_xy.mean()))
    t = torch.tensor(values)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def _kth_neighbour_radii(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    radii = []
    for part in x.split(chunk):
        distances = torch.cdist(part, x)
        radii.append(distances.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(radii)


def _inside_manifold(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """For each point: is it within radii[j] of some centre j?"""
    inside = []
    for part in points.split(chunk):
        inside.append((torch.cdist(part, centres) <= radii.unsqueeze(0)).any(1))
    return torch.cat(inside)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019) with k-NN balls as manifolds.

    Precision: the share of fakes inside the real manifold (are samples realistic?).
    Recall: the share of real images inside the fake manifold (is the data's variety covered?).
    """
    real, fake = real.float(), fake.float()
    precision = _inside_manifold(fake, real, _kth_neighbour_radii(real, k)).float().mean()
    recall = _inside_manifold(real, fake, _kth_neighbour_radii(fake, k)).float().mean()
    return float(precision), float(recall)


def class_coverage(predicted: torch.Tensor, num_classes: int, min_share: float = 0.1) -> dict[str, float]:
    """How the predicted classes of generated images spread over the classes.

    classes_covered: classes given at least `min_share` of a uniform share (1 / K) of the images.
    class_KL: KL(histogram || uniform) in nats; 0 when every class is equally common, log K for one class.
    """
    counts = torch.bincount(predicted, minlength=num_classes).double()
    p = counts / counts.sum()
    nonzero = p > 0
    kl = float((p[nonzero] * (p[nonzero] * num_classes).log()).sum())
    covered = int((p >= min_share / num_classes).sum())
    return {"classes_covered": covered, "class_KL": kl, "class_KL_max": math.log(num_classes)}


def class_variety(real: torch.Tensor, real_classes: torch.Tensor, fake: torch.Tensor, fake_classes: torch.Tensor) -> float:
    """Within-class variety of generated images relative to real ones, in feature space.

    For each class with at least two images on both sides: the RMS distance of its generated
    features to their mean over the same for real features; the mean of those ratios. 1 matches
    the data; below 1, a class is drawn with fewer looks than it has (mode collapse within a class,
    which the class histogram cannot see). NaN when no class has two images on both sides.
    """
    ratios = []
    for c in real_classes.unique():
        r, f = real[real_classes == c].double(), fake[fake_classes == c].double()
        if len(r) >= 2 and len(f) >= 2:
            ratios.append(_spread(f) / max(_spread(r), 1e-12))
    return sum(ratios) / len(ratios) if ratios else float("nan")


def _spread(x: torch.Tensor) -> float:
    return float((x - x.mean(0)).pow(2).sum(1).mean().sqrt())


# --- pixel fidelity: restored images against their originals ---------------------------------


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [-1, 1], over the whole batch."""
    mse = F.mse_loss((a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2).item()
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


def psnr_each(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image pair (B,), images in [-1, 1]; identical pairs give 100 dB."""
    mse = (((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2) ** 2).flatten(1).double().mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    return ssim_each(a, b).mean().item()


def ssim_each(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al., 2004) of each image pair (B,), images in [-1, 1]: 11x11
    Gaussian window, sigma 1.5, K1 0.01, K2 0.03, per channel on the valid region, then averaged."""
    x, y = (a.clamp(-1, 1).double() + 1) / 2, (b.clamp(-1, 1).double() + 1) / 2
    size = min(11, x.shape[-1], x.shape[-2])
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2).expand(x.shape[1], 1, size, size).contiguous()

    def blur(t):
        return F.conv2d(t, window, groups=x.shape[1])

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(1)
