"""Checkpoints: safetensors files whose metadata describes the model, so loading needs no flags.

The only code that knows the schema. Tensors are grouped by prefix: one group per task module
(`generator.*`, `discriminator.*`, `generator_ema.*`, `classifier.*`), one per optimiser
(`optimizer_g.*`, ...; their param_groups in the metadata) and `rng.*`. The metadata holds
`format`, `gancli_version`, `config` (JSON), `step`, `epoch`, the held-out scores at that step
and SHA-256 checksums. Nothing is ever pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from gancli import __version__
from gancli.config import TrainConfig
from gancli.errors import GancliError

FORMAT = "gancli/1"
FORMAT_VERSION = 1


@dataclass
class Header:
    """What a checkpoint says about itself, read without its tensors."""

    path: Path
    config: TrainConfig
    step: int
    metadata: dict[str, str]

    @property
    def kind(self) -> str:
        """"generator", "upscaler" or "classifier"."""
        from gancli.models import get_architecture

        return get_architecture(self.config.arch).kind

    def score(self, name: str) -> float | None:
        return _score(self.metadata, name)


def _score(metadata: dict[str, str], name: str) -> float | None:
    """A held-out score stored with a checkpoint (FID, PSNR, accuracy), or None."""
    try:
        return float(metadata[name.lower()])
    except (KeyError, ValueError):
        return None


@dataclass
class Checkpoint:
    path: Path
    config: TrainConfig
    step: int
    epoch: int
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]

    def score(self, name: str) -> float | None:
        return _score(self.metadata, name)

    @property
    def processes(self) -> int:
        """How many torchrun processes trained it (1 for older files)."""
        value = self.metadata.get("processes", "1")
        return int(value) if value.isdigit() else 1

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors stored under `prefix.`, with the prefix removed."""
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}


def _digest(tensors: dict[str, torch.Tensor], keys) -> str:
    """SHA-256 over names, dtypes, shapes and bytes: safetensors itself has no checksum, so a flipped
    bit in the data would otherwise load silently."""
    h = hashlib.sha256()
    for key in sorted(keys):
        t = tensors[key]
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _metadata_digest(metadata: dict[str, str]) -> str:
    items = sorted((k, v) for k, v in metadata.items() if not k.startswith("checksum."))
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def _groups(keys) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split(".", 1)[0], []).append(key)
    return groups


def save_checkpoint(path: Path, config: TrainConfig, step: int, epoch: int, tensors: dict[str, torch.Tensor], **extra: str) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over `path`.

    The metadata carries a SHA-256 per tensor group and one over the metadata itself.
    """
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "gancli_version": __version__,
        "config": config.to_json(),
        "step": str(step),
        "epoch": str(epoch),
        **extra,
    }
    for group, keys in _groups(tensors).items():
        metadata[f"checksum.{group}"] = _digest(tensors, keys)
    metadata["checksum.metadata"] = _metadata_digest(metadata)
    blob = save(tensors, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a gancli checkpoint; a GancliError names the file and the problem otherwise."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise GancliError(f"Checkpoint '{path}' does not exist.")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as exc:
        raise GancliError(f"'{path}' is not a readable safetensors file ({_first_line(exc)}); it may be truncated or corrupt.") from exc
    _check_format(path, metadata)
    if "checksum.metadata" in metadata and metadata["checksum.metadata"] != _metadata_digest(metadata):
        raise GancliError(f"'{path}' is damaged: its metadata does not match its checksum.")
    return metadata


def _check_format(path: Path, metadata: dict[str, str]) -> None:
    fmt = metadata.get("format", "")
    if not fmt.startswith("gancli/"):
        raise GancliError(f"'{path}' is a safetensors file but not a gancli checkpoint (no 'format: gancli/N' metadata).")
    try:
        version = int(fmt.split("/", 1)[1])
    except ValueError:
        raise GancliError(f"'{path}' has an unreadable format tag '{fmt}'.") from None
    if version > FORMAT_VERSION:
        raise GancliError(
            f"'{path}' was written by a newer gancli ({metadata.get('gancli_version', '?')}, format {fmt}); "
            f"upgrade gancli (this is {__version__}) to load it."
        )
    if "config" not in metadata:
        raise GancliError(f"'{path}' lacks the 'config' metadata key; it was not written by gancli train.")


def read_header(path: Path) -> Header:
    """The config, kind and step of a checkpoint, without loading its tensors."""
    path = Path(path)
    metadata = read_metadata(path)
    try:
        config = TrainConfig.from_dict(json.loads(metadata["config"]))
        step = int(metadata.get("step", 0))
    except (ValueError, TypeError, AttributeError) as exc:
        raise GancliError(f"'{path}' has unreadable 'config' metadata ({_first_line(exc)}).") from exc
    from gancli.models import ARCHITECTURES

    if config.arch not in ARCHITECTURES:
        raise GancliError(f"'{path}' holds an architecture this gancli does not know ({config.arch!r}); upgrade gancli to load it.")
    return Header(path, config, step, metadata)


def load_checkpoint(path: Path, prefixes: tuple[str, ...] | None = None, map_location: str = "cpu") -> Checkpoint:
    """Load a checkpoint; with `prefixes`, only the tensors of those groups (e.g. ("generator",))."""
    from safetensors import safe_open

    header = read_header(path)
    path, metadata, config, step = header.path, header.metadata, header.config, header.step
    try:
        epoch = int(metadata.get("epoch", 0))
    except ValueError as exc:
        raise GancliError(f"'{path}' has unreadable 'epoch' metadata ({_first_line(exc)}).") from exc
    tensors = {}
    try:
        with safe_open(str(path), framework="pt", device=map_location) as f:
            for key in f.keys():
                if prefixes is None or key.split(".", 1)[0] in prefixes:
                    tensors[key] = f.get_tensor(key)
    except Exception as exc:
        raise GancliError(f"'{path}' is damaged: a tensor could not be read ({_first_line(exc)}).") from exc
    for group, keys in _groups(tensors).items():
        expected = metadata.get(f"checksum.{group}")
        if expected is not None and expected != _digest(tensors, keys):
            raise GancliError(f"'{path}' is damaged: the {group} tensors do not match their checksum; use another checkpoint.")
    return Checkpoint(path, config, step, epoch, tensors, metadata)


def load_state(module: torch.nn.Module, checkpoint: Checkpoint, prefix: str) -> None:
    """Load the `prefix.*` tensors into `module`, naming the file and key when they do not fit."""
    state = checkpoint.group(prefix)
    from torch.optim.swa_utils import AveragedModel

    if prefix == "generator_ema" and not isinstance(module, AveragedModel):
        # saved as torch.optim.swa_utils.AveragedModel (module.* plus n_averaged); a bare generator takes module.*
        state = {k[len("module.") :]: v for k, v in state.items() if k.startswith("module.")}
    if not state:
        raise GancliError(f"'{checkpoint.path}' has no '{prefix}.*' tensors.")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise GancliError(f"'{checkpoint.path}': the {prefix} weights do not match its config ({_first_line(exc)}).") from exc


def _first_line(exc: BaseException) -> str:
    """The informative line of an exception: torch's state-dict errors put a bare heading first."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[1] if lines[0].endswith(":") and len(lines) > 1 else lines[0]


# --- optimiser state as tensors ----------------------------------------------------------------


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], str]:
    """Adam-style state as flat tensors `prefix.{param}.{name}`, plus its param_groups as JSON."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensors[f"{prefix}.{index}.{name}"] = torch.as_tensor(value)
    return tensors, json.dumps(state["param_groups"])


def load_optimizer(optimizer: torch.optim.Optimizer, checkpoint: Checkpoint, prefix: str) -> None:
    groups_json = checkpoint.metadata.get(f"{prefix}_param_groups")
    if groups_json is None:
        raise GancliError(f"'{checkpoint.path}' has no optimiser state for {prefix}; it cannot be resumed.")
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in checkpoint.group(prefix).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": json.loads(groups_json)})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise GancliError(f"'{checkpoint.path}': the {prefix} state does not fit the model ({_first_line(exc)}).") from exc
    # Saved tensors are contiguous; moments must share their parameter's memory layout (channels_last
    # convolutions), as freshly created ones do, or the resumed run's arithmetic differs.
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


# --- training state: every module, optimiser and random stream of a task -----------------------


def save_training_state(path: Path, task, config: TrainConfig, step: int, epoch: int, device_type: str, **extra: str) -> None:
    """A checkpoint that resumes `task` exactly: its modules, optimisers and random streams."""
    tensors = {f"{name}.{k}": v for name, module in task.modules.items() for k, v in module.state_dict().items()}
    groups = {}
    for name, optimizer in task.optimizers.items():
        state, groups[f"{name}_param_groups"] = optimizer_tensors(optimizer, name)
        tensors |= state
    tensors |= {f"rng.{name}": state for name, state in task.rng_state().items()}
    save_checkpoint(path, config, step, epoch, tensors, **groups, noise_device=device_type, **extra)


def restore_training_state(checkpoint: Checkpoint, task, device_type: str, notices: list[str]) -> tuple[int, float]:
    """Load `task`'s modules, optimisers and random streams; returns (step, seconds trained so far)."""
    for name, module in task.modules.items():
        load_state(module, checkpoint, name)
    for name, optimizer in task.optimizers.items():
        load_optimizer(optimizer, checkpoint, name)
    saved_on = checkpoint.metadata.get("noise_device", "?")
    state = checkpoint.group("rng") if saved_on == device_type else None  # RNG states do not carry across device types
    if not task.set_rng_state(state or None, checkpoint.step):
        notices.append(f"Resumed on {device_type}, saved on {saved_on}: the noise stream differs from an uninterrupted run.")
    try:
        return checkpoint.step, float(checkpoint.metadata.get("seconds", 0.0))
    except ValueError:
        return checkpoint.step, 0.0

