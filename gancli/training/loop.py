"""The training loop: batches, the schedule of metrics rows, sample grids and checkpoints, signals,
the time limit and torchrun. It knows no task and no architecture by name: what it trains is a
gancli.training.tasks.base.Task, chosen by the registry.

train() prints nothing: a reporter (the Rich display in the CLI) is told about progress.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import torch

from gancli.store import checkpoints
from gancli.training import distributed
from gancli.config import SHORT_RUN_STEPS, TrainConfig
from gancli.training.plan import fit_to_data, training_length
from gancli.data.datasets import check_resumed_folder, is_named_dataset, load_dataset
from gancli.device import compiler, cpu_threads, resolve_device
from gancli.errors import GancliError, Interrupted, UsageError
from gancli.models import check_model_size, get_architecture
from gancli.store.files import refuse_links, remove_orphans, write_text
from gancli.data.mapped import default_budget
from gancli.training.reports import Reporter, SilentReporter, TrainingPlan, TrainingProgress, TrainingResult
from gancli.store.runs import MetricsLog, Run, RunLock
from gancli.training.signals import stop_requests
from gancli.training.tasks import make_task
from gancli.training.visuals import write_training_visuals

DISPLAY_INTERVAL_S = 0.25
STOP_CHECK_STEPS = 8  # under torchrun, ranks compare stop requests every this many steps (a collective)
TIME_LIMIT = "time limit"


def epoch_order(num_images: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: a function of (seed, epoch) alone, so resuming needs no state."""
    return torch.randperm(num_images, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


# --- the run -----------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    run_dir: Path,
    device: str = "auto",
    reporter: Reporter | None = None,
    resume: checkpoints.Checkpoint | None = None,
    compile: bool = False,
    time_limit: float | None = None,
    clock=time.perf_counter,
    notices: list[str] = (),
    memory_budget: int | None = None,
    threads: int | None = None,
) -> TrainingResult:
    """Train (or, given `resume`, continue) a run in `run_dir`; returns where things were written.

    Under torchrun every rank calls this; rank 0 alone writes files and tells the reporter.
    `compile` runs the training forwards through torch.compile. `time_limit` (seconds of `clock`,
    wall time by default; benchmarks pass time.process_time) ends the run early, saved as usual.
    A folder larger than `memory_budget` bytes (default: gancli.data.mapped.default_budget) is read by batch.
    """
    cluster = distributed.cluster_from_env()
    reporter = reporter if reporter is not None and cluster.is_main else SilentReporter()
    dev = resolve_device(device)
    count, why = cpu_threads(threads)
    torch.set_num_threads(count)  # the same bytes need the same count: float sums are split by thread
    thread_text = f"{count} CPU thread{'s' if count != 1 else ''} ({why})"
    arch = get_architecture(config.arch)
    if cluster.distributed and not arch.kind_of.processes:
        raise UsageError(f"--arch {config.arch} trains in one process; run it without torchrun.")
    budget = default_budget(dev) if memory_budget is None else memory_budget
    if resume is not None and not is_named_dataset(config.dataset):
        check_resumed_folder(Path(config.dataset), tuple(config.class_names))  # before decoding a folder a file named
    dataset = load_dataset(config.dataset, config.image_size, Path(config.data_dir) if config.data_dir else None, memory_budget=budget,
                           progress=getattr(reporter, "work", None))  # fmt: skip
    config, data_notices = fit_to_data(config, dataset, resumed=resume is not None)
    notices = [*notices, *data_notices]
    if resume is not None and dataset.fingerprint and resume.metadata.get("data_fingerprint", dataset.fingerprint) != dataset.fingerprint:
        notices.append(f"The images in '{config.dataset}' changed since {resume.path.name} was saved (files added, removed or rewritten; "
                       f"{len(dataset):,} now): the run continues on the changed data.")  # fmt: skip
    check_model_size(config)
    total, length_note = training_length(config, len(dataset) // max(1, config.batch_size * cluster.world_size))
    if resume is None and length_note:
        notices.append(length_note)
    elif resume is None and total < SHORT_RUN_STEPS and arch.kind_of.short_run_note:
        notices.append(f"{total} steps is a short run: expect noise or blobs, not pictures (the quick start, --recipe quick, takes 2,000).")
    config = arch.prepare(config, total, notices)
    if cluster.distributed:
        dev = distributed.start(cluster, dev)
    try:
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
        torch.manual_seed(config.seed)  # model initialisation, the same on every rank
        task = make_task(config, dataset, dev)
        if resume is None and config.init:  # --init: another run's weights, before the first step
            notices = [*notices, *task.start_from(checkpoints.load_checkpoint(Path(config.init), ("generator", "discriminator")))]
        loop = Loop(config, Run(Path(run_dir)), task, dev, cluster, notices + task.notices, dataset.description, dataset.fingerprint)
        loop.thread_text = thread_text
        result = loop.run(reporter, resume, compile, time_limit, clock)
        distributed.finish(cluster)  # ranks leave together: rank 0 may still be writing files
        return result
    finally:
        distributed.stop()


class Loop:
    """One run of a task: the step loop with its rows (metrics, grid, last checkpoint) and periodic checkpoints."""

    def __init__(self, config, run: Run, task, dev, cluster, notices: list[str], data_description: str, data_fingerprint: str = ""):
        self.config, self.run_files, self.task, self.dev, self.cluster = config, run, task, dev, cluster
        self.notices, self.data_description, self.data_fingerprint = notices, data_description, data_fingerprint
        self.thread_text = ""
        self.writes = cluster.is_main
        self.images_per_step = config.batch_size * cluster.world_size
        if self.images_per_step > task.train_count:
            raise UsageError(
                f"{cluster.world_size} processes x --batch-size {config.batch_size} need {self.images_per_step} images per step, "
                f"but the data has {task.train_count}; use a smaller --batch-size or fewer processes."
            )
        self.steps_per_epoch = max(1, task.train_count // self.images_per_step)
        self.total_steps = training_length(config, self.steps_per_epoch)[0]
        # Metrics rows four times as often as grids when grids are 100+ steps apart: points for metrics.png.
        self.metrics_every = config.sample_every // 4 if config.sample_every >= 100 and config.sample_every % 4 == 0 else config.sample_every
        self.checked_step = -1  # _check_weights: rows save up to three files, one scan does
        self.last_good: Path | None = None  # the newest checkpoint written whole: what a failure leaves
        self.last_scores: dict[str, float | None] = {}  # the latest held-out scores, stored in checkpoints written after them
        metric, direction = task.best_metric or (None, "max")
        self.best_metric, self.sign = metric, (1 if direction == "max" else -1)  # compared as sign * value: higher is better

    def run(self, reporter: Reporter, resume, compile: bool, time_limit: float | None, clock) -> TrainingResult:
        task, config, cluster, files = self.task, self.config, self.cluster, self.run_files
        start_step, seconds_before = 0, 0.0
        if compile:  # inductor picks its own layouts, and its replication-pad backward fails on channels_last (torch 2.14)
            for module in task.modules.values():
                module.to(memory_format=torch.contiguous_format)
        if resume is not None:
            start_step, seconds_before = self._resume(resume)
        task.seed_rank(cluster.rank, start_step)
        task.steps_taken = start_step
        if cluster.distributed:
            task.wrap(lambda module: distributed.replicate(module, self.dev))
        if compile:
            task.wrap(compiler(), double_backward=False)
        stats = task.stats + task.scores
        with RunLock(files.root) if self.writes else contextlib.nullcontext():
            if self.writes:
                refuse_links([files.config, files.metrics, files.metrics_plot, files.progress_gif, files.samples, files.checkpoints, files.last])
                remove_orphans(files.root, legacy=True)  # temporary files of a run killed mid-write
                write_text(files.config, config.to_json() + "\n")
                self.metrics = MetricsLog(files.metrics, ("step", "epoch", *(s.name for s in stats), "images_per_s", "seconds"), start_step)
            try:
                self._run(reporter, resume, start_step, seconds_before, stats, time_limit, clock)
            except KeyboardInterrupt:  # a second Ctrl-C: no more saving, but say what is on disk
                raise Interrupted(f"Stopped at once by a second Ctrl-C. {self._saved()}") from None
        return self.result

    def _saved(self) -> str:
        if self.last_good is None or not self.last_good.is_file():
            return f"No checkpoint was saved in this run; the same command starts it again in '{self.run_files.root}'."
        return f"The last checkpoint saved is {self.last_good} (step {checkpoints.read_header(self.last_good).step}): gancli train --resume {self.run_files.root}"

    def _run(self, reporter: Reporter, resume, start_step: int, seconds_before: float, stats, time_limit, clock) -> None:
        config, cluster, files = self.config, self.cluster, self.run_files
        device_text = str(self.dev) if not cluster.distributed else f"{self.dev.type} x {cluster.world_size} processes (DDP)"
        device_text += f", {self.thread_text}" if self.dev.type == "cpu" else ""
        reporter.start(TrainingPlan(config, files.root, device_text, self.data_description, self.notices, start_step, self.total_steps,
                                    self.steps_per_epoch, cluster.world_size, stats, time_limit))  # fmt: skip
        kind = get_architecture(config.arch).kind
        self.result = TrainingResult(files.root, files.last, start_step, self.total_steps, seconds_before, kind, stats, dataset=config.dataset,
                                     seconds_before=seconds_before)  # fmt: skip
        self.best = self._best_so_far() if resume is not None and self.writes else -math.inf
        self.last_good = files.last if resume is not None and files.last.is_file() else None  # what a failure leaves intact
        self.reporter = reporter
        self._steps(reporter, start_step, seconds_before, time_limit, clock)
        if self.writes:
            write_training_visuals(files, stats)

    def _steps(self, reporter: Reporter, step: int, seconds_before: float, time_limit: float | None, clock) -> None:
        task, config, cluster, result = self.task, self.config, self.cluster, self.result
        names = tuple(s.name for s in task.stats)
        row_sum = torch.zeros(len(names), device=self.dev)
        shown_sum = torch.zeros_like(row_sum)
        row_steps = shown_steps = 0
        started = row_started = shown_at = time.perf_counter()
        order, order_epoch = None, -1
        stopping: str | None = None
        clock_started = clock()
        with stop_requests() as stop:
            while step < self.total_steps:
                epoch, position = divmod(step, self.steps_per_epoch)
                if epoch != order_epoch:
                    order, order_epoch = epoch_order(task.train_count, config.seed, epoch).to(self.dev), epoch
                stats = task.step(distributed.shard(order, position, config.batch_size, cluster))
                step += 1
                row_sum += stats
                shown_sum += stats
                row_steps += 1
                shown_steps += 1
                now = time.perf_counter()
                result.seconds = seconds_before + (now - started)
                reason = stop.requested or (TIME_LIMIT if time_limit and clock() - clock_started >= time_limit else None)
                if not cluster.distributed:
                    stopping = reason
                elif step % STOP_CHECK_STEPS == 0 or step == self.total_steps:  # ranks agree when to stop
                    stopping = distributed.most_urgent(reason, (TIME_LIMIT, "SIGTERM", "SIGINT"), cluster, self.dev)
                final = step == self.total_steps or bool(stopping)
                eval_due = bool(config.eval_every) and (step % config.eval_every == 0 or final)
                at_row = step % config.sample_every == 0 or final or eval_due  # grid, last.safetensors and a metrics row
                at_metrics = at_row or step % self.metrics_every == 0  # a metrics row alone: cheap, so plots get points
                if self.writes and at_row:  # the costly held-out scores: at rows only
                    task.measure(step, final=final)
                if self.writes and (at_row or now - shown_at >= DISPLAY_INTERVAL_S):
                    means = (shown_sum / shown_steps).tolist()
                    if not all(math.isfinite(v) for v in means):
                        raise GancliError(f"Training diverged at step {step}: the losses are not finite. {self._kept()}")
                    self.last_scores = task.latest()
                    speed = shown_steps * self.images_per_step / max(now - shown_at, 1e-9)
                    shown = dict(zip(names, means)) | self.last_scores
                    if not final:  # the last frame shows the last metrics row: the same numbers as the summary
                        reporter.update(TrainingProgress(step, self.total_steps, step / self.steps_per_epoch, shown, speed, result.seconds))
                    shown_sum.zero_()
                    shown_steps, shown_at = 0, now
                if at_metrics:
                    row = dict(zip(names, distributed.mean_over_ranks(row_sum / row_steps, cluster).tolist()))
                    row.update(images_per_s=row_steps * self.images_per_step / max(now - row_started, 1e-9))
                    self._row(step, row, eval_due, sample=at_row)
                    if final and self.writes:
                        result.row_steps = row_steps
                        reporter.update(TrainingProgress(step, self.total_steps, step / self.steps_per_epoch, row | self.last_scores,
                                                         row["images_per_s"], result.seconds))  # fmt: skip
                    row_sum.zero_()
                    row_steps, row_started = 0, time.perf_counter()
                if self.writes and step % config.checkpoint_every == 0:
                    self._save(self.run_files.periodic(step), step)
                    self.run_files.prune_periodic(config.keep)
                if stopping:
                    result.interrupted = stopping if stopping != TIME_LIMIT else None
                    result.time_limited = stopping == TIME_LIMIT
                    break

    def _row(self, step: int, row: dict, eval_due: bool, sample: bool = True) -> None:
        """A metrics row; with `sample`, also the sample grid and last.safetensors (best.safetensors when the metric improved)."""
        row = row | self.last_scores | {"step": step, "epoch": round(step / self.steps_per_epoch, 3), "seconds": self.result.seconds}
        if not sample:
            if self.writes:
                self.metrics.append(row)
                self.reporter.row(step, row, None)
            return
        self._check_weights(step)
        if self.writes:
            self.metrics.append(row)
            self.result.last_row = row
            self.result.last_sample = self.run_files.sample(step)
            self.task.preview(self.result.last_sample)
            self.reporter.row(step, row, self.result.last_sample)
            self._save(self.result.checkpoint, step)
            value = self.last_scores.get(self.best_metric)
            if value is not None and (eval_due or not self.config.eval_every) and self.sign * value > self.best:
                self.best = self.sign * value
                self._save(self.run_files.best, step)
        self.result.step = step

    def _save(self, path: Path, step: int) -> None:
        """Write a checkpoint: never one with non-finite weights, and on a failed write say what is intact."""
        self._check_weights(step)
        scores = {k.lower(): f"{v:.6f}" for k, v in self.last_scores.items() if v is not None}
        if self.data_fingerprint:
            scores["data_fingerprint"] = self.data_fingerprint
        try:
            checkpoints.save_training_state(
                path, self.task, self.config, step, step // self.steps_per_epoch, self.dev.type, seconds=f"{self.result.seconds:.3f}",
                dataset_description=self.data_description, processes=str(self.cluster.world_size), **scores,
            )  # fmt: skip
        except OSError as exc:
            raise GancliError(f"Cannot write '{path}' at step {step} ({exc.strerror or exc}). {self._kept(diverged=False)} Free some space first.") from exc
        if path == self.run_files.last or self.last_good is None:
            self.last_good = path

    def _kept(self, diverged: bool = True) -> str:
        """Which checkpoint survives a failure, and how to go on from it (a lower rate only helps a run that diverged)."""
        advice = " or try a lower --lr-g/--lr-d" if diverged else ""
        if self.last_good is None or not self.last_good.is_file():
            again = f"the same command starts the run again in '{self.run_files.root}'"
            return f"No checkpoint was saved yet; {again}{' (try a lower --lr-g/--lr-d or another --seed)' if diverged else ''}."
        return f"The last good checkpoint is {self.last_good}: resume with gancli train --resume {self.last_good}{advice}."

    def _check_weights(self, step: int) -> None:
        """Refuse to save non-finite weights: they would overwrite the last good checkpoint. Once per step."""
        if self.checked_step == step:
            return
        self.checked_step = step
        for name, module in self.task.modules.items():
            for tensor in module.state_dict().values():
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    raise GancliError(f"Training diverged at step {step}: the {name} weights are not finite. {self._kept()}")

    def _resume(self, resume: checkpoints.Checkpoint) -> tuple[int, float]:
        start_step, seconds = checkpoints.restore_training_state(resume, self.task, self.dev.type, self.notices)
        self.notices.insert(0, f"Resuming {resume.path} from step {start_step}.")
        if start_step >= self.total_steps:
            raise UsageError(
                f"The run is already at step {start_step} of {self.total_steps}; pass a larger --steps or --epochs to train further."
            )
        saved_with = resume.processes
        if saved_with != self.cluster.world_size:
            self.notices.append(
                f"Resumed with {self.cluster.world_size} process(es), saved with {saved_with}: the data order differs from an uninterrupted run."
            )
        return start_step, seconds

    def _best_so_far(self) -> float:
        """sign * the metric stored in an existing best.safetensors, so a resumed run only replaces it when it does better."""
        if self.best_metric is None or not self.run_files.best.is_file():
            return -math.inf
        try:
            value = checkpoints.read_header(self.run_files.best).score(self.best_metric)
        except GancliError:
            return -math.inf
        return -math.inf if value is None else self.sign * value
