"""Training tasks: what the loop trains. An architecture's registry entry names its task module here.

    gan         G and D in turn (every GAN architecture)      gancli/tasks/gan.py
    upscaler    low-res -> high-res (srcnn, upgan)             gancli/tasks/upscaler.py
    classifier  the dataset classifier behind `gancli eval`   gancli/tasks/classifier.py

A task module defines one subclass of tasks.base.Task; make_task() finds it.
"""

from __future__ import annotations

import importlib

from gancli.models import get_architecture


def make_task(config, dataset, device):
    """The task that trains config.arch, built for `dataset` on `device`."""
    from gancli.training.tasks.base import Task

    module = importlib.import_module(get_architecture(config.arch).task_module)
    (cls,) = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, Task) and c is not Task and c.__module__ == module.__name__]
    return cls(config, dataset, device)
