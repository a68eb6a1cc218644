"""Training under torchrun: one process per device, DistributedDataParallel, rank 0 writes.

`torchrun --nproc-per-node N -m gancli train ...` starts N copies of the command with RANK,
WORLD_SIZE and LOCAL_RANK set. Each copy trains a replica on its own share of every step's
data (--batch-size images per process); DDP averages the gradients, so the replicas stay equal
and the checkpoint is a plain single-model checkpoint. Rank 0 alone writes files and shows the
display. Without torchrun every function here is a no-op for a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gancli import device as devices


@dataclass(frozen=True)
class Cluster:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def cluster_from_env() -> Cluster:
    """The process's place in a torchrun job (a world of one when not launched by torchrun)."""
    env = os.environ
    return Cluster(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def launch(processes: int, args: list[str]) -> int:
    """Run `gancli ARGS` in `processes` local processes, as `torchrun --standalone --nproc-per-node` would.

    Returns the exit status of the first process that failed (0 when all succeed). Each process says
    its own errors in one line, so torchrun's failure report, a traceback, is not printed again.
    """
    import logging
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    for name in list(logging.root.manager.loggerDict):  # its notes on failed and closed processes: each said its own error
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if "OMP_NUM_THREADS" not in os.environ:  # the cores shared out, as torchrun does (it sets 1)
        os.environ["OMP_NUM_THREADS"] = str(max(1, devices.usable_cpus() // processes))
    os.environ[LAUNCHER] = str(os.getpid())  # the processes die with this one (die_with_launcher)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)  # fmt: skip
    try:
        elastic_launch(config, sys.executable)("-m", "gancli", *args)
    except ChildFailedError as exc:
        _rank, failure = exc.get_first_failure()
        code = failure.exitcode
        return code if code >= 0 else 128 - code  # killed by a signal: as a shell says it
    except SignalException as exc:  # Ctrl-C or a kill: the processes save and say how to resume; the launcher only stops
        return 128 + int(exc.sigval)
    return 0


LAUNCHER = "GANCLI_LAUNCHER_PID"




def die_with_launcher() -> None:
    """In a process `gancli train --processes` started: get SIGTERM (save and stop) when the launcher dies, even by
    SIGKILL, so no process trains on unseen holding the run's lock. Linux only (prctl); elsewhere nothing."""
    import ctypes
    import signal

    launcher = os.environ.get(LAUNCHER)
    if not launcher or "RANK" not in os.environ:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != launcher:  # the launcher died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def check_process_count(processes: int, device: str, force: bool) -> None:
    """Refuse more processes than this machine has GPUs (CUDA) or usable CPUs, unless --force."""
    from gancli.errors import UsageError

    if processes <= 1 or force:
        return
    import torch

    on_gpu = device in ("auto", "cuda") and torch.cuda.is_available()
    have = torch.cuda.device_count() if on_gpu else devices.usable_cpus()
    if processes > have:
        what = f"{have} GPU{'s' if have != 1 else ''}" if on_gpu else f"{have} usable CPU{'s' if have != 1 else ''}"
        raise UsageError(f"--processes {processes} is more than this machine's {what}; use --processes {have} or fewer (or add --force).")


def is_main_process() -> bool:
    return cluster_from_env().is_main


def start(cluster: Cluster, device):
    """Join the process group: NCCL between CUDA GPUs (one per local rank), gloo on CPUs.

    Returns the device this rank trains on.
    """
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", cluster.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def finish(cluster: Cluster) -> None:
    """Wait until every rank is done (after a successful run; a failed rank makes torchrun stop the rest)."""
    if cluster.distributed:
        import torch.distributed as dist

        dist.barrier()


def stop() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def replicate(module, device):
    """Wrap a module in DistributedDataParallel (it broadcasts rank 0's weights on creation)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def shard(order, position: int, batch_size: int, cluster: Cluster):
    """This rank's batch at `position` of an epoch: consecutive, disjoint slices of one shared order.

    Every rank draws the same epoch order; step p uses images [p*W*B, (p+1)*W*B) of it, rank r the
    r-th slice of B. With W = 1 this is the single-process batch.
    """
    start = (position * cluster.world_size + cluster.rank) * batch_size
    return order[start : start + batch_size]


def most_urgent(reason: str | None, reasons: tuple[str, ...], cluster: Cluster, device) -> str | None:
    """The latest entry of `reasons` that any rank holds, on every rank (a collective: every rank must call it).

    Used to agree on stopping: each rank may have seen a signal or its clock run out, or not.
    """
    if not cluster.distributed:
        return reason
    import torch
    import torch.distributed as dist

    value = torch.tensor([float(reasons.index(reason) + 1 if reason else 0)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    index = int(value.item())
    return reasons[index - 1] if index else None


def mean_over_ranks(tensor, cluster: Cluster):
    """The mean of a tensor over all ranks (a collective), e.g. the losses behind a metrics row."""
    if not cluster.distributed:
        return tensor
    import torch.distributed as dist

    total = tensor.clone()
    dist.all_reduce(total)
    return total / cluster.world_size
