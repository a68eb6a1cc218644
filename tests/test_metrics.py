"""FID, KID, precision/recall and class coverage against cases with known answers."""

import math

import pytest
import torch

from gancli.evaluation import metrics


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    a, b = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64), torch.tensor([4.0, 1.0, 1.0], dtype=torch.float64)
    expected = (mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum()  # |mu1-mu2|^2 + sum (sqrt a - sqrt b)^2
    assert metrics.frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(float(expected), rel=1e-9)


def test_fid_is_near_zero_for_the_same_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4000, 8, generator=g), torch.randn(4000, 8, generator=g)
    assert metrics.fid(x, y) < 0.05
    assert metrics.fid(x, y + 1.0) == pytest.approx(8.0, rel=0.05)  # |shift|^2 = 8 * 1^2


@pytest.mark.parametrize("n_real, n_fake", [(16, 16), (10, 30), (40, 12)])
def test_fid_with_fewer_images_than_dimensions_equals_the_full_eigensolve(n_real, n_fake):
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(n_real, 64, generator=g), 0.5 * torch.randn(n_fake, 64, generator=g) + 0.2
    full = metrics.frechet_distance(*metrics.gaussian_stats(real), *metrics.gaussian_stats(fake))
    assert metrics.fid(real, fake) == pytest.approx(full, rel=1e-6)


def test_kid_is_unbiased_near_zero_and_positive_for_different_data():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(1000, 16, generator=g), torch.randn(1000, 16, generator=g)
    same, _ = metrics.kid(x, y, subsets=10, subset_size=500)
    shifted, _ = metrics.kid(x, y + 0.5, subsets=10, subset_size=500)
    assert abs(same) < 0.01
    assert shifted > 10 * max(abs(same), 1e-4)


def test_precision_and_recall_separate_quality_from_coverage():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(1000, 2, generator=g)
    collapsed = real[:50] + 0.01 * torch.randn(50, 2, generator=g)  # realistic but only a corner of the data
    precision, recall = metrics.precision_recall(real, collapsed.repeat(20, 1))
    assert precision > 0.9 and recall < 0.2
    far = torch.randn(1000, 2, generator=g) + 20  # unrealistic
    precision, recall = metrics.precision_recall(real, far)
    assert precision == 0 and recall == 0
    precision, recall = metrics.precision_recall(real, torch.randn(1000, 2, generator=g))
    assert precision > 0.8 and recall > 0.8


def test_class_coverage_counts_classes_and_measures_kl_from_uniform():
    uniform = metrics.class_coverage(torch.arange(10).repeat(50), 10)
    assert uniform["classes_covered"] == 10 and uniform["class_KL"] == pytest.approx(0.0, abs=1e-12)
    one = metrics.class_coverage(torch.full((500,), 3), 10)
    assert one["classes_covered"] == 1 and one["class_KL"] == pytest.approx(math.log(10))
    rare = metrics.class_coverage(torch.cat([torch.arange(9).repeat(100), torch.tensor([9])]), 10)
    assert rare["classes_covered"] == 9  # one image of class 9 in 901 is below a tenth of a uniform share


def test_class_variety_sees_collapse_inside_a_class():
    torch.manual_seed(0)
    real = torch.randn(400, 8)
    classes = torch.arange(400) % 4
    real[:, 0] += 10 * classes  # four well-separated classes
    same = torch.randn(400, 8)
    same[:, 0] += 10 * classes
    assert metrics.class_variety(real, classes, same, classes) == pytest.approx(1.0, abs=0.1)
    collapsed = same.clone()
    collapsed[:, 1:] *= 0.2  # each class drawn with a fifth of its spread in most directions
    assert metrics.class_variety(real, classes, collapsed, classes) < 0.5
    assert math.isnan(metrics.class_variety(real, classes, same[:1], classes[:1]))
