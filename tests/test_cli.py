"""End to end through the real command line: train, sample, grid, resume, and bad input."""

import csv

import pytest
import torch
from PIL import Image

from gancli.store import checkpoints
from gancli.data.images import from_pil
METRICS_COLUMNS = ("step", "epoch", "loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2", "images_per_s", "seconds")

FAST = ["--batch-size", "16", "--device", "cpu"]


def rows(run_dir):
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_help_lists_every_command(cli):
    result = cli("--help")
    assert result.code == 0
    for command in ("train", "sample", "grid"):
        assert command in result.out


def test_train_dcgan_on_bundled_mnist_writes_run(cli, isolated):
    result = cli("train", "mnist", "--steps", "4", "--sample-every", "2", "--checkpoint-every", "4", "--out", "runs/r1", *FAST)
    assert result.code == 0, result.err
    run = isolated / "runs" / "r1"
    assert "bundled MNIST test split" in result.err  # the offline fallback is said out loud
    assert (run / "checkpoints" / "last.safetensors").is_file()
    assert (run / "checkpoints" / "step_000004.safetensors").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    table = rows(run)
    assert [r["step"] for r in table] == ["2", "4"]
    assert tuple(table[0]) == METRICS_COLUMNS
    assert all(0 <= float(r["D_x"]) <= 1 and float(r["images_per_s"]) > 0 for r in table)
    assert "gancli sample --checkpoint runs/r1" in result.out
    ck = checkpoints.load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert ck.step == 4 and ck.config.arch == "dcgan" and ck.config.class_names == tuple("0123456789")
    assert ck.config.dataset == "mnist" and ck.metadata["gancli_version"]


def test_sample_is_reproducible_and_square(cli, trained_run):
    a, b, c = (trained_run.parent / f"{n}.png" for n in "abc")
    for path, seed in ((a, 7), (b, 7), (c, 8)):
        result = cli("sample", "--checkpoint", trained_run, "--n", "25", "--seed", seed, "--out", path)
        assert result.code == 0, result.err
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert Image.open(a).size == (5 * 28 + 6 * 2, 5 * 28 + 6 * 2)  # a 5x5 grid with 2-pixel padding


def test_sample_defaults_to_newest_run_and_writes_files(cli, trained_run, monkeypatch):
    monkeypatch.chdir(trained_run.parent.parent)
    result = cli("sample", "--n", "5", "--seed", "1", "--out-dir", "each")
    assert result.code == 0, result.err
    files = sorted((trained_run.parent.parent / "each").iterdir())
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(5)]
    assert Image.open(files[0]).size == (28, 28)


def test_sample_in_batches_matches_grid(cli, trained_run, tmp_path):
    # 300 images cross the internal batch size; per-image files and the grid agree pixel for pixel.
    assert cli("sample", "--checkpoint", trained_run, "--n", "300", "--seed", "3", "--out-dir", tmp_path / "each").code == 0
    assert cli("sample", "--checkpoint", trained_run, "--n", "300", "--seed", "3", "--nrow", "300", "--out", tmp_path / "g.png").code == 0
    grid = from_pil(Image.open(tmp_path / "g.png").convert("L"))[0]
    last = from_pil(Image.open(tmp_path / "each" / "00299.png"))[0]
    x = 2 + 299 * 30
    assert torch.equal(grid[2:30, x : x + 28], last)


def test_train_classic_gan_and_rgb_folder(cli, isolated, image_folder):
    result = cli("train", "mnist", "--arch", "gan", "--steps", "3", "--out", "runs/gan", *FAST)
    assert result.code == 0, result.err
    result = cli("train", image_folder, "--image-size", "32", "--steps", "3", "--out", "runs/shapes", *FAST)
    assert result.code == 0, result.err
    ck = checkpoints.load_checkpoint(isolated / "runs" / "shapes" / "checkpoints" / "last.safetensors")
    assert ck.config.channels == 3 and ck.config.class_names == ("circles", "squares")
    assert cli("sample", "--checkpoint", "runs/shapes", "--n", "4", "--seed", "0", "--out", "s.png").code == 0
    assert Image.open(isolated / "s.png").mode == "RGB"


def test_fashion_mnist_from_data_dir(cli, isolated):
    from tests.test_data import write_idx

    write_idx(isolated / "fm", "train", torch.randint(0, 256, (32, 28, 28), dtype=torch.uint8), torch.arange(32) % 10)
    result = cli("train", "fashion-mnist", "--data-dir", "fm", "--steps", "2", "--out", "runs/fm", *FAST)
    assert result.code == 0, result.err
    assert checkpoints.load_checkpoint(isolated / "runs/fm/checkpoints/last.safetensors").config.class_names[7] == "sneaker"


def test_resume_refuses_model_changes_and_finished_runs(cli, trained_run):
    result = cli("train", "--resume", trained_run, "--arch", "gan")
    assert result.code == 2 and "--arch cannot change when resuming (the checkpoint has 'dcgan')" in result.err
    result = cli("train", "mnist", "--arch", "dcgan", "--resume", trained_run)  # restating the same values is fine
    assert result.code == 2 and "already at step 6" in result.err
    result = cli("train", "--resume", trained_run)
    assert result.code == 2 and "already at step 6" in result.err


def test_grid_of_files_folders_and_globs(cli, isolated, image_folder):
    small = isolated / "small.png"
    Image.new("RGB", (10, 10), (255, 0, 0)).save(small)
    result = cli("grid", image_folder / "circles", str(image_folder / "squares" / "00*.png"), small, "--nrow", "5", "--padding", "1", "--out", "g.png")
    assert result.code == 0, result.err
    assert "23 images (5 per row, 5 rows)" in result.out  # 12 circles, 10 squares matching 00*, 1 file
    assert Image.open(isolated / "g.png").size == (5 * 32 + 6, 5 * 32 + 6)  # the 10x10 one was resized to 32x32


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["train", "minst"], 2, "did you mean mnist"),
        (["train", "no/such/folder"], 2, "No dataset or folder named 'no/such/folder'"),
        (["train", "mnist", "--image-size", "30"], 2, "--image-size 30 is not supported by dcgan; use 28, 32, 64 or 128"),
        (["train", "mnist", "--batch-size", "0"], 2, "--batch-size"),
        (["train", "mnist", "--epochs", "1", "--steps", "5"], 2, "not both"),
        (["train", "mnist", "--lr-g", "0"], 2, "--lr-g 0.0 is out of range"),
        (["train", "mnist", "--steps", "abc"], 2, "Invalid value for '--steps'"),
        (["train"], 2, "Missing DATASET"),
        (["train", "mnist", "--device", "tpu"], 2, "Invalid value for '--device'"),
        (["sample", "--n", "0"], 2, "--n"),
        (["sample", "--n", "-3"], 2, "--n"),
        (["sample", "--checkpoint", "missing.safetensors"], 2, "does not exist"),
        (["sample"], 1, "No trained runs under 'runs/'"),
        (["grid", "nothing-here.png"], 2, "'nothing-here.png' does not exist"),
        (["grid", "*.nomatch"], 2, "matches no files"),
        (["bogus"], 2, "No such command"),
        (["train", "mnist", "--steps", "0"], 2, "Invalid value for '--steps'"),
        (["train", "mnist", "--epochs", "-1"], 2, "Invalid value for '--epochs'"),
        (["train", "mnist", "--latent-dim", "0"], 2, "Invalid value for '--latent-dim'"),
        (["train", "mnist", "--arch", "gan", "--image-size", "2"], 2, "Invalid value for '--image-size'"),
        (["train", "mnist", "--arch", "gan", "--image-size", "256"], 2, "--image-size 256 is out of range for gan; use 4 to 128"),
        (["train", "mnist", "--arch", "wgan"], 2, "Invalid value for '--arch'"),
        (["train", "mnist", "--beta1", "1.5"], 2, "--beta1 1.5 is out of range"),
        (["train", "mnist", "--keep", "0"], 2, "Invalid value for '--keep'"),
        (["train", "mnist", "--out", "README.md/run"], 2, "is a file"),
        (["train", "--resume", "no-such-run"], 2, "does not exist"),
        (["sample", "--n", "many"], 2, "Invalid value for '--n'"),
        (["sample", "--nrow", "0"], 2, "Invalid value for '--nrow'"),
        (["sample", "--seeds", "x"], 2, "--seeds 'x' is not understood"),
        (["interpolate", "1", "2", "--steps", "0"], 2, "Invalid value for '--frames'"),
        (["interpolate", "1", "2", "--fps", "0"], 2, "Invalid value for '--fps'"),
        (["interpolate", "one", "2"], 2, "Invalid value for 'seeds'"),
        (["grid", "x.png", "--padding", "-1"], 2, "Invalid value for '--padding'"),
        (["upscale", "x.png", "--limit", "0"], 2, "Invalid value for '--limit'"),
        (["upscale", "x.png", "--method", "nearest"], 2, "Invalid value for '--method'"),
    ],
)
def test_bad_input_gives_one_line_errors(cli, args, code, message, isolated):
    (isolated / "README.md").write_text("a file where a folder is expected")
    result = cli(*args)
    assert result.code == code, (result.code, result.err)
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_corrupt_checkpoint_and_existing_run(cli, isolated, trained_run, image_folder):
    (isolated / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    result = cli("sample", "--checkpoint", "junk.safetensors")
    assert result.code == 1 and "junk.safetensors' is not a readable safetensors file" in result.err
    result = cli("train", "mnist", "--out", trained_run)
    assert result.code == 2 and "already holds a run" in result.err
    (isolated / "empty").mkdir()
    result = cli("train", "empty")
    assert result.code == 2 and "No images found in 'empty'" in result.err  # a usage error, as from data and grid


def test_unwritable_output_is_one_line(cli, trained_run, isolated):
    (isolated / "afile").write_text("x")
    result = cli("sample", "--checkpoint", trained_run, "--out", "afile/x.png")
    assert result.code == 2 and "'afile' is a file" in result.err
    result = cli("sample", "--checkpoint", trained_run, "--out", "x.unknownext")
    assert result.code == 2 and "Cannot write 'x.unknownext': unknown image type" in result.err


def test_folder_of_corrupt_images(cli, isolated):
    (isolated / "corrupt").mkdir()
    for i in range(3):
        (isolated / "corrupt" / f"{i}.png").write_bytes(b"\x89PNG broken")
    result = cli("train", "corrupt", "--steps", "1")
    assert result.code == 1 and "None of the 3 image files in 'corrupt' could be read" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(cli):
    with pytest.raises(Exception, match="minst"):
        cli("--debug", "train", "minst")


def test_missing_gpu_is_a_usage_error(cli, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cli("train", "mnist", "--device", "cuda", "--steps", "1")
    assert result.code == 2 and "--device cuda was asked for but no CUDA GPU is visible" in result.err


def test_under_torchrun_a_usage_error_is_said_once(cli, monkeypatch):
    monkeypatch.setenv("RANK", "1")  # another process of the same torchrun says nothing
    quiet = cli("train", "mnist", "--steps", "0")
    assert quiet.code == 2 and quiet.err == ""
    assert cli("train", "--resume", "nowhere").err == ""
    monkeypatch.setenv("RANK", "0")
    assert "Invalid value for '--steps'" in cli("train", "mnist", "--steps", "0").err


def test_data_decodes_a_folder_once_and_says_what_it_found(cli, isolated, image_folder):
    (image_folder / "circles" / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    first = cli("data", image_folder, "--image-size", "16")
    assert first.code == 0, first.err
    assert "Decoded in" in first.out and "24 images" in first.out and "2 classes (circles, squares)" in first.out
    assert "Skipped 1 unreadable file(s): circles/broken.jpg" in first.out
    again = cli("data", image_folder, "--image-size", "16")
    assert "Already decoded (the folder is unchanged)" in again.out
    trained = cli("train", image_folder, "--arch", "gan", "--image-size", "16", "--steps", "1", "--batch-size", "4", "--device", "cpu", "-o", "r")
    assert trained.code == 0 and "decoded earlier" in trained.err
    assert cli("data", isolated / "nowhere").code == 2
