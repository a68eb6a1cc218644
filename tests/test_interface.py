"""The interface a person reads and types: help at 80 columns, short flags, one meaning per flag, old spellings."""

import re

import pytest
from PIL import Image


def test_train_help_at_80_columns_reads_like_words(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("train", "--help")
    assert result.code == 0
    text = result.out
    assert "<bool>" not in text and "<int" not in text and "<float" not in text
    assert not re.search(r"\[\d*\.?\d*<=?x|x>=", text)  # no Python-style ranges
    for panel in ("Model", "Training", "Recipe", "Evaluation while training", "Output"):
        assert f"─ {panel} ─" in text
    assert "--ema" in text and "--no-ema" in text  # a switch shown as one
    assert "dcgan: deep convolutional GAN" in text  # architectures listed whole, one per line
    assert max(len(line) for line in text.splitlines()) <= 80


def test_top_level_help_names_every_command(cli):
    text = cli("--help").out
    for command in ("train", "sample", "interpolate", "eval", "upscale", "grid"):
        assert command in text


def test_short_flags_and_old_spellings(cli, trained_run, isolated):
    assert cli("sample", "-c", trained_run, "-n", "4", "--seed", "1", "-o", "short.png").code == 0
    assert cli("sample", "--checkpoint", trained_run, "--n", "4", "--seed", "1", "--out", "long.png").code == 0
    assert (isolated / "short.png").read_bytes() == (isolated / "long.png").read_bytes()
    assert cli("sample", "-c", trained_run, "-n", "3", "--seed", "1", "--out-dir", "old").code == 0  # the old spelling
    assert cli("sample", "-c", trained_run, "-n", "3", "--seed", "1", "--outdir", "new").code == 0
    assert sorted(p.name for p in (isolated / "old").iterdir()) == sorted(p.name for p in (isolated / "new").iterdir())
    assert cli("interpolate", "1", "2", "-c", trained_run, "--frames", "3", "-o", "walk.png").code == 0
    assert Image.open(isolated / "walk.png").size == (3 * 28 + 4 * 2, 28 + 2 * 2)  # one row of 3 frames
    assert cli("interpolate", "1", "2", "-c", trained_run, "--steps", "3", "-o", "walk-old.png").code == 0
    assert (isolated / "walk-old.png").read_bytes() == (isolated / "walk.png").read_bytes()
    assert cli("upscale", "short.png", "--method", "bicubic", "-s", "2", "-o", "big").code == 0
    assert cli("upscale", "short.png", "--method", "bicubic", "--scale", "2", "--out", "big-old").code == 0
    assert Image.open(isolated / "big" / "short.png").size == Image.open(isolated / "big-old" / "short.png").size


@pytest.mark.slow  # needs the shared classifier run: the full suite, not the fast tier
@pytest.mark.parametrize("how", [["RUN"], ["--checkpoint", "RUN"], ["-c", "RUN"]])
def test_eval_takes_the_run_positionally_or_as_checkpoint(cli, trained_run, classifier_run, how):
    args = [str(trained_run) if a == "RUN" else a for a in how]
    result = cli("eval", *args, "--classifier", classifier_run, "--force", "-n", "40")
    assert result.code == 0, result.err
    assert f"Evaluated {trained_run}" in result.out


def test_eval_refuses_the_run_twice(cli, trained_run):
    result = cli("eval", trained_run, "--checkpoint", trained_run)
    assert result.code == 2 and "as RUN or as --checkpoint, not both" in result.err


def test_flags_take_no_value_and_have_an_off_switch(cli, isolated):
    result = cli("train", "mnist", "--steps", "1", "--ema", "true", "--out", "r")
    assert result.code == 2  # 'true' is no dataset: a switch takes no value
    assert cli("train", "mnist", "--steps", "1", "--no-ema", "--batch-size", "8", "--device", "cpu", "--out", "r2").code == 0


def test_tensorboard_logs_every_row_and_sample_grid(cli, isolated):
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ["--steps", "4", "--sample-every", "2", "--batch-size", "8", "--device", "cpu", "--tensorboard", "-o", "tb"]
    assert cli("train", "mnist", *args).code == 0
    events = EventAccumulator(str(isolated / "tb" / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert {"losses/loss_D", "losses/loss_G", "discriminator_outputs/D_x", "speed/images_per_s"} <= set(events.Tags()["scalars"])
    rows = list(csv.DictReader((isolated / "tb" / "metrics.csv").open()))
    logged = events.Scalars("losses/loss_D")
    assert [e.step for e in logged] == [int(r["step"]) for r in rows] == [2, 4]
    assert [e.value for e in logged] == pytest.approx([float(r["loss_D"]) for r in rows], rel=1e-5)
    images = events.Images("samples")
    assert [e.step for e in images] == [2, 4] and images[-1].width == Image.open(isolated / "tb" / "samples" / "step_000004.png").width


def test_video_of_a_walk_decodes_to_its_frames(cli, trained_run, isolated):
    import av

    result = cli("interpolate", "1", "2", "3", "-c", trained_run, "--gif-steps", "5", "--fps", "10", "--video", "walk.mp4")
    assert result.code == 0, result.err
    assert "Wrote walk.mp4: 9 frames at 10 fps" in result.out  # 2 segments of 5, the shared middle frame once
    with av.open(str(isolated / "walk.mp4")) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (280, 280)  # 28 px x 10
    assert len(frames) == 9


def test_video_without_pyav_says_how_to_get_it(cli, trained_run, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    result = cli("interpolate", "1", "2", "-c", trained_run, "--video", "walk.mp4")
    assert result.code == 2 and "pip install" in result.err and "av" in result.err
