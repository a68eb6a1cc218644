"""Trust at every edge: a checkpoint from a stranger is data, nothing the user has is overwritten,
memory stays bounded, and bad input gets one clear line. One test (or more) per item of issue 13."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from gancli.store import checkpoints
from gancli.store.runs import RunLock, default_run_dir

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"
FAST = ["--batch-size", "16", "--device", "cpu"]


def forge(source: Path, out: Path, config_changes: dict | None = None, metadata_changes: dict | None = None, tensors=None) -> Path:
    """A checkpoint anyone could write: gancli's own file with edited metadata (or tensors) and recomputed checksums."""
    with safe_open(str(source), "pt") as f:
        metadata = dict(f.metadata())
        stored = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(metadata["config"])
    if isinstance(config_changes, dict):
        config.update(config_changes)
    metadata["config"] = json.dumps(config if config_changes != "list" else [config])
    metadata.update(metadata_changes or {})
    stored = tensors(stored) if tensors else stored
    for group, keys in checkpoints._groups(stored).items():
        metadata[f"checksum.{group}"] = checkpoints._digest(stored, keys)
    metadata.pop("checksum.metadata", None)
    metadata["checksum.metadata"] = checkpoints._metadata_digest(metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(stored, str(out), metadata=metadata)
    return out


def one_line_error(result, code: int, *phrases: str) -> None:
    assert result.code == code, (result.code, result.err)
    lines = [line for line in result.err.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "Traceback" not in result.err and "bug in gancli" not in result.err, result.err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# --- 1. a checkpoint cannot write outside the folder the user named ------------------------------


@pytest.mark.parametrize("args", [["--per-class", "1", "--out-dir", "out/aug"], ["--seeds", "0", "--label", "all", "--out-dir", "out/b"]])
def test_class_names_cannot_escape_the_output_folder(cli, isolated, args):
    names = ["../../escaped", "/abs/escape", *map(str, range(2, 10))]
    evil = forge(FIXTURES / "cdcgan.safetensors", isolated / "work/evil.safetensors", {"class_names": names})
    (isolated / "work/out").mkdir(parents=True)
    before = files_under(isolated)
    result = cli("sample", "--checkpoint", evil, *[a.replace("out/", "work/out/") for a in args], "--device", "cpu")
    one_line_error(result, 1, "class_names", "'../../escaped'")
    assert files_under(isolated) == before and not (isolated / "escaped").exists()


# --- 2. every metadata field is validated before use ----------------------------------------------


@pytest.mark.parametrize(
    "changes,field",
    [({"image_size": "28"}, "image_size"), ({"latent_dim": -5}, "latent_dim"), ({"latent_dim": 10**9}, "latent_dim"),
     ("list", "JSON list"), ({"channels": 2}, "channels"), ({"generator_width": 10**6}, "generator_width"),
     ({"class_names": ["a"]}, "class_names"), ({"lr_g": float("nan")}, "lr_g"), ({"seed": 2**70}, "seed")],
)  # fmt: skip
def test_invalid_config_fields_are_named(cli, isolated, changes, field):
    bad = forge(FIXTURES / "dcgan-ema.safetensors", isolated / "bad.safetensors", changes)
    one_line_error(cli("sample", "--checkpoint", bad, "--n", "1", "--device", "cpu"), 1, "invalid 'config' metadata", field)


@pytest.mark.parametrize("key,value", [("step", "-5"), ("step", "1e99"), ("epoch", "x"), ("seconds", "nan"), ("processes", "-1")])
def test_invalid_header_numbers_are_named(cli, isolated, key, value):
    run = isolated / "r"
    forge(FIXTURES / "dcgan-ema.safetensors", run / "checkpoints/last.safetensors", metadata_changes={key: value})
    one_line_error(cli("train", "--resume", run, "--steps", "9"), 1, f"'{key}'")


def test_a_huge_model_is_refused_before_allocating(cli, isolated):
    huge = forge(FIXTURES / "dcgan-ema.safetensors", isolated / "huge.safetensors", {"image_size": 128, "generator_width": 1024})
    one_line_error(cli("sample", "--checkpoint", huge, "--n", "1", "--device", "cpu"), 2, "M-parameter", "--generator-width")


def test_a_crafted_data_dir_is_never_created_or_downloaded_into(cli, isolated, monkeypatch):
    monkeypatch.delenv("GANCLI_OFFLINE")  # downloads would be allowed: only gancli's rule stops them
    target = isolated / "elsewhere" / "deep"
    for name in ("dcgan-ema", "srcnn"):
        run = isolated / name
        forge(FIXTURES / f"{name}.safetensors", run / "checkpoints/last.safetensors", {"data_dir": str(target)})
        assert cli("train", "--resume", run, "--steps", "3", "--device", "cpu").code == 0
    existing = isolated / "existing"
    existing.mkdir()
    run = isolated / "fm"
    forge(FIXTURES / "dcgan-ema.safetensors", run / "checkpoints/last.safetensors", {"data_dir": str(existing), "dataset": "fashion-mnist"})
    one_line_error(cli("train", "--resume", run, "--steps", "3", "--device", "cpu"), 1, "not into a folder named by a checkpoint")
    assert not (isolated / "elsewhere").exists() and not any(existing.iterdir())


# --- 3. no writing through links in a run directory ------------------------------------------------


def test_resume_does_not_write_through_a_symlinked_metrics_csv(cli, isolated):
    assert cli("train", "mnist", "--steps", "2", "--out", "r", *FAST).code == 0
    precious = isolated / "precious.txt"
    precious.write_text("keep me\n")
    (isolated / "r/metrics.csv").unlink()
    (isolated / "r/metrics.csv").symlink_to(precious)
    one_line_error(cli("train", "--resume", "r", "--steps", "4"), 2, "symbolic link")
    assert precious.read_text() == "keep me\n"


# --- 4. no checkpoint with a non-finite tensor, ever ------------------------------------------------


def test_periodic_checkpoints_are_never_non_finite_and_keep_spares_the_good(cli, isolated, monkeypatch):
    from tests.test_reliability import break_step

    def poison(task, stats):
        with torch.no_grad():
            next(task.modules["generator"].parameters()).fill_(float("nan"))
        return stats

    break_step(monkeypatch, 4, poison)
    result = cli("train", "mnist", "--steps", "10", "--checkpoint-every", "1", "--keep", "3", "--sample-every", "5", "--out", "d", *FAST)
    one_line_error(result, 1, "not finite", "The last good checkpoint is")
    named = Path(result.err.split("The last good checkpoint is ")[1].split(":")[0])
    assert (isolated / named).is_file() if not named.is_absolute() else named.is_file()
    saved = sorted((isolated / "d/checkpoints").glob("*.safetensors"))
    assert [p.name for p in saved] == ["step_000001.safetensors", "step_000002.safetensors", "step_000003.safetensors"]
    for path in saved:
        assert all(torch.isfinite(t).all() for t in checkpoints.load_checkpoint(path).tensors.values() if t.is_floating_point())


def test_sample_refuses_non_finite_weights(cli, isolated):
    def spoil(tensors):
        key = next(k for k in tensors if k.startswith("generator_ema.module.") and tensors[k].is_floating_point() and tensors[k].numel() > 1)
        tensors[key] = torch.full_like(tensors[key], float("inf"))
        return tensors

    bad = forge(FIXTURES / "dcgan-ema.safetensors", isolated / "inf.safetensors", tensors=spoil)
    one_line_error(cli("sample", "--checkpoint", bad, "--n", "4", "--out", "s.png", "--device", "cpu"), 1, "non-finite")
    assert not (isolated / "s.png").exists()


# --- 5. runs are not overwritten ----------------------------------------------------------------------


@pytest.mark.slow  # three runs
def test_resume_into_another_run_is_refused(cli, isolated):
    assert cli("train", "mnist", "--steps", "2", "--out", "a", *FAST).code == 0
    assert cli("train", "mnist", "--steps", "2", "--seed", "1", "--out", "b", *FAST).code == 0
    before = {p: p.read_bytes() for p in files_under(isolated / "b")}
    one_line_error(cli("train", "--resume", "a", "--steps", "4", "--out", "b"), 2, "already holds a run")
    assert {p: p.read_bytes() for p in files_under(isolated / "b")} == before
    assert cli("train", "--resume", "a", "--steps", "4", "--out", "fork").code == 0  # a new folder is fine


def test_a_new_run_does_not_overwrite_a_folders_config_or_metrics(cli, isolated):
    (isolated / "mine").mkdir()
    (isolated / "mine/metrics.csv").write_text("my own numbers\n")
    one_line_error(cli("train", "mnist", "--steps", "2", "--out", "mine", *FAST), 2, "already holds a run")
    assert (isolated / "mine/metrics.csv").read_text() == "my own numbers\n"


# --- 6. one training per run directory; default names do not collide -----------------------------------


def test_a_second_training_into_the_same_folder_is_refused(cli, isolated):
    with RunLock(isolated / "busy"):
        one_line_error(cli("train", "mnist", "--steps", "2", "--out", "busy", *FAST), 2, "Another gancli train is writing")
    assert cli("train", "mnist", "--steps", "2", "--out", "busy", *FAST).code == 0  # a lock that is gone leaves nothing stuck


def test_default_run_names_do_not_collide(isolated):
    first = default_run_dir("mnist", "dcgan")
    first.mkdir(parents=True)
    second = default_run_dir("mnist", "dcgan")
    assert second != first and second.name.startswith(first.name)


# --- 7. upscale and grid never replace their inputs ------------------------------------------------------


def test_upscale_and_grid_refuse_to_replace_inputs(cli, isolated):
    for folder in ("a", "b"):
        (isolated / folder).mkdir()
        Image.new("L", (8, 8), 100).save(isolated / folder / "x.png")
    originals = {p: p.read_bytes() for p in files_under(isolated)}
    one_line_error(cli("upscale", "a", "--method", "bicubic", "--out", "a"), 2, "one of the inputs")
    one_line_error(cli("upscale", "a", "b", "--method", "bicubic", "--out", "up"), 2, "would both be written")
    one_line_error(cli("grid", "a/x.png", "b/x.png", "--out", "a/x.png"), 2, "one of the inputs")
    assert {p: p.read_bytes() for p in files_under(isolated)} == originals


# --- 8. atomic writes, orphan temporary files, eval.json kept --------------------------------------------


def test_a_failed_write_leaves_the_old_file_whole(cli, isolated, monkeypatch):
    Image.new("RGB", (5, 5), (1, 2, 3)).save(isolated / "samples.png")
    good = (isolated / "samples.png").read_bytes()

    def disk_full(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    result = cli("sample", "--checkpoint", FIXTURES / "dcgan-ema.safetensors", "--n", "4", "--out", "samples.png", "--device", "cpu")
    one_line_error(result, 1, "Cannot write 'samples.png'", "No space left", "nothing was replaced")
    assert (isolated / "samples.png").read_bytes() == good and not list(isolated.glob(".*.tmp"))


def test_disk_full_while_training_names_the_file_and_how_to_resume(cli, isolated, monkeypatch):
    assert cli("train", "mnist", "--steps", "2", "--out", "r", *FAST).code == 0
    real_save = checkpoints.save_checkpoint

    def save(path, *args, **kwargs):
        if "step" in kwargs or args[1] >= 4:
            raise OSError(28, "No space left on device")
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "save_checkpoint", save)
    result = cli("train", "--resume", "r", "--steps", "6", "--sample-every", "2")
    one_line_error(result, 1, "last.safetensors", "No space left", "resume with gancli train --resume")
    assert checkpoints.load_checkpoint(isolated / "r/checkpoints/last.safetensors").step == 2


def test_orphan_temporary_files_are_cleaned_by_the_next_run(cli, isolated):
    assert cli("train", "mnist", "--steps", "2", "--out", "r", *FAST).code == 0
    orphans = [isolated / "r/checkpoints/.last.safetensors.abc123.tmp", isolated / "r/.metrics.csv.x.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"left by kill -9")
    assert cli("train", "--resume", "r", "--steps", "4").code == 0
    assert not any(o.exists() for o in orphans)


def test_an_eval_json_that_is_not_a_list_is_kept(cli, isolated, trained_run, classifier_run):
    run = isolated / "run"
    shutil.copytree(trained_run, run)
    (run / "eval.json").write_text('{"mine": 1}')
    result = cli("eval", run, "--classifier", classifier_run, "--force", "--n", "20", "--device", "cpu")
    assert result.code == 0, result.err
    (kept,) = run.glob("eval.json.unreadable-*")
    assert json.loads(kept.read_text()) == {"mine": 1} and "kept it as" in result.err
    assert len(json.loads((run / "eval.json").read_text())) == 1


# --- 9. resume options are applied (and said) or refused ---------------------------------------------------


def test_resume_applies_training_options_and_refuses_the_seed(cli, isolated):
    assert cli("train", "mnist", "--steps", "2", "--out", "r", *FAST).code == 0
    one_line_error(cli("train", "--resume", "r", "--steps", "4", "--seed", "9"), 2, "--seed cannot change when resuming")
    result = cli("train", "--resume", "r", "--steps", "4", "--lr-g", "0.0001", "--batch-size", "8")
    assert result.code == 0, result.err
    assert "Resuming with --batch-size 8 (was 16), --lr-g 0.0001 (was 0.0002)" in result.err
    saved = json.loads((isolated / "r/config.json").read_text())
    assert saved["lr_g"] == 0.0001 and saved["batch_size"] == 8
    state = checkpoints.load_checkpoint(isolated / "r/checkpoints/last.safetensors")
    assert json.loads(state.metadata["optimizer_g_param_groups"])[0]["lr"] == 0.0001


# --- 10-12. bounded memory and time -----------------------------------------------------------------------


def test_grid_cells_are_made_at_cell_size(cli, isolated, monkeypatch):
    from gancli.data import images

    monkeypatch.setattr(images, "MAX_GRID_CELL_PIXELS", 100 * 100)  # the real limit, scaled down to test sizes
    Image.new("RGB", (2000, 1000), (200, 10, 10)).save(isolated / "big.png")
    Image.new("L", (30, 30), 255).save(isolated / "small.png")
    result = cli("grid", "big.png", "small.png", "small.png", "--out", "g.png", "--padding", "0")
    assert result.code == 0, result.err
    assert "cells 141x70 (the first image is 2000x1000)" in result.out
    assert Image.open(isolated / "g.png").size == (2 * 141, 2 * 70)


def test_upscale_limits_scale_and_output_size(cli, isolated):
    Image.new("L", (20, 20), 100).save(isolated / "x.png")
    one_line_error(cli("upscale", "x.png", "--method", "bicubic", "--scale", "1024"), 2, "--scale")
    one_line_error(cli("upscale", "x.png", "--method", "bicubic", "--scale", str(2**40)), 2, "--scale")
    Image.new("L", (1001, 1001), 100).save(isolated / "big.png")  # x16: 16016 x 16016, just over 256 megapixels
    one_line_error(cli("upscale", "big.png", "--method", "bicubic", "--scale", "16", "--out", "o"), 2, "megapixels")


def test_upscaling_streams_tiles_into_uint8(isolated):
    from gancli.use.upscaling import upscale_image

    calls = []

    class Doubler(torch.nn.Module):
        def forward(self, x):
            calls.append(tuple(x.shape))
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    image = torch.randint(0, 256, (3, 300, 520), dtype=torch.uint8)
    out = upscale_image(Doubler(), 1, image, passes=2, scale=2, device=torch.device("cpu"))
    assert out.dtype == torch.uint8 and out.shape == (3, 1200, 2080)
    assert torch.equal(out[:, ::4, ::4], image)  # nearest x2 twice: every tile landed where it belongs
    assert max(h * w for *_, h, w in calls) <= (256 + 16) ** 2  # never the whole image at once


def test_huge_grids_are_refused_and_labels_are_streamed(cli, isolated):
    from gancli.use.sampling import Labels

    one_line_error(cli("sample", "--checkpoint", FIXTURES / "dcgan-ema.safetensors", "--n", "100000000", "--device", "cpu"), 2, "megapixels", "--outdir")
    labels = Labels(10, per_class=20_000_000)
    assert labels[199_999_990:200_000_000].tolist() == [9] * 10  # no 200-million-entry tensor is built


def test_glob_does_not_follow_symlink_loops(cli, isolated):
    (isolated / "d/a").mkdir(parents=True)
    Image.new("L", (8, 8)).save(isolated / "d/a/x.png")
    (isolated / "d/a/loop").symlink_to(isolated / "d")
    result = cli("grid", "d/**/*.png", "--out", "g.png")
    assert result.code == 0 and "a grid of 1 image (" in result.out, result.err


# --- clear errors, not generic ones -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,code,phrase",
    [(["train", "mnist", "--batch-size", "1"], 2, "--batch-size"), (["train", "mnist", "--image-size", "0"], 2, "--image-size"),
     (["train", "mnist", "--latent-dim", "1000000000"], 2, "--latent-dim"), (["train", "mnist", "--generator-width", "100000"], 2, "--generator-width"),
     (["sample", "--seeds", str(2**64)], 2, "too large"), (["sample", "--seed", str(2**64)], 2, "--seed"),
     (["interpolate", "1", str(2**64)], 2, "Seeds are whole numbers"), (["sample", "--checkpoint", "/dev/null"], 2, "not a file"),
     (["sample", "--checkpoint", "."], 2, "holds no checkpoints/last.safetensors"), (["grid", "x", "--padding", "100000"], 2, "--padding"),
     (["sample", "--per-class", "100000000", "--out-dir", "o"], 2, "--per-class")],
)  # fmt: skip
def test_bad_numbers_and_paths_get_one_line(cli, isolated, args, code, phrase):
    result = cli(*args)
    assert result.code == code and phrase in result.err and "Traceback" not in result.err and "bug" not in result.err, result.err


def test_a_folder_of_one_image_is_a_usage_error(cli, isolated):
    (isolated / "one").mkdir()
    Image.new("RGB", (16, 16)).save(isolated / "one/a.png")
    one_line_error(cli("train", "one", "--steps", "1", "--device", "cpu"), 2, "at least 2")


def test_a_one_pixel_benchmark_image_is_a_usage_error(cli, isolated):
    (isolated / "tiny").mkdir()
    Image.new("L", (1, 1)).save(isolated / "tiny/a.png")
    one_line_error(cli("upscale", "--benchmark", "tiny", "--model", FIXTURES / "srcnn.safetensors", "--device", "cpu"), 2, "too small")


def test_bare_gancli_prints_help_without_an_error_line(cli):
    result = cli()
    assert result.code in (0, 2) and "Usage" in result.out + result.err and "Error" not in result.out + result.err


def test_16_bit_greyscale_is_scaled_and_exif_orientation_applied(isolated):
    import numpy as np

    from gancli.data.images import load_image

    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)  # up to 63,000 of 65,535
    Image.fromarray(ramp).save(isolated / "deep.png")  # a 16-bit greyscale PNG
    pixels = load_image(isolated / "deep.png")
    assert pixels.shape == (1, 8, 8) and (pixels == 255).float().mean() < 0.05 and pixels.max() == round(63000 / 65535 * 255)
    wide = Image.new("RGB", (20, 10), (0, 0, 255))
    exif = wide.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    wide.save(isolated / "photo.jpg", exif=exif)
    assert load_image(isolated / "photo.jpg").shape == (3, 20, 10)  # upright: 10 wide, 20 high


def test_an_unexpected_exception_is_one_line_that_says_bug(cli, isolated, monkeypatch):
    from gancli.use import sampling

    def broken(*args, **kwargs):
        raise AssertionError("expected size 32==32\nError in op: something\nmore lines")

    monkeypatch.setattr(sampling, "write_stream", broken)
    result = cli("sample", "--checkpoint", FIXTURES / "dcgan-ema.safetensors", "--n", "1", "--device", "cpu")
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "unexpected AssertionError (expected size 32==32); this is a bug in gancli" in result.err and "last-error.txt" in result.err
