"""Where and how the networks run: the device, bf16 autocast, fused Adam and torch.compile."""

from __future__ import annotations

import contextlib
import os

import torch

from gancli.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; explicit names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or --device auto.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps was asked for but Apple's MPS is not available; use --device cpu or --device auto.")
    if name not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {name} is unknown; use auto, cpu, cuda or mps.")
    return torch.device(name)


def adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with the fused implementation where this PyTorch has it for the device, else foreach."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()) and _cpu_has_bf16()
    return False


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


def precision_context(precision: str, device: torch.device):
    """A factory of autocast contexts for --precision: fp32 does nothing, bf16 autocasts forwards."""
    if precision == "fp32":
        return contextlib.nullcontext
    if not bf16_supported(device):
        raise UsageError(f"--precision bf16 needs bf16 hardware support, which this {device.type} lacks; use --precision fp32.")
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def compiler():
    """torch.compile with the backend in GANCLI_COMPILE_BACKEND (default inductor; tests use 'eager')."""
    backend = os.environ.get("GANCLI_COMPILE_BACKEND", "inductor")
    if backend == "inductor":
        import torch._inductor.config as inductor

        # inductor's own switch to channels_last breaks replication-pad backward (srcnn) in torch 2.14: a
        # stride assertion in the compiled backward. The modules' layout is gancli's choice (see training.py).
        inductor.layout_optimization = False
    return lambda module: torch.compile(module, backend=backend)


def cpu_threads(requested: int | None = None) -> tuple[int, str]:
    """(PyTorch threads for this process, why): --threads, else OMP_NUM_THREADS, else the usable CPUs less the load.

    On a busy machine PyTorch's default (every core) makes its threads wait on each other: at load 4.5 on
    2 cores, 150 steps took 32-42 s with 2 threads and 8-9 s with 1 (benchmarks/threads.py).
    """
    import os


    cpus = usable_cpus()
    if requested is not None:
        return requested, "--threads"
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    load = busy_others()
    if load is None:
        return cpus, "the usable CPUs"
    free = max(1, min(cpus, round(cpus - load)))
    return free, ("the usable CPUs" if free == cpus else f"{cpus} usable CPUs less the load of {load:.1f}")


def busy_others(samples: int = 5) -> float | None:
    """Processes running now besides this one: /proc/loadavg's runnable count, averaged over a few reads 10 ms
    apart (the 1-minute load lags a minute behind); the 1-minute load where /proc is missing; None if neither."""
    import os
    import time

    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            break
        if i + 1 < samples:
            time.sleep(0.01)
    if counts:
        return sum(counts) / len(counts)
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None

def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as taskset or a container sets it), not all the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
