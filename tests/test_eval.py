"""gancli eval: the dataset classifier, scores against the real-data floor, Inception, --eval-every."""

import csv
import json

import pytest
import torch

from tests.conftest import train_once
from gancli.store import checkpoints


def test_classifier_learns_the_digits_and_stores_held_out_accuracy(classifier_run):
    with (classifier_run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["40", "80"]
    checkpoint = checkpoints.load_checkpoint(classifier_run / "checkpoints" / "last.safetensors")
    assert float(checkpoint.metadata["accuracy"]) == pytest.approx(float(rows[-1]["accuracy"]), abs=1e-5)
    assert float(rows[-1]["accuracy"]) > 0.6  # 10 classes: chance is 0.1
    assert (classifier_run / "checkpoints" / "best.safetensors").is_file()


def test_eval_scores_a_generator_offline_against_the_real_floor(cli, isolated, trained_run, classifier_run):
    first = cli("eval", trained_run, "--classifier", classifier_run, "--force", "--n", "200")
    assert first.code == 0, first.err
    assert "gancli classifier (mnist" in first.out and "held-out accuracy" in first.out
    record = json.loads((trained_run / "eval.json").read_text())[-1]
    scores, floor = record["scores"], record["real_floor"]
    assert set(scores) >= {"FID", "KID", "precision", "recall", "classes_covered", "class_KL", "class_variety"}
    assert floor["FID"] < scores["FID"]  # 6 training steps are far from real digits
    assert 0.8 < floor["class_variety"] < 1.25  # two halves of the real digits vary alike within each class
    assert floor["classes_covered"] == 10 and floor["class_KL"] < 0.3  # held-out real digits: every class
    again = cli("eval", trained_run, "--classifier", classifier_run, "--force", "--n", "200")
    assert "(cached)" in again.out  # the reference features are reused
    records = json.loads((trained_run / "eval.json").read_text())
    assert records[-1]["scores"]["FID"] == pytest.approx(scores["FID"])  # same seed, same images, same score


def test_eval_reports_class_accuracy_for_conditional_models(cli, isolated, tmp_path_factory, classifier_run):
    run = train_once(tmp_path_factory, "cond", "--arch", "cgan", "--steps", "2")
    result = cli("eval", run, "--classifier", classifier_run, "--force", "--n", "100")
    assert result.code == 0, result.err
    assert "class_accuracy" in result.out and "class_variety" in result.out
    floor = json.loads((run / "eval.json").read_text())[-1]["real_floor"]
    assert 0.0 <= floor["class_accuracy"] <= 1.0  # the classifier on labelled real digits: what a generator can reach


def test_eval_without_a_classifier_says_how_to_get_one(cli, trained_run):
    result = cli("eval", trained_run, "--n", "100")
    assert result.code == 1
    assert "gancli train mnist --arch classifier" in result.err and "--extractor inception" in result.err


def test_eval_refuses_a_classifier_checkpoint_as_generator(cli, classifier_run):
    result = cli("eval", classifier_run, "--n", "100")
    assert result.code == 2 and "is a classifier" in result.err


def test_inception_offline_without_weights_names_the_fixes(cli, trained_run, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    result = cli("eval", trained_run, "--extractor", "inception", "--n", "20")
    assert result.code == 1
    assert "--inception-weights" in result.err and "--extractor classifier" in result.err


@pytest.mark.slow  # builds Inception-v3
def test_inception_extractor_loads_a_weights_file(cli, isolated, trained_run):
    """The real torchvision weights cannot be downloaded here; a file of the same layout exercises the path."""
    from torchvision.models import inception_v3

    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), isolated / "inception.pth")
    result = cli("eval", trained_run, "--extractor", "inception", "--inception-weights", isolated / "inception.pth", "--n", "10")
    assert result.code == 0, result.err
    assert "Inception-v3 pool3" in result.out and "FID" in result.out
    assert "classes_covered" not in result.out  # Inception knows no MNIST classes


@pytest.mark.slow  # end to end: several runs, sampling and eval
def test_eval_every_tracks_fid_and_keeps_the_best_checkpoint(cli, isolated, classifier_run):
    args = ["--steps", "4", "--sample-every", "4", "--eval-every", "2", "--eval-n", "100", "--eval-classifier", classifier_run]
    result = cli("train", "mnist", *args, "--batch-size", "16", "--device", "cpu", "--out", "q")
    assert result.code == 0, result.err
    with (isolated / "q" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["2", "4"] and all(r["FID"] for r in rows)
    best_row = min(rows, key=lambda r: float(r["FID"]))
    best = checkpoints.load_checkpoint(isolated / "q" / "checkpoints" / "best.safetensors")
    assert best.step == int(best_row["step"])
    assert float(best.metadata["fid"]) == pytest.approx(float(best_row["FID"]), rel=1e-4)


def test_eval_every_needs_a_classifier(cli):
    result = cli("train", "mnist", "--eval-every", "2", "--steps", "2")
    assert result.code == 2 and "--eval-classifier" in result.err


def test_eval_refuses_a_useless_classifier_unless_forced(cli, isolated, trained_run):
    useless = cli("train", "mnist", "--arch", "classifier", "--steps", "1", "--batch-size", "16", "--device", "cpu", "--out", "runs/useless")
    assert useless.code == 0, useless.err
    refused = cli("eval", trained_run, "--n", "20", "--device", "cpu")  # finds the useless one under runs/ by itself
    assert refused.code == 2 and "held-out accuracy" in refused.err and "below the 80%" in refused.err and "--force" in refused.err
    forced = cli("eval", trained_run, "--n", "20", "--device", "cpu", "--force")
    assert forced.code == 0, forced.err
    assert "% held-out accuracy" in forced.out and "KID (MMD^2)" in forced.out


def test_eval_picks_the_most_accurate_classifier(isolated, classifier_run):
    import shutil

    from gancli.store.runs import best_classifier

    shutil.copytree(classifier_run, isolated / "runs/good")
    fake = checkpoints.load_checkpoint(isolated / "runs/good/checkpoints/last.safetensors")
    worse = isolated / "runs/newer/checkpoints/last.safetensors"
    checkpoints.save_checkpoint(worse, fake.config, fake.step, fake.epoch, fake.tensors, accuracy="0.2")  # newest, but worse
    assert best_classifier(isolated / "runs", "mnist").parent.parent.name == "good"
