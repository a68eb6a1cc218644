"""Datasets become one uint8 tensor: the bundled digits, IDX files, image folders, and bad data."""

import gzip
import struct

import pytest
import torch

from gancli.data import BUNDLED_MNIST, NAMED_DATASETS, load_dataset, load_image_folder, read_idx_pair
from gancli.errors import GancliError, UsageError
from tests.conftest import make_image_folder


def write_idx(folder, split, images, labels, compress=True):
    """Write uint8 images (N, H, W) and labels (N,) as MNIST-style IDX files."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    blobs = {
        f"{split}-images-idx3-ubyte": struct.pack(">HBBIII", 0, 8, 3, n, h, w) + images.numpy().tobytes(),
        f"{split}-labels-idx1-ubyte": struct.pack(">HBBI", 0, 8, 1, n) + labels.to(torch.uint8).numpy().tobytes(),
    }
    for name, blob in blobs.items():
        if compress:
            (folder / (name + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (folder / name).write_bytes(blob)


def test_bundled_mnist_is_the_real_test_split():
    images, labels = read_idx_pair(BUNDLED_MNIST, "t10k")
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.uint8
    counts = torch.bincount(labels, minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the official split


def test_mnist_offline_falls_back_to_bundled_split_and_says_so(tmp_path):
    ds = load_dataset("mnist", 28, tmp_path)
    assert len(ds) == 10_000 and ds.class_names == tuple("0123456789")
    assert any("bundled MNIST test split" in n for n in ds.notices)


def test_idx_files_in_data_dir_are_found_and_resized(tmp_path):
    images = torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8)
    labels = torch.arange(40) % 10
    write_idx(tmp_path / "data", "train", images, labels, compress=False)
    ds = load_dataset("fashion-mnist", 32, tmp_path / "data")
    assert ds.images.shape == (40, 1, 32, 32)
    assert torch.equal(ds.labels, labels)
    assert ds.class_names == NAMED_DATASETS["fashion-mnist"].class_names
    assert ds.notices == []


def test_idx_files_in_torchvision_layout(tmp_path):
    images = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8)
    write_idx(tmp_path / "FashionMNIST" / "raw", "train", images, torch.zeros(8))
    ds = load_dataset("fashion-mnist", 28, tmp_path)
    assert torch.equal(ds.images[:, 0], images)


def test_fashion_mnist_missing_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr("gancli.data.SYSTEM_DATASETS", tmp_path / "nowhere")
    with pytest.raises(GancliError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", 28, tmp_path)


def test_image_folder_classes_channels_and_skipped_files(tmp_path):
    root = make_image_folder(tmp_path / "imgs", size=40, per_class=3)
    (root / "circles" / "broken.png").write_bytes(b"not a png at all")
    (root / "notes.txt").write_text("ignored: not an image extension")
    ds = load_image_folder(root, 32)
    assert ds.images.shape == (6, 3, 32, 32)
    assert ds.class_names == ("circles", "squares")
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.notices == [f"Skipped 1 unreadable image file(s) in '{root}'."]


def test_greyscale_folder_gives_one_channel_and_no_classes_at_top_level(tmp_path):
    root = make_image_folder(tmp_path / "grey", size=16, per_class=2, mode="L")
    for p in list(root.rglob("*.png")):
        p.rename(root / f"{p.parent.name}-{p.name}")
    ds = load_image_folder(root, 16)
    assert ds.images.shape == (4, 1, 16, 16)
    assert ds.labels is None and ds.class_names == ()


def test_non_square_images_are_resized_then_centre_cropped(tmp_path):
    from PIL import Image

    (tmp_path / "wide").mkdir()
    img = Image.new("RGB", (60, 20), (0, 0, 0))
    img.paste((255, 255, 255), (20, 0, 40, 20))  # a white middle third
    img.save(tmp_path / "wide" / "a.png")
    ds = load_image_folder(tmp_path / "wide", 20)
    assert ds.images.shape == (1, 3, 20, 20)
    assert ds.images.float().mean() > 250  # the crop kept the white centre


def test_bad_datasets_give_clear_errors(tmp_path):
    with pytest.raises(UsageError, match="did you mean mnist"):
        load_dataset("minst", 28)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GancliError, match="No images found in"):
        load_dataset(str(tmp_path / "empty"), 32)
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "a.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(GancliError, match="None of the 1 image files"):
        load_dataset(str(tmp_path / "corrupt"), 32)


def test_cifar10_offline_error_names_the_folder(tmp_path):
    with pytest.raises(GancliError, match=r"CIFAR-10 is not in .* downloads are off"):
        load_dataset("cifar10", 32, tmp_path)


def test_torchvision_download_path_converts_to_uint8_nchw(tmp_path, monkeypatch):
    import numpy as np
    import torchvision

    class FakeCIFAR10:  # what torchvision.datasets.CIFAR10 exposes: HWC uint8 numpy and a list of labels
        def __init__(self, root, train, download):
            assert train and download and root == str(tmp_path)
            self.data = np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3)
            self.targets = [3, 1, 4, 1]

    from gancli.data import trust_data_dir

    monkeypatch.delenv("GANCLI_OFFLINE")
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    trust_data_dir(tmp_path)  # as --data-dir does: downloads may go there
    ds = load_dataset("cifar10", 8, tmp_path)
    assert ds.images.shape == (4, 3, 8, 8) and ds.images.dtype == torch.uint8
    assert ds.images[0, 2, 0, 1].item() == 5  # pixel (0, 1), blue channel of the HWC source
    assert ds.labels.tolist() == [3, 1, 4, 1] and ds.class_names[3] == "cat"
