"""Datasets become one uint8 tensor: the bundled digits, IDX files, image folders, and bad data."""

import gzip
import struct

import numpy as np
import pytest
import torch

from gancli.data.datasets import BUNDLED_MNIST, NAMED_DATASETS, list_images, load_dataset, load_image_folder, read_idx_pair
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
    monkeypatch.setattr("gancli.data.datasets.SYSTEM_DATASETS", tmp_path / "nowhere")
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
    assert ds.notices == [f"Skipped 1 unreadable image file(s) in '{root}': circles/broken.png."]


def test_a_folder_is_decoded_once_and_again_when_it_changes(tmp_path):
    import os

    from gancli.data.folder_cache import DECODED

    root = make_image_folder(tmp_path / "imgs", size=40, per_class=3)
    before = DECODED.files
    first = load_image_folder(root, 16)
    assert DECODED.files - before == 6
    second = load_image_folder(root, 16)
    assert DECODED.files - before == 6  # a cache hit decodes nothing
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert any("decoded earlier" in n for n in second.notices)
    load_image_folder(root, 24)  # another size: its own cache
    assert DECODED.files - before == 12
    make_image_folder(tmp_path / "more", size=40, per_class=1)
    os.replace(tmp_path / "more" / "squares" / "000.png", root / "squares" / "new.png")  # a file added
    third = load_image_folder(root, 16)
    assert DECODED.files - before == 12 + 7 and len(third) == 7
    assert torch.equal(third.images[:3], first.images[:3])  # same files, same pixels


def test_the_process_pool_decodes_like_one_process(tmp_path, monkeypatch):
    from gancli.data import folder_cache

    root = make_image_folder(tmp_path / "imgs", size=20, per_class=5)
    (root / "circles" / "broken.png").write_bytes(b"not a png")
    paths = list_images(root)
    monkeypatch.setattr(folder_cache, "POOL_FROM", 1)
    monkeypatch.setattr(folder_cache, "CHUNK", 3)
    pooled = folder_cache.decoded_folder(root, paths, 16, workers=2)
    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "other-cache"))
    single = folder_cache.decoded_folder(root, paths, 16, workers=1)
    assert not pooled.hit and not single.hit and pooled.skipped == single.skipped == ["circles/broken.png"]
    assert np.array_equal(pooled.images, single.images) and np.array_equal(pooled.labels, single.labels)


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
    with pytest.raises(GancliError, match=r"CIFAR-10 is not in .* downloads are off.*extract it into .*cifar-10-batches-py"):
        load_dataset("cifar10", 32, tmp_path)


def test_cifar10_put_in_place_by_hand_loads_offline(tmp_path, monkeypatch):
    import numpy as np
    import torchvision

    class Extracted:  # torchvision.datasets.CIFAR10 over files already in root (download=False)
        def __init__(self, root, train, download):
            assert root == str(tmp_path) and not download
            self.data, self.targets = np.zeros((3, 8, 8, 3), dtype=np.uint8), [0, 1, 2]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Extracted)
    ds = load_dataset("cifar10", 8, tmp_path)  # GANCLI_OFFLINE is set: nothing may be downloaded
    assert ds.images.shape == (3, 3, 8, 8) and ds.labels.tolist() == [0, 1, 2]


def test_torchvision_download_path_converts_to_uint8_nchw(tmp_path, monkeypatch):
    import numpy as np
    import torchvision

    class FakeCIFAR10:  # what torchvision.datasets.CIFAR10 exposes: HWC uint8 numpy and a list of labels
        def __init__(self, root, train, download):
            assert train and root == str(tmp_path)
            if not download:
                raise RuntimeError("Dataset not found or corrupted.")  # as torchvision says before a download
            self.data = np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3)
            self.targets = [3, 1, 4, 1]

    from gancli.data.datasets import trust_data_dir

    monkeypatch.delenv("GANCLI_OFFLINE")
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    trust_data_dir(tmp_path)  # as --data-dir does: downloads may go there
    ds = load_dataset("cifar10", 8, tmp_path)
    assert ds.images.shape == (4, 3, 8, 8) and ds.images.dtype == torch.uint8
    assert ds.images[0, 2, 0, 1].item() == 5  # pixel (0, 1), blue channel of the HWC source
    assert ds.labels.tolist() == [3, 1, 4, 1] and ds.class_names[3] == "cat"
