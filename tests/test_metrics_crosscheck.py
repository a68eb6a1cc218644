"""gancli's hand-written metrics against the reference implementations (torch-fidelity for FID, KID and
precision/recall; torchmetrics for PSNR and SSIM), on the same features and images, within 1e-4 relative.

Both libraries come with the test extra. torchmetrics has no precision/recall, so torch-fidelity checks it.
"""

from __future__ import annotations

import pytest
import torch
import torch_fidelity.metric_fid as fidelity_fid  # the test extra installs both libraries
import torch_fidelity.metric_kid as fidelity_kid
import torch_fidelity.metric_prc as fidelity_prc
import torchmetrics.functional.image as tm

from gancli.evaluation import metrics

RELATIVE = 1e-4


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """Correlated, non-Gaussian features, like a classifier's penultimate layer."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing).relu() + shift


def _reference_fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    stats = [fidelity_fid.fid_features_to_statistics(x) for x in (real, fake)]
    return fidelity_fid.fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_fid_matches_torch_fidelity(shift):
    real, fake = _features(800, 32, seed=1), _features(700, 32, seed=2, shift=shift)
    assert metrics.fid(real, fake) == pytest.approx(_reference_fid(real, fake), rel=RELATIVE)


def test_fid_with_fewer_images_than_dimensions_matches_torch_fidelity():
    # gancli's low-rank path (nuclear norm) against scipy's sqrtm of the full, singular covariances
    real, fake = _features(40, 64, seed=3), _features(30, 64, seed=4, shift=0.2)
    assert metrics.fid(real, fake) == pytest.approx(_reference_fid(real, fake), rel=RELATIVE)


def test_kid_matches_torch_fidelity():
    # One subset holding every image: the unbiased MMD does not depend on the order, so both libraries
    # compute it on the same sets whatever their random subset draws.
    real, fake = _features(300, 48, seed=5), _features(300, 48, seed=6, shift=0.1)
    ours, _ = metrics.kid(real, fake, subsets=1, subset_size=300)
    theirs = fidelity_kid.kid_features_to_metric(
        fake, real, kid_subsets=1, kid_subset_size=300, kid_degree=3, kid_gamma=None, kid_coef0=1, rng_seed=0, verbose=False
    )["kernel_inception_distance_mean"]
    assert ours == pytest.approx(theirs, rel=RELATIVE)


def test_precision_and_recall_match_torch_fidelity():
    real, fake = _features(500, 16, seed=7), _features(400, 16, seed=8, shift=0.15)
    precision, recall = metrics.precision_recall(real, fake, k=3)
    theirs = fidelity_prc.calculate_precision_recall_part(fake.float(), real.float(), neighborhood=3)
    assert 0.05 < precision < 0.95 and 0.05 < recall < 0.95  # a comparison that could fail
    assert (precision, recall) == pytest.approx(theirs, rel=RELATIVE)


def _images(seed: int, channels: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs in [-1, 1]: smooth images and noisy, blurred copies of them."""
    g = torch.Generator().manual_seed(seed)
    a = torch.nn.functional.interpolate(torch.rand(6, channels, 8, 8, generator=g), size=size, mode="bilinear") * 2 - 1
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    return a, b


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_matches_torchmetrics(channels):
    a, b = _images(9, channels)
    theirs = tm.peak_signal_noise_ratio((a + 1) / 2, (b + 1) / 2, data_range=1.0, reduction="none", dim=(1, 2, 3))
    assert torch.allclose(metrics.psnr_each(a, b), theirs.double(), rtol=RELATIVE)
    whole = tm.peak_signal_noise_ratio((a + 1) / 2, (b + 1) / 2, data_range=1.0)
    assert metrics.psnr(a, b) == pytest.approx(float(whole), rel=RELATIVE)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_torchmetrics(channels):
    # gancli averages the SSIM map over the valid region, as Wang et al.'s reference code and scikit-image
    # do; torchmetrics pads by reflection and averages over the borders too. Its full map, cut to the
    # valid region, is the same quantity.
    a, b = _images(10, channels)
    _, full = tm.structural_similarity_index_measure(
        (a + 1).double() / 2,
        (b + 1).double() / 2,
        data_range=1.0,
        kernel_size=11,
        sigma=1.5,
        reduction="none",
        return_full_image=True,
    )
    theirs = full[..., 5:-5, 5:-5].flatten(1).mean(1)
    assert 0.2 < float(theirs.mean()) < 0.99
    assert torch.allclose(metrics.ssim_each(a, b), theirs, rtol=RELATIVE)
