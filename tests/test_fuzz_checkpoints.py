"""Fuzzing the checkpoint loader: truncated or mutated files give a GancliError, never a traceback
and never silently different weights."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gancli.store import checkpoints
from gancli.config import TrainConfig
from gancli.errors import GancliError
from gancli.models import build_generator

CONFIG = TrainConfig(arch="dcgan", image_size=28, latent_dim=8, generator_width=4)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    torch.manual_seed(0)
    g = build_generator(CONFIG)
    path = tmp_path_factory.mktemp("fuzz") / "good.safetensors"
    checkpoints.save_checkpoint(path, CONFIG, 7, 1, {f"generator.{k}": v for k, v in g.state_dict().items()})
    return path.read_bytes(), checkpoints.load_checkpoint(path)


def load_or_error(tmp_path, blob):
    path = tmp_path / "fuzzed.safetensors"
    path.write_bytes(blob)
    try:
        return checkpoints.load_checkpoint(path)
    except GancliError as exc:
        message = str(exc)
        assert "fuzzed.safetensors" in message and "\n" not in message
        return None


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data())
def test_truncated_files_always_fail_clearly(tmp_path, original, data):
    blob, _ = original
    cut = data.draw(st.integers(0, len(blob) - 1))
    assert load_or_error(tmp_path, blob[:cut]) is None


@FUZZ
@given(data=st.data())
def test_mutated_files_fail_clearly_or_load_unchanged(tmp_path, original, data):
    blob, good = original
    mutated = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(blob) - 1))
        mutated[position] = data.draw(st.integers(0, 255).filter(lambda b, p=position: b != blob[p]))
    loaded = load_or_error(tmp_path, bytes(mutated))
    if loaded is not None:  # only harmless bytes changed (e.g. header padding): everything must be as saved
        assert loaded.config == good.config and loaded.step == good.step
        assert loaded.tensors.keys() == good.tensors.keys()
        assert all(torch.equal(loaded.tensors[k], good.tensors[k]) for k in good.tensors)


def test_a_flipped_bit_in_the_weights_is_caught(tmp_path, original):
    blob, _ = original
    mutated = bytearray(blob)
    mutated[-5] ^= 0x01  # inside the last tensor's data
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(mutated))
    with pytest.raises(GancliError, match="generator tensors do not match their checksum"):
        checkpoints.load_checkpoint(path)


@pytest.mark.parametrize("key", ["checksum.metadata", "step", "checksum.generator"])
def test_renaming_a_metadata_key_is_caught(tmp_path, original, key):
    """Found by the fuzzer in CI: renaming both 'step' and 'checksum.metadata' (one byte each) loaded
    as step 0, because a missing checksum was taken for an old file."""
    blob, _ = original
    header_end = 8 + int.from_bytes(blob[:8], "little")
    mutated = blob[:header_end].replace(f'"{key}"'.encode(), f'"{key[:-1]}_"'.encode(), 1)
    mutated = mutated.replace(b'"checksum.metadata"', b'"checksum.metadat_"', 1) + blob[header_end:]
    assert len(mutated) == len(blob)
    assert load_or_error(tmp_path, mutated) is None
