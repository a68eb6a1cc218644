"""Checkpoints: self-describing safetensors files, and a clear error for anything else."""

import json

import pytest
import torch
from safetensors.torch import save_file

from gancli.store import checkpoints
from gancli.config import TrainConfig
from gancli.errors import GancliError
from gancli.models import build_generator

CONFIG = TrainConfig(arch="dcgan", image_size=32, channels=3, class_names=("a", "b"), num_classes=2, latent_dim=8, generator_width=4)


def save_generator(path, config=CONFIG, **extra):
    g = build_generator(config)
    checkpoints.save_checkpoint(path, config, 12, 3, {f"generator.{k}": v for k, v in g.state_dict().items()}, **extra)
    return g


def test_round_trip_restores_config_step_and_weights(tmp_path):
    path = tmp_path / "c.safetensors"
    g = save_generator(path)
    ck = checkpoints.load_checkpoint(path)
    assert ck.config == CONFIG and ck.step == 12 and ck.epoch == 3
    assert ck.metadata["format"] == "gancli/1"
    fresh = build_generator(ck.config)
    checkpoints.load_state(fresh, ck, "generator")
    for a, b in zip(g.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_old_configs_get_defaults_for_missing_fields(tmp_path):
    stored = json.loads(CONFIG.to_json())
    del stored["upsample"], stored["beta2"]
    stored["a_field_from_the_future"] = 1
    config = TrainConfig.from_dict(stored)
    assert config.upsample == "transpose" and config.beta2 == 0.999 and config.class_names == ("a", "b")


def test_optimizer_state_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, groups = checkpoints.optimizer_tensors(opt, "optimizer_g")
    path = tmp_path / "o.safetensors"
    checkpoints.save_checkpoint(path, CONFIG, 1, 0, tensors, optimizer_g_param_groups=groups)
    other = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    checkpoints.load_optimizer(other, checkpoints.load_checkpoint(path), "optimizer_g")
    assert other.param_groups[0]["lr"] == 1e-3 and other.param_groups[0]["betas"] == [0.5, 0.9]
    for before, after in zip(opt.state.values(), other.state.values()):
        assert torch.equal(before["exp_avg_sq"], after["exp_avg_sq"]) and torch.equal(before["step"], after["step"])


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b"\x00" * 3), "not a readable safetensors file"),
        (lambda p: p.write_bytes(bytes(range(256)) * 8), "not a readable safetensors file"),
        (lambda p: save_file({"w": torch.zeros(2)}, str(p)), "not a gancli checkpoint"),
        (lambda p: save_file({"w": torch.zeros(2)}, str(p), metadata={"format": "gancli/99", "gancli_version": "9.0"}), "newer gancli"),
    ],
    ids=["missing", "tiny", "random-bytes", "foreign-safetensors", "newer-format"],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.safetensors"
    make(path)
    with pytest.raises(GancliError, match=message) as info:
        checkpoints.load_checkpoint(path)
    assert "bad.safetensors" in str(info.value) and "\n" not in str(info.value)


def test_truncated_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "t.safetensors"
    save_generator(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GancliError, match="t.safetensors"):
        checkpoints.load_checkpoint(path)


def test_weights_that_do_not_fit_the_config_name_the_file(tmp_path):
    path = tmp_path / "w.safetensors"
    save_generator(path)
    ck = checkpoints.load_checkpoint(path)
    wrong = build_generator(CONFIG.with_changes(generator_width=8))
    with pytest.raises(GancliError, match=r"w.safetensors': the generator weights do not match its config \(size mismatch for net"):
        checkpoints.load_state(wrong, ck, "generator")
