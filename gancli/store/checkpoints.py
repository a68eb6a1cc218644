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
from dataclasses import dataclass
from pathlib import Path

import torch

from gancli import __version__
from gancli.config import TrainConfig
from gancli.errors import GancliError, UsageError
from gancli.store.files import replaced

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
        return max(1, _count(self.path, self.metadata, "processes")) if "processes" in self.metadata else 1

    @property
    def seconds(self) -> float:
        """Training time so far, in seconds."""
        value = self.score("seconds")
        if value is not None and not 0 <= value < 1e12:  # nan fails too
            raise GancliError(f"'{self.path}' has invalid 'seconds' metadata ({value}); it is damaged or was not written by gancli.")
        return value or 0.0

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
    with replaced(path, "checkpoint", sync_folder=True) as tmp:
        tmp.write_bytes(blob)


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a gancli checkpoint; a GancliError names the file and the problem otherwise."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"'{path}' is a folder without checkpoints/last.safetensors; give a .safetensors file or a run directory.")
    if path.exists() and not path.is_file():
        raise UsageError(f"'{path}' is not a file (a device or a pipe); give a .safetensors checkpoint or a run directory.")
    if not path.is_file():
        raise UsageError(f"Checkpoint '{path}' does not exist; give a .safetensors file or a run directory.")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as exc:
        raise GancliError(f"'{path}' is not a readable safetensors file ({_first_line(exc)}); it may be truncated or corrupt.") from exc
    _check_format(path, metadata)
    # Every gancli/1 file carries this checksum (v0.1.0 included): a missing one means a renamed key.
    if metadata.get("checksum.metadata") != _metadata_digest(metadata):
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
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise GancliError(f"'{path}' has invalid 'config' metadata: {_first_line(exc)}. It is damaged or was not written by gancli.") from exc
    step = _count(path, metadata, "step")
    from gancli.models import ARCHITECTURES

    if config.arch not in ARCHITECTURES:
        raise GancliError(f"'{path}' holds an architecture this gancli does not know ({config.arch!r}); upgrade gancli to load it.")
    return Header(path, config, step, metadata)


def _count(path: Path, metadata: dict[str, str], key: str) -> int:
    """A whole number >= 0 stored as metadata `key` (0 when absent)."""
    value = metadata.get(key, "0")
    if not (value.isascii() and value.isdigit()) or int(value) > 10**12:
        raise GancliError(f"'{path}' has invalid '{key}' metadata ({value[:40]!r}); expected a whole number >= 0. It is damaged or was not written by gancli.")
    return int(value)


def load_checkpoint(path: Path, prefixes: tuple[str, ...] | None = None, map_location: str = "cpu") -> Checkpoint:
    """Load a checkpoint; with `prefixes`, only the tensors of those groups (e.g. ("generator",))."""
    from safetensors import safe_open

    header = read_header(path)
    path, metadata, config, step = header.path, header.metadata, header.config, header.step
    epoch = _count(path, metadata, "epoch")
    tensors = {}
    try:
        with safe_open(str(path), framework="pt", device=map_location) as f:
            for key in f.keys():
                if prefixes is None or key.split(".", 1)[0] in prefixes:
                    tensors[key] = f.get_tensor(key)
    except Exception as exc:
        raise GancliError(f"'{path}' is damaged: a tensor could not be read ({_first_line(exc)}).") from exc
    for group, keys in _groups(tensors).items():
        if metadata.get(f"checksum.{group}") != _digest(tensors, keys):
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
    try:
        for key, value in checkpoint.group(prefix).items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        groups = json.loads(groups_json)
        _check_param_groups(groups)
        groups = _as_written(groups, optimizer)
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        params = {i: p for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}
        for index, values in state.items():
            for name, value in values.items():
                if value.dim() and value.shape != params[index].shape:
                    raise ValueError(f"{prefix}.{index}.{name} has shape {tuple(value.shape)}, its parameter {tuple(params[index].shape)}")
    except (ValueError, KeyError, RuntimeError, TypeError, IndexError) as exc:
        raise GancliError(f"'{checkpoint.path}': the {prefix} state does not fit the model ({_first_line(exc)}).") from exc
    # Saved tensors are contiguous; moments must share their parameter's memory layout (channels_last
    # convolutions), as freshly created ones do, or the resumed run's arithmetic differs.
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


_NUMBERS = ("lr", "betas", "eps", "weight_decay", "params")  # what a checkpoint's optimiser state may set; the rest is gancli's


def _as_written(groups: list[dict], optimizer: torch.optim.Optimizer) -> list[dict]:
    """The stored groups with every setting besides the numbers taken from the optimiser gancli built: a file
    cannot switch on maximize, amsgrad or differentiable, which gancli never writes as true."""
    fresh = optimizer.state_dict()["param_groups"]
    if len(groups) != len(fresh):
        raise ValueError(f"{len(groups)} parameter groups, the model has {len(fresh)}")
    out = []
    for group, built in zip(groups, fresh):
        for key, value in group.items():
            if key not in _NUMBERS and key in built and value != built[key] and key in ("maximize", "amsgrad", "differentiable", "nesterov"):
                raise ValueError(f"{key} is {value!r}, which gancli never writes")
        out.append(built | {k: group[k] for k in _NUMBERS if k in group})
    return out


def _check_param_groups(groups) -> None:
    """Optimiser hyperparameters from a file: numbers where numbers belong, in range."""
    import math

    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ValueError("param_groups is not a list of objects")
    for group in groups:
        for key, value in group.items():
            if key in ("lr", "eps", "weight_decay") and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0):
                raise ValueError(f"{key} is {value!r}")
            if key == "betas" and not (isinstance(value, list) and len(value) == 2 and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in value)):
                raise ValueError(f"betas is {value!r}")
            if key == "params" and not (isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in value)):
                raise ValueError("params is not a list of indices")


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
        for group in optimizer.param_groups:  # the run's (possibly changed) --lr-g/--lr-d/--beta1/--beta2
            group.update(task.hyperparameters.get(name, {}))
    saved_on = checkpoint.metadata.get("noise_device", "?")
    state = checkpoint.group("rng") if saved_on == device_type else None  # RNG states do not carry across device types
    try:
        restored = task.set_rng_state(state or None, checkpoint.step)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise GancliError(f"'{checkpoint.path}' has an invalid random-number state ({_first_line(exc)}); it is damaged.") from exc
    if not restored:
        notices.append(f"Resumed on {device_type}, saved on {saved_on}: the noise stream differs from an uninterrupted run.")
    return checkpoint.step, checkpoint.seconds

