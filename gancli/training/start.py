"""Starting a run from `gancli train`'s options (or gancli.train()'s): plan it, then train it here or in N processes."""

from __future__ import annotations

from enum import Enum

from gancli.config import FLAGS, OPTIONS, TrainConfig

# The options of a run that are not TrainConfig fields: where it goes and how it runs, not what it learns.
RUN_OPTIONS = dict(outdir=None, resume=None, recipe=None, device="auto", time_limit=None, compile=False, memory_budget=None, threads=None,
                   tensorboard=False)  # fmt: skip


def train_options() -> dict:
    """Every option of `gancli train` with its default, by parameter name: the table's flags, then the run's own."""
    defaults = {}
    for name in FLAGS:
        spec = OPTIONS[name]
        default = TrainConfig.__dataclass_fields__[name].default
        defaults[name] = None if spec.unset or spec.argument else False if spec.switch else default
    return defaults | RUN_OPTIONS


def start(options: dict, given: set[str], reporter=None):
    """Plan the run (every usage error before any work), then train it; the TrainingResult."""
    from gancli.data.mapped import parse_size
    from gancli.training.loop import train
    from gancli.training.plan import plan_training

    options = {k: v.value if isinstance(v, Enum) else v for k, v in options.items()}
    config, run_dir, checkpoint, notices = plan_training(options, given)
    budget = options["memory_budget"]
    budget = parse_size(budget) if isinstance(budget, str) else budget
    log = None
    if options["tensorboard"]:
        from gancli.training.reports import SilentReporter
        from gancli.training.tensorboard import TensorBoardLog, check_folder

        check_folder(run_dir)
        reporter = log = TensorBoardLog(reporter or SilentReporter())
    minutes = options["time_limit"]
    try:
        return train(config, run_dir, options["device"], reporter, checkpoint, options["compile"], minutes * 60 if minutes else None,
                     notices=notices, memory_budget=budget, threads=options["threads"])  # fmt: skip
    finally:
        if log is not None:
            log.close()


def launch_processes(options: dict, given: set[str], processes: int, force: bool, argv: list[str]) -> int:
    """`--processes N`: check the count and the plan once (usage errors said once), then start N copies of the command."""
    from gancli.store.runs import RunLock
    from gancli.training.distributed import check_process_count, launch
    from gancli.training.plan import plan_training

    options = {k: v.value if isinstance(v, Enum) else v for k, v in options.items()}
    check_process_count(processes, options["device"], force)
    _config, run_dir, _checkpoint, _notices = plan_training(options, given)
    RunLock(run_dir).check_free()
    return launch(processes, argv)
