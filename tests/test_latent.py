"""Seeds, latent paths and label parsing: the arithmetic behind sample --seeds and interpolate."""

import pytest
import torch

from gancli.errors import UsageError
from gancli.use.labels import parse_label, parse_label_list
from gancli.use.latent import lerp, parse_seeds, path_fractions, seed_latent, seed_latents, slerp

FASHION = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")


def test_a_seed_is_one_fixed_vector():
    a, b = seed_latent(42, 100), seed_latent(42, 100)
    assert torch.equal(a, b) and a.shape == (100,) and a.device.type == "cpu"
    assert not torch.equal(a, seed_latent(43, 100))
    assert torch.equal(seed_latents([3, 42], 100)[1], a)  # independent of the other seeds asked for
    assert torch.equal(a, torch.randn(100, generator=torch.Generator().manual_seed(42)))


@pytest.mark.parametrize(
    "text,seeds",
    [("0-4", [0, 1, 2, 3, 4]), ("3,7,42", [3, 7, 42]), ("0-2, 9", [0, 1, 2, 9]), ("5", [5]), ("8-8", [8])],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text,message", [("a-b", "not understood"), ("5-2", "runs backwards"), ("-3", "not understood"),
                                          ("0-999999", "more than"), ("1,,2", "not understood")])  # fmt: skip
def test_parse_seeds_errors(text, message):
    with pytest.raises(UsageError, match=message):
        parse_seeds(text)


def test_slerp_and_lerp_hit_the_endpoints_exactly():
    z0, z1 = seed_latent(1, 100), seed_latent(2, 100)
    for interpolate in (slerp, lerp):
        assert torch.equal(interpolate(z0, z1, 0.0), z0)
        assert torch.equal(interpolate(z0, z1, 1.0), z1)


def test_slerp_stays_on_the_shell_where_lerp_cuts_through():
    z0, z1 = seed_latent(1, 512), seed_latent(2, 512)
    mid_slerp, mid_lerp = slerp(z0, z1, 0.5), lerp(z0, z1, 0.5)
    shell = (z0.norm() + z1.norm()) / 2
    assert abs(mid_slerp.norm() - shell) / shell < 0.02
    assert mid_lerp.norm() < 0.8 * shell  # independent Gaussians are nearly orthogonal: lerp shrinks by ~1/sqrt(2)
    assert torch.allclose(slerp(z0, 2 * z0, 0.5), lerp(z0, 2 * z0, 0.5))  # parallel: falls back to lerp


def test_path_fractions():
    assert path_fractions(5) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_labels_by_name_any_case_or_index():
    assert parse_label("Sneaker", FASHION) == 7
    assert parse_label("7", FASHION) == 7
    assert parse_label("7", tuple("0123456789")) == 7
    assert parse_label("3", ("1", "2", "3", "x")) == 2  # a class *named* 3 wins over index 3
    assert parse_label_list("3,bag", FASHION) == [3, 8]


def test_unknown_label_lists_the_valid_ones():
    with pytest.raises(UsageError, match=r"--label 'boot' is not a class of this model; use one of: t-shirt, trouser, .* ankle-boot"):
        parse_label("boot", FASHION)
    with pytest.raises(UsageError, match="not a class"):
        parse_label("10", tuple("0123456789"))
