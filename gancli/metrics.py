"""Sample-quality metrics on feature vectors: FID, KID, precision/recall, class coverage.

Pure tensor maths, computed in float64 where it matters; the features come from gancli.features.
"""

from __future__ import annotations

import math

import torch


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
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


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
