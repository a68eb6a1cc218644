"""torchrun: two CPU processes with gloo train one model; rank 0 writes a plain checkpoint."""

import os
import subprocess
import sys

import torch

from gancli.store import checkpoints
from gancli.training.distributed import Cluster, shard

import pytest

pytestmark = pytest.mark.slow  # subprocesses: run by the full suite, not the fast tier


def test_ranks_draw_disjoint_batches_that_cover_the_order():
    order = torch.randperm(100)
    for position in range(3):
        batches = [shard(order, position, 8, Cluster(rank, 2, rank)) for rank in range(2)]
        assert all(len(b) == 8 for b in batches)
        assert set(batches[0].tolist()).isdisjoint(batches[1].tolist())
    seen = torch.cat([shard(order, p, 10, Cluster(r, 2, r)) for p in range(5) for r in range(2)])
    assert sorted(seen.tolist()) == list(range(100))
    assert torch.equal(shard(order, 2, 8, Cluster()), order[16:24])  # one process: the plain batch


def torchrun(*args, cwd, processes=2):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m", "gancli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_two_gloo_processes_train_one_model(isolated, cli):
    common = ["--arch", "gan", "--steps", "4", "--sample-every", "2", "--batch-size", "16", "--device", "cpu"]
    done = torchrun("train", "mnist", *common, "--out", "ddp", cwd=isolated)
    assert done.returncode == 0, done.stderr[:3000] + done.stderr[-2000:]
    assert done.stdout.count("Trained to step 4/4") == 1  # rank 0 alone reports
    assert "x 2 processes (DDP)" in done.stderr
    assert "batch 16 per process x 2" in done.stderr
    rows = (isolated / "ddp" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "2", "4"]  # one writer: no duplicated rows

    ddp = checkpoints.load_checkpoint(isolated / "ddp" / "checkpoints" / "last.safetensors")
    assert ddp.step == 4 and ddp.metadata["processes"] == "2"
    assert cli("train", "mnist", *common, "--out", "single").code == 0
    single = checkpoints.load_checkpoint(isolated / "single" / "checkpoints" / "last.safetensors")
    assert single.metadata["processes"] == "1"
    # same seed and steps: the weights differ only because rank 1's batches entered the averaged gradients
    key = next(k for k in ddp.tensors if k.startswith("generator.") and k.endswith("weight"))
    assert not torch.allclose(ddp.tensors[key], single.tensors[key])

    # the result is an ordinary checkpoint: it samples and resumes in a single process
    assert cli("sample", "--checkpoint", "ddp", "--n", "4", "--seed", "1", "--out", "s.png").code == 0
    resumed = cli("train", "--resume", "ddp", "--steps", "6")
    assert resumed.code == 0, resumed.err
    assert "Resumed with 1 process(es), saved with 2" in resumed.err


def test_processes_flag_reports_a_failure_once_without_torchruns_traceback(isolated):
    """gancli train --processes 2 starts the processes itself: each failure is said in one line, torchrun's report is not."""
    done = subprocess.run([sys.executable, "-m", "gancli", "train", "--resume", "nowhere", "--processes", "2"],
                          cwd=isolated, capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("Error:") == 1 and "does not exist" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "ChildFailedError" not in done.stderr and "FAILED" not in done.stderr, done.stderr


def test_ctrl_c_under_processes_saves_and_exits_130(isolated, image_folder):
    """Ctrl-C reaches the launcher and both processes: they save and say how to resume; the launcher adds no bug report.

    The folder is over its memory budget, so both processes also read their batches from one cache file."""
    import signal
    import time

    tiny = ["--arch", "dcgan", "--image-size", "28", "--latent-dim", "8", "--generator-width", "8", "--discriminator-width", "8"]
    command = [sys.executable, "-m", "gancli", "train", str(image_folder), *tiny, "--steps", "100000", "--sample-every", "20",
               "--batch-size", "4", "--device", "cpu", "--memory-budget", "4K", "--processes", "2", "--out", "run"]  # fmt: skip
    process = subprocess.Popen(command, cwd=isolated, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not (isolated / "run" / "checkpoints" / "last.safetensors").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "Stopped by SIGINT" in out and "bug" not in err and "Traceback" not in err, err[-2000:]
    assert checkpoints.load_checkpoint(isolated / "run" / "checkpoints" / "last.safetensors").step > 0
    assert "read from the cache file" in err and "x 2 processes (DDP)" in err, err[-2000:]
    assert len(list((isolated / "cache" / "data").iterdir())) == 1  # one file, decoded once and read by both processes
