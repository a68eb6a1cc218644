"""Folders larger than the memory budget: batches read from the cache file train exactly like resident data."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from gancli.store import checkpoints
from gancli.errors import GancliError, UsageError
from gancli.data.mapped import MappedImages, parse_size

TINY = ["--arch", "dcgan", "--image-size", "28", "--latent-dim", "8", "--generator-width", "8", "--discriminator-width", "8"]
FAST = ["--batch-size", "8", "--device", "cpu", "--sample-every", "2", "--seed", "3"]


def test_mapped_images_index_like_the_array(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (11, 3, 5, 5), dtype=np.uint8)
    np.save(tmp_path / "images.npy", array)
    mapped = MappedImages(tmp_path / "images.npy")
    assert len(mapped) == 11 and mapped.shape == (11, 3, 5, 5) and mapped.nbytes == array.nbytes
    index = torch.tensor([7, 0, 7, 10, 3])
    assert torch.equal(mapped[index], torch.from_numpy(array[index.numpy()]))
    assert torch.equal(mapped[4:9], torch.from_numpy(array[4:9]))
    assert torch.equal(mapped[::3], torch.from_numpy(array[::3]))
    assert torch.equal(mapped[-1], torch.from_numpy(array[-1]))
    assert torch.equal(mapped.to("cpu")[[2]], torch.from_numpy(array[[2]]))
    with pytest.raises(IndexError):
        mapped[torch.tensor([11])]


def test_without_preadv_batches_are_read_the_same(tmp_path, monkeypatch):
    array = np.random.default_rng(1).integers(0, 256, (9, 1, 4, 4), dtype=np.uint8)
    np.save(tmp_path / "images.npy", array)
    monkeypatch.setattr("gancli.data.mapped._PREADV", None)  # Windows has no preadv
    assert torch.equal(MappedImages(tmp_path / "images.npy")[torch.tensor([8, 2, 2])], torch.from_numpy(array[[8, 2, 2]]))


def test_a_cache_file_shorter_than_its_header_is_an_error(tmp_path):
    np.save(tmp_path / "images.npy", np.zeros((4, 1, 8, 8), dtype=np.uint8))
    mapped = MappedImages(tmp_path / "images.npy")
    with open(tmp_path / "images.npy", "r+b") as f:
        f.truncate(mapped.offset + 2 * 64 + 10)
    assert torch.equal(mapped[[1]], torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(GancliError, match="shorter than its header"):
        mapped[[3]]


@pytest.mark.parametrize("text,size", [("8G", 8 * 2**30), ("500M", 500 * 2**20), ("1.5g", 3 * 2**29), ("2GiB", 2 * 2**30), ("64K", 65536), ("3", 3 * 2**30)])
def test_sizes_parse(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1G", "8X", "1e3"])
def test_bad_sizes_are_usage_errors(text):
    with pytest.raises(UsageError, match="--memory-budget"):
        parse_size(text)


def test_a_budget_smaller_than_the_folder_trains_and_resumes_like_resident_data(cli, isolated, image_folder):
    """4 steps held in memory == 2 steps read from the cache file + --resume to 4 (also from the file), bit for bit."""
    resident = cli("train", str(image_folder), *TINY, *FAST, "--steps", "4", "--out", "resident")
    assert resident.code == 0, resident.err
    assert "read from the cache file" not in resident.err
    split = cli("train", str(image_folder), *TINY, *FAST, "--steps", "2", "--out", "mapped", "--memory-budget", "4K")
    assert split.code == 0, split.err
    assert "more than the memory budget of 4 KiB" in " ".join(split.err.split())
    resumed = cli("train", "--resume", "mapped", "--steps", "4", "--memory-budget", "4K")
    assert resumed.code == 0, resumed.err
    assert "memory budget" in resumed.err
    a = checkpoints.load_checkpoint(isolated / "resident/checkpoints/last.safetensors")
    b = checkpoints.load_checkpoint(isolated / "mapped/checkpoints/last.safetensors")
    assert a.step == b.step == 4
    for key, value in a.tensors.items():
        assert torch.equal(value, b.tensors[key]), key


def test_a_bad_budget_is_one_line(cli, isolated, image_folder):
    result = cli("train", str(image_folder), "--memory-budget", "plenty")
    assert result.code == 2 and "--memory-budget 'plenty' is not a size" in result.err
