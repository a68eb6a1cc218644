"""Trust on the newer surfaces (issue 21): the folder cache, --processes, TensorBoard and output folders lose
nothing, trust no file they did not check, stay in bounded memory and say every failure in one line.
One test (or more) per numbered item; each failed before its fix."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image_folder
from tests.test_trust import FAST, files_under, forge, one_line_error


def dead_pid() -> int:
    """The PID of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def cache_dir(isolated: Path) -> Path:
    (entry,) = [p for p in (isolated / "cache" / "data").iterdir() if p.is_dir() and not p.name.startswith(".")]
    return entry


# --- 1. files get the mode open() would give them -------------------------------------------------------


def test_written_files_get_the_umasks_mode_and_replaced_files_keep_theirs(cli, isolated, trained_run):
    old = os.umask(0o022)
    try:
        assert cli("sample", "-c", trained_run, "--n", "4", "--seed", "0", "--out", "new.png").code == 0
        assert stat.S_IMODE(os.stat("new.png").st_mode) == 0o644
        Image.new("L", (4, 4)).save("mine.png")
        os.chmod("mine.png", 0o640)
        assert cli("sample", "-c", trained_run, "--n", "4", "--seed", "0", "--out", "mine.png").code == 0
        assert stat.S_IMODE(os.stat("mine.png").st_mode) == 0o640
        assert cli("train", "mnist", "--steps", "2", "--out", "r", *FAST).code == 0
        assert stat.S_IMODE(os.stat("r/checkpoints/last.safetensors").st_mode) == 0o644
        assert stat.S_IMODE(os.stat("r/config.json").st_mode) == 0o644
    finally:
        os.umask(old)


# --- 2. nothing but a regular file is replaced ----------------------------------------------------------


@pytest.mark.parametrize("flag", ["--gif", "--out"])
def test_a_pipe_or_device_in_place_of_an_output_is_refused_not_replaced(cli, isolated, trained_run, flag):
    os.mkfifo("pipe.gif")
    one_line_error(cli("interpolate", "1", "2", "-c", trained_run, flag, "pipe.gif"), 2, "not a regular file")
    assert stat.S_ISFIFO(os.lstat("pipe.gif").st_mode)


# --- 3. resuming a loose checkpoint writes into a new run folder ----------------------------------------


def test_resuming_a_loose_checkpoint_leaves_the_users_folder_alone(cli, isolated, trained_run):
    dl = isolated / "dl"
    (dl / "samples").mkdir(parents=True)
    shutil.copy(trained_run / "checkpoints" / "last.safetensors", dl / "m.safetensors")
    for name, text in (("config.json", '{"mine": 1}'), ("metrics.csv", "step,x\n1,2\n"), ("metrics.png", "png"), ("samples/a.png", "a")):
        (dl / name).write_text(text)
    before = {p: p.read_bytes() for p in files_under(dl)}
    result = cli("train", "--resume", dl / "m.safetensors", "--steps", "8")
    assert result.code == 0, result.err
    assert {p: p.read_bytes() for p in files_under(dl)} == before
    assert "is not inside a run folder" in result.err
    (run,) = [p for p in (isolated / "runs").iterdir()]
    assert (run / "checkpoints" / "last.safetensors").is_file()


# --- 4. sample/upscale --outdir do not replace the user's files unasked ---------------------------------


def test_sample_outdir_refuses_to_replace_files_unless_told(cli, isolated, trained_run):
    Path("mine").mkdir()
    Path("mine/00001.png").write_text("my own picture")
    one_line_error(cli("sample", "-c", trained_run, "--n", "3", "--seed", "0", "--outdir", "mine"), 2, "already holds 1 of the files", "--overwrite")
    assert Path("mine/00001.png").read_text() == "my own picture"
    kept = cli("sample", "-c", trained_run, "--n", "3", "--seed", "0", "--outdir", "mine", "--skip-existing")
    assert kept.code == 0 and "kept 1 existing" in kept.out
    assert Path("mine/00001.png").read_text() == "my own picture" and Path("mine/00002.png").is_file()
    assert cli("sample", "-c", trained_run, "--n", "3", "--seed", "0", "--outdir", "mine", "--overwrite").code == 0
    assert Path("mine/00001.png").read_bytes()[:4] == b"\x89PNG"


def test_upscale_outdir_refuses_to_replace_files_unless_told(cli, isolated):
    Image.new("L", (8, 8), 100).save("x.png")
    Path("upout").mkdir()
    Path("upout/x.png").write_text("mine")
    one_line_error(cli("upscale", "x.png", "--method", "bicubic", "--outdir", "upout"), 2, "already holds 1 of the files")
    assert Path("upout/x.png").read_text() == "mine"
    skipped = cli("upscale", "x.png", "--method", "bicubic", "--outdir", "upout", "--skip-existing")
    assert skipped.code == 0 and Path("upout/x.png").read_text() == "mine"
    assert cli("upscale", "x.png", "--method", "bicubic", "--outdir", "upout", "--overwrite").code == 0
    assert Image.open("upout/x.png").size == (16, 16)


# --- 5. the temporaries of killed commands are cleaned by the next run ----------------------------------


def test_orphans_of_a_killed_export_and_decode_are_removed_but_a_live_ones_stay(cli, isolated, trained_run, image_folder):
    Path("out").mkdir()
    dead, alive = dead_pid(), os.getppid()
    orphan, running = Path(f"out/.00000.png.{dead}-abcd1234.tmp"), Path(f"out/.00001.png.{alive}-abcd1234.tmp")
    mine = Path("out/.notes.tmp")  # a user's file that merely looks temporary
    for path in (orphan, running, mine):
        path.write_bytes(b"x" * 1000)
    assert cli("sample", "-c", trained_run, "--n", "2", "--seed", "0", "--outdir", "out").code == 0
    assert not orphan.exists() and running.exists() and mine.exists()
    assert cli("data", image_folder, "--image-size", "16").code == 0
    root = isolated / "cache" / "data"
    stale = root / f".{cache_dir(isolated).name}.{dead}-abcd1234"
    legacy, recent = root / f".{cache_dir(isolated).name}.ab12cd34", root / f".{cache_dir(isolated).name}.ef56gh78"
    for folder in (stale, legacy, recent):
        folder.mkdir()
        (folder / "rgb.raw").write_bytes(b"x" * 1000)
    os.utime(legacy, (time.time() - 2 * 86_400,) * 2)  # an older gancli's, two days old: surely dead
    (image_folder / "circles" / "000.png").touch()  # changed: decoded again, which cleans up
    assert cli("data", image_folder, "--image-size", "16").code == 0
    assert not stale.exists() and not legacy.exists() and recent.exists()


@pytest.mark.slow  # a real SIGKILL mid-export, in a subprocess
def test_sigkill_mid_export_then_skip_existing_completes_with_no_temporaries(isolated, trained_run):
    command = [sys.executable, "-m", "gancli", "sample", "-c", str(trained_run), "--n", "3000", "--seed", "1", "--outdir", "big"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(Path("big").glob("*.png"))) < 50 if Path("big").is_dir() else time.time() < deadline:
        time.sleep(0.05)
    child.kill()
    child.wait()
    done = subprocess.run(command + ["--skip-existing"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list(Path("big").glob("*.png"))) == 3000 and not list(Path("big").glob(".*"))


# --- 6. a run that stopped before its first checkpoint is no dead end -----------------------------------


def test_a_run_folder_without_a_checkpoint_can_be_started_again(cli, isolated):
    assert cli("train", "mnist", "--steps", "2", "--out", "dbl", *FAST).code == 0
    shutil.rmtree("dbl/checkpoints")  # what a double Ctrl-C before the first checkpoint leaves
    resumed = cli("train", "--resume", "dbl")
    one_line_error(resumed, 2, "stopped before its first checkpoint", "gancli train mnist --arch dcgan --outdir dbl")
    again = resumed.err.split("start it again with: ")[1].strip().split()
    result = cli(*again[1:], "--steps", "2", *FAST)
    assert result.code == 0 and "starting anew in its place" in result.err, result.err
    assert Path("dbl/checkpoints/last.safetensors").is_file()


def test_a_full_disk_does_not_advise_a_lower_learning_rate(cli, isolated, monkeypatch):
    import errno

    from gancli.store import checkpoints

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(checkpoints, "save_training_state", full)
        result = cli("train", "mnist", "--steps", "2", "--out", "full", *FAST)
    one_line_error(result, 1, "No space left on device", "Free some space")
    assert "--lr" not in result.err
    assert cli("train", "mnist", "--steps", "2", "--out", "full", *FAST).code == 0  # the same command, as the message says


# --- 7. the cache trusts none of its files ---------------------------------------------------------------


def _damage(where: Path, how: str) -> None:
    index = json.loads((where / "index.json").read_text())
    if how == "index-list":
        (where / "index.json").write_text("[]")
    elif how == "no-count":
        index.pop("count")
        (where / "index.json").write_text(json.dumps(index))
    elif how == "class-names-number":
        index["class_names"] = 7
        (where / "index.json").write_text(json.dumps(index))
    elif how == "escaping-class-names":
        index["class_names"] = ["../../evil", "b"]
        (where / "index.json").write_text(json.dumps(index))
    elif how in ("labels-out-of-range", "labels-negative", "labels-short"):
        labels = np.load(where / "labels.npy")
        labels = {"labels-out-of-range": labels + 5, "labels-negative": labels - 1, "labels-short": labels[:3]}[how]
        np.save(where / "labels.npy", labels)
    elif how == "huge-shape":
        with open(where / "images.npy", "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (index["count"], 3, 8192, 8192)})
    elif how == "zero-bytes":
        (where / "images.npy").write_bytes(b"")
    elif how == "fifo":
        (where / "images.npy").unlink()
        os.mkfifo(where / "images.npy")


DAMAGE = ["index-list", "no-count", "class-names-number", "escaping-class-names", "labels-out-of-range", "labels-negative",
          "labels-short", "huge-shape", "zero-bytes", "fifo"]  # fmt: skip


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_cache_is_decoded_again_with_a_notice(cli, isolated, how):
    folder = make_image_folder(isolated / "shapes", size=16, per_class=4)
    assert cli("data", folder, "--image-size", "16").code == 0
    _damage(cache_dir(isolated), how)
    result = cli("data", folder, "--image-size", "16")
    assert result.code == 0 and "decoded the images again" in result.out and "Already decoded" not in result.out, result.out + result.err
    assert "8 images" in result.out and "2 classes (circles, squares)" in result.out
    assert cli("data", folder, "--image-size", "16").out.startswith("Already decoded")


# --- 8. the fingerprint notices touch -r, swaps, chmod, and a resumed run says its data changed -----------


@pytest.mark.parametrize("change", ["rewrite-keep-mtime", "swap-same-size", "chmod"])
def test_the_cache_notices_changes_that_keep_size_and_mtime(cli, isolated, change):
    folder = isolated / "bmps"
    for cls, colours in (("a", ((200, 0, 0), (0, 200, 0))), ("b", ((0, 0, 200), (90, 90, 90)))):
        (folder / cls).mkdir(parents=True)
        for i, colour in enumerate(colours):
            Image.new("RGB", (16, 16), colour).save(folder / cls / f"{i}.bmp")  # BMP: the same size whatever the pixels
    a, b = folder / "a" / "0.bmp", folder / "a" / "1.bmp"
    for path in (a, b):
        os.utime(path, ns=(10**18, 10**18))  # one modification time for both
    assert cli("data", folder, "--image-size", "16").code == 0
    if change == "rewrite-keep-mtime":
        Image.new("RGB", (16, 16), (1, 2, 3)).save(a)
        os.utime(a, ns=(10**18, 10**18))  # touch -r
    elif change == "swap-same-size":
        tmp = folder / "t"
        a.rename(tmp), b.rename(a), tmp.rename(b)  # same names, sizes and times; other pixels
    else:
        a.chmod(0), a.chmod(0o644)
    result = cli("data", folder, "--image-size", "16")
    assert result.code == 0 and "Decoded in" in result.out, result.out


def test_a_resumed_run_says_its_folder_changed(cli, isolated):
    folder = make_image_folder(isolated / "shapes", size=32, per_class=4)
    assert cli("train", folder, "--steps", "2", "--image-size", "32", "--out", "r", "--batch-size", "4", "--device", "cpu").code == 0
    Image.new("RGB", (32, 32), (9, 9, 9)).save(folder / "circles" / "new.png")
    result = cli("train", "--resume", "r", "--steps", "4")
    assert result.code == 0 and "changed since last.safetensors was saved" in result.err, result.err


# --- 9. RUN/tensorboard is checked like every other run file ---------------------------------------------


@pytest.mark.parametrize("what", ["link", "file"])
def test_tensorboard_folder_that_is_a_link_or_a_file_is_refused(cli, isolated, what):
    Path("r").mkdir()
    if what == "link":
        Path("elsewhere").mkdir()
        Path("r/tensorboard").symlink_to(isolated / "elsewhere")
    else:
        Path("r/tensorboard").write_text("x")
    one_line_error(cli("train", "mnist", "--steps", "2", "--out", "r", "--tensorboard", *FAST), 2, "r/tensorboard")
    assert not list(Path("elsewhere").iterdir()) if what == "link" else Path("r/tensorboard").read_text() == "x"


# --- 10. --processes: capped, tied to the launcher, one error for a locked run ----------------------------


def test_more_processes_than_cpus_is_refused_unless_forced(cli, isolated, monkeypatch):
    monkeypatch.setattr("gancli.device.usable_cpus", lambda: 2)
    one_line_error(cli("train", "mnist", "--processes", "1024"), 2, "--processes 1024 is more than this machine's 2 usable CPUs")


@pytest.mark.slow  # subprocesses
def test_a_locked_run_under_processes_is_one_error(cli, isolated):
    from gancli.store.runs import RunLock

    assert cli("train", "mnist", "--steps", "2", "--out", "r", *FAST).code == 0
    with RunLock(isolated / "r"):
        done = subprocess.run([sys.executable, "-m", "gancli", "train", "--resume", "r", "--steps", "4", "--processes", "2"],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("Error") == 1 and "Another gancli train" in done.stderr, done.stderr


@pytest.mark.slow  # subprocesses and SIGKILL
def test_processes_die_with_their_launcher(isolated):
    command = [sys.executable, "-m", "gancli", "train", "mnist", "--steps", "100000", "--batch-size", "8", "--device", "cpu",
               "--processes", "2", "--out", "r"]  # fmt: skip
    launcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline and not _children(launcher.pid):
        time.sleep(0.2)
    ranks = _children(launcher.pid)
    assert ranks
    time.sleep(3)
    launcher.kill()
    launcher.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(_running(pid) for pid in ranks):
        time.sleep(0.2)
    assert not any(_running(pid) for pid in ranks)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except (OSError, IndexError):
        return False


# --- 11. names from files are printed with control characters escaped ------------------------------------


def test_control_characters_in_file_names_are_escaped(cli, isolated):
    folder = make_image_folder(isolated / "shapes", size=16, per_class=3)
    (folder / "circles" / "\x1b]0;pwned\x07\nx.png").write_bytes(b"not an image")
    result = cli("data", folder, "--image-size", "16")
    assert result.code == 0 and "\x1b" not in result.out + result.err and "\\x1b]0;pwned\\x07\\nx.png" in result.out


def test_a_checkpoint_with_control_characters_in_class_names_is_refused(cli, isolated):
    from gancli.config import TrainConfig

    forged = forge(Path(__file__).parent / "fixtures" / "v0.1.0" / "cdcgan.safetensors", isolated / "f.safetensors",
                   {"class_names": ["\x1b[2Jzero", *map(str, range(1, 10))]})  # fmt: skip
    result = cli("sample", "-c", forged, "--label", "all")
    one_line_error(result, 1, "control character")
    assert "\x1b" not in result.err
    assert TrainConfig  # the config's own check is what refused it


def test_class_folders_with_newlines_do_not_become_class_names(cli, isolated):
    folder = make_image_folder(isolated / "shapes", size=16, per_class=3, classes=("a\nb", "c"))
    result = cli("data", folder, "--image-size", "16")
    one_line_error(result, 1, "control character")
    assert "\n" not in result.err.strip()


# --- 12. forged settings: accuracy, optimiser flags, a dataset path --------------------------------------


def test_a_forged_accuracy_does_not_pass_evals_refusal(cli, isolated, trained_run, classifier_run):
    forged = forge(classifier_run / "checkpoints" / "last.safetensors", isolated / "cls.safetensors", metadata_changes={"accuracy": "0.99"})
    one_line_error(cli("eval", trained_run, "--classifier", forged, "--n", "10"), 2, "below the 80%", "measured now")


@pytest.mark.parametrize("flag", ["maximize", "amsgrad", "differentiable"])
def test_forged_optimiser_flags_are_refused(cli, isolated, trained_run, flag):
    source = trained_run / "checkpoints" / "last.safetensors"
    from gancli.store.checkpoints import read_metadata

    groups = json.loads(read_metadata(source)["optimizer_g_param_groups"])
    groups[0][flag] = True
    forged = forge(source, isolated / "run" / "checkpoints" / "last.safetensors", metadata_changes={"optimizer_g_param_groups": json.dumps(groups)})
    one_line_error(cli("train", "--resume", forged.parent.parent, "--steps", "8"), 1, f"{flag} is True")


def test_a_resumed_checkpoint_naming_another_folder_is_refused_before_decoding(cli, isolated, trained_run, monkeypatch):
    from gancli.data import folder_cache

    other = make_image_folder(isolated / "elsewhere", size=16, per_class=3, classes=("x", "y", "z"))
    forged = forge(trained_run / "checkpoints" / "last.safetensors", isolated / "run" / "checkpoints" / "last.safetensors", {"dataset": str(other)})
    before = folder_cache.DECODED.files
    one_line_error(cli("train", "--resume", forged.parent.parent, "--steps", "8"), 1, "does not hold the run's data")
    assert folder_cache.DECODED.files == before  # not one file decoded


# --- 13. memory: sizes from headers, frames streamed ------------------------------------------------------


def test_an_image_too_large_to_upscale_is_refused_from_its_header(cli, isolated, monkeypatch):
    from gancli.data import images

    Image.new("L", (3000, 3000)).save("big.png")
    monkeypatch.setattr(images, "load_image", lambda path: pytest.fail("decoded before the size was checked"))
    one_line_error(cli("upscale", "big.png", "--method", "bicubic", "--scale", "16", "--outdir", "up"), 2, "over the limit")


def test_wide_images_are_refused_by_decoded_bytes_and_16_bit_ones_scaled_in_bands(isolated, monkeypatch):
    from gancli.data import images
    from gancli.errors import UsageError

    Image.new("RGB", (200, 200)).save("rgb.png")
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 200 * 200 * 4 - 1)  # RGB is 4 bytes a pixel in Pillow
    with pytest.raises(UsageError, match="MB decoded"):
        images.load_image(Path("rgb.png"))
    ramp = (np.arange(40_000, dtype=np.uint32).reshape(200, 200) % 65535).astype(np.uint16)
    Image.fromarray(ramp).save("deep.png")
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 10**9)
    deep = Image.open("deep.png")
    banded = images._reduced_in_bands(deep, 1, images._eight_bit(deep, "L"), rows=7)  # scaled to the whole image's range
    assert np.array_equal(banded, np.clip(ramp / 65535.0 * 255 + 0.5, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "I;16"])
def test_reducing_in_bands_gives_the_pixels_of_a_whole_image_reduce(mode):
    from gancli.data import images

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (301, 277), dtype=np.uint8)
    picture = {"RGB": lambda: Image.fromarray(rng.integers(0, 256, (301, 277, 3), dtype=np.uint8)),
               "RGBA": lambda: Image.fromarray(rng.integers(0, 256, (301, 277, 4), dtype=np.uint8)),
               "L": lambda: Image.fromarray(grey), "P": lambda: Image.fromarray(grey).convert("P"),
               "I;16": lambda: Image.fromarray(grey.astype(np.uint16) * 257)}[mode]()  # fmt: skip
    convert = images._eight_bit(picture, "L" if mode in ("L", "I;16") else "RGB")
    banded = images._reduced_in_bands(picture, 6, convert, rows=40)  # bands of 36 rows, a partial block at the edges
    assert np.array_equal(np.asarray(banded), np.asarray(convert(picture).reduce(6)))


def test_walk_frames_stream_to_the_encoders_in_batches(cli, isolated, trained_run, monkeypatch):
    from gancli.use import sampling

    sizes = []
    real = sampling.render
    monkeypatch.setattr(sampling, "render", lambda g, z, *a, **k: sizes.append(len(z)) or real(g, z, *a, **k))
    result = cli("interpolate", "1", "2", "3", "-c", trained_run, "--gif", "w.gif", "--gif-steps", "100")
    assert result.code == 0, result.err
    assert max(sizes) <= 32 and sum(sizes) == 199 and Image.open("w.gif").n_frames == 199


# --- 14. concurrent decodes of one folder -----------------------------------------------------------------


@pytest.mark.slow  # ten processes
def test_concurrent_decodes_of_one_folder_all_succeed(isolated):
    """Ten decodes of one folder at once: before the lock, about one in ten failed with ENOTEMPTY (two renames onto one name)."""
    folder = make_image_folder(isolated / "shapes", size=32, per_class=100)
    env = os.environ | {"GANCLI_CACHE_DIR": str(isolated / "cache")}
    runs = [subprocess.Popen([sys.executable, "-m", "gancli", "data", str(folder), "--image-size", "16"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(10)]  # fmt: skip
    results = [(p.wait(timeout=120), p.stderr.read()) for p in runs]
    assert all(code == 0 for code, _ in results), results
    assert len([p for p in (isolated / "cache" / "data").iterdir() if p.is_dir()]) == 1


# --- 15. one clear line where a bug line was ----------------------------------------------------------------


def test_a_truncated_idx_file_is_a_clear_error_not_an_interruption(cli, isolated):
    import gzip

    from gancli.data.datasets import BUNDLED_MNIST

    data = isolated / "datasets"
    data.mkdir()
    whole = gzip.open(BUNDLED_MNIST / "t10k-images-idx3-ubyte.gz").read()
    (data / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(whole)[:5000])
    shutil.copy(BUNDLED_MNIST / "t10k-labels-idx1-ubyte.gz", data / "train-labels-idx1-ubyte.gz")
    one_line_error(cli("train", "mnist", "--steps", "2", *FAST), 1, "Cannot read IDX file")


@pytest.mark.parametrize("where", ["file", "/dev/null"])
def test_a_cache_dir_that_is_not_a_folder_is_one_line(cli, isolated, monkeypatch, where):
    folder = make_image_folder(isolated / "shapes", size=16, per_class=3)
    target = isolated / "afile" if where == "file" else Path(where)
    if where == "file":
        target.write_text("x")
    monkeypatch.setenv("GANCLI_CACHE_DIR", str(target))
    one_line_error(cli("data", folder, "--image-size", "16"), 2, "GANCLI_CACHE_DIR")


def test_odd_file_names_and_link_loops_in_a_folder_are_skipped_in_one_line(cli, isolated):
    folder = make_image_folder(isolated / "shapes", size=16, per_class=3)
    name = os.fsencode(folder / "circles") + b"/bad\xffname.png"
    with open(name, "wb") as f:
        f.write(b"not an image")
    (folder / "circles" / "loop.png").symlink_to(folder / "circles" / "loop.png")
    result = cli("data", folder, "--image-size", "16")
    assert result.code == 0 and "Skipped 2 unreadable" in result.out, result.err
    assert cli("train", folder, "--steps", "2", "--image-size", "32", "--out", "r", "--batch-size", "4", "--device", "cpu").code == 0


@pytest.mark.slow  # subprocesses: Python's own warning output, which pytest would catch in-process
def test_pillows_warnings_do_not_reach_the_user(isolated):
    picture = Image.new("P", (8, 8), 1)
    picture.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    Path("pal/a").mkdir(parents=True)
    for name in ("x", "y"):  # transparency as bytes: Pillow warns on every conversion
        picture.save(f"pal/a/{name}.png", transparency=bytes([0, 128] + [255] * 254))
    for args in (("grid", "pal/a/x.png", "--out", "g.png"), ("data", "pal", "--image-size", "8")):
        done = subprocess.run([sys.executable, "-m", "gancli", *args], capture_output=True, text=True)  # pytest would catch warnings itself
        assert done.returncode == 0 and done.stderr == "", (args, done.stderr)


def test_a_lock_that_is_a_folder_and_a_huge_budget_are_one_line(cli, isolated):
    Path("r/.lock").mkdir(parents=True)
    one_line_error(cli("train", "mnist", "--steps", "2", "--out", "r", *FAST), 2, ".lock' is not a plain file")
    one_line_error(cli("train", "mnist", "--steps", "2", "--memory-budget", "9" * 400, *FAST), 2, "is not a size")


# --- 16. threads ----------------------------------------------------------------------------------------------


def test_threads_follow_the_load_and_are_said(cli, isolated, monkeypatch):
    from gancli.device import cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("gancli.device.usable_cpus", lambda: 2)
    monkeypatch.setattr("gancli.device.busy_others", lambda: 4.5)
    assert cpu_threads() == (1, "2 usable CPUs less the load of 4.5")
    monkeypatch.setattr("gancli.device.busy_others", lambda: 0.2)
    assert cpu_threads() == (2, "the usable CPUs")
    from gancli.device import busy_others

    assert busy_others() is None or busy_others() >= 0
    assert cpu_threads(3) == (3, "--threads")
    result = cli("train", "mnist", "--steps", "2", "--threads", "1", "--out", "r", *FAST)
    assert result.code == 0 and "1 CPU thread (--threads)" in result.err


def test_a_throughput_collapse_is_said_once(tmp_path):
    import io

    from rich.console import Console

    from gancli.config import TrainConfig
    from gancli.cli.progress import TrainingDisplay
    from gancli.training.reports import TrainingPlan, TrainingProgress

    buffer = io.StringIO()
    with TrainingDisplay(Console(file=buffer, force_terminal=False, width=300)) as display:
        display.start(TrainingPlan(TrainConfig(), tmp_path, "cpu", "data", [], 0, 1000, 10))
        for step in range(1, 60):
            display.update(TrainingProgress(step, 1000, step / 10, {}, 500.0 if step < 30 else 40.0, step))
    assert buffer.getvalue().count("training slowed to 40 img/s from 500") == 1


# --- 17. a huge export is checked against the disk; Ctrl-C says how to go on ---------------------------------


def test_an_export_larger_than_the_disk_is_refused_before_writing(cli, isolated, trained_run, monkeypatch):
    real = os.statvfs

    class Small:
        def __init__(self, stats):
            self.f_frsize = self.f_bsize = 4096
            self.f_bavail, self.f_files, self.f_favail = 1000, stats.f_files, stats.f_favail

    monkeypatch.setattr(os, "statvfs", lambda path: Small(real(path)))
    one_line_error(cli("sample", "-c", trained_run, "--n", "10000000", "--outdir", "tenmil"), 1, "10,000,000 files need about")
    assert not Path("tenmil").exists()


def test_ctrl_c_during_an_export_says_how_many_and_how_to_continue(cli, isolated, trained_run, monkeypatch):
    from gancli.use import sampling

    real, calls = sampling._save_new, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    with monkeypatch.context() as patch:
        patch.setattr(sampling, "_save_new", interrupted)
        result = cli("sample", "-c", trained_run, "--n", "600", "--outdir", "part")
    one_line_error(result, 130, "Stopped after writing 256 of 600 images", "--skip-existing", "--seed")
    again = result.err.split("continue with: gancli ")[1].split()
    assert cli(*again).code == 0 and len(list(Path("part").glob("*.png"))) == 600


# --- 18. interpolate writes only what was asked for ----------------------------------------------------------


def test_interpolate_with_only_a_video_or_gif_writes_no_grid(cli, isolated, trained_run):
    result = cli("interpolate", "1", "2", "-c", trained_run, "--gif", "w.gif")
    assert result.code == 0 and Path("w.gif").is_file() and not Path("walk.png").exists()
    result = cli("interpolate", "1", "2", "-c", trained_run)
    assert result.code == 0 and "Wrote walk.png" in result.out


# --- 19. one exit code per problem, readable lines --------------------------------------------------------------


def test_consistency_of_codes_names_and_wording(cli, isolated, trained_run):
    Path("empty").mkdir()
    assert cli("train", "empty").code == cli("data", "empty").code == cli("grid", "empty").code == 2
    one_line_error(cli("train", "mnist", "--arch", "dcgann"), 2, "did you mean 'dcgan'?")
    assert cli("train", "MNIST", "--steps", "2", "--out", "up", *FAST).code == 0
    assert json.loads(Path("up/config.json").read_text())["dataset"] == "mnist"
    assert cli().code == 0
    assert "a grid of 1 image (" in cli("sample", "-c", trained_run, "--n", "1", "--seed", "0").out


def test_the_eta_waits_for_timed_steps_and_a_resumed_summary_says_what_the_time_covers(cli, isolated, tmp_path, monkeypatch):
    import io

    from rich.console import Console

    import gancli.cli.progress as progress
    from gancli.config import TrainConfig
    from gancli.training.reports import TrainingPlan, TrainingProgress

    ticks = iter([0.0, 50.0, 51.0, 55.0])  # start; step 1 after 50 s of start-up; then a step a second
    with monkeypatch.context() as patch:
        patch.setattr(progress.time, "perf_counter", lambda: next(ticks, 60.0))
        display = progress.TrainingDisplay(Console(file=io.StringIO(), force_terminal=False))
        display.start(TrainingPlan(TrainConfig(), tmp_path, "cpu", "data", [], 0, 1000, 10))
        assert display.eta(TrainingProgress(1, 1000, 0.1, {}, 1.0, 50.0)) == float("inf")  # not 1000 x 50 s
        assert display.eta(TrainingProgress(2, 1000, 0.2, {}, 1.0, 51.0)) == float("inf")  # 1 timed step is not enough
        assert display.eta(TrainingProgress(6, 1000, 0.6, {}, 1.0, 55.0)) == 994.0  # then the pace: 1 s a step
    assert cli("train", "mnist", "--steps", "2", "--out", "r", *FAST).code == 0
    resumed = cli("train", "--resume", "r", "--steps", "4")
    assert resumed.code == 0 and "s of training (" in resumed.out and "s in this session)" in resumed.out


# --- 20. the quick recipe is not offered for cdcgan -------------------------------------------------------------


def test_quick_recipe_is_refused_for_cdcgan_with_the_measured_alternative(cli, isolated):
    one_line_error(cli("train", "mnist", "--arch", "cdcgan", "--recipe", "quick"), 2, "use --recipe small-fast with cdcgan")
