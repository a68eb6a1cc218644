"""Typer options from gancli's declarations: `gancli train`'s flags from the one table of TrainConfig fields
(gancli.config), and the checks and metavars every command's options share, through Typer's public API."""

from __future__ import annotations

import inspect
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand

from gancli.config import FLAGS, OPTIONS, TrainConfig, field_type, flag
from gancli.models import ARCHITECTURES

BY_TYPE = {int: "N", float: "X", str: "TEXT", Path: "PATH"}  # the help's word for a value; choices show their list


def choices(name: str, *values: str) -> type[Enum]:
    """A str Enum of option values (Typer shows them as the choices): wgan-gp becomes member wgan_gp."""
    return Enum(name, {value.replace("-", "_"): value for value in values}, type=str)


def bounded(low=None, high=None):
    """A callback refusing values outside [low, high] as click refuses a bad value ("Invalid value for '--n': ...");
    the help shows a word (N), not a Python-style range, and the error states the range."""

    def check(value):
        if value is None or isinstance(value, list):
            for item in value or ():
                check(item)
            return value
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"from {low:,} to {high:,}" if low is not None and high is not None else f"at least {low:,}" if low is not None else f"at most {high:,}"
            raise typer.BadParameter(f"{value} is out of range; use a value {span}.")
        return value

    return check


def option(*names: str, help: str, low=None, high=None, metavar: str | None = None, kind=None, **more):
    """typer.Option with a readable metavar (N, X, PATH or the one given) and a range checked by `bounded`."""
    if metavar is None and kind is not None:
        metavar = BY_TYPE.get(kind)
    if low is not None or high is not None:
        more["callback"] = bounded(low, high)
    return typer.Option(*names, help=help, metavar=metavar, **more)


def switch(*names: str, help: str, show_default: bool = False, **more):
    """An on/off flag shown as one (--ema/--no-ema), without a type word; off unless given, so no default is shown
    (show_default=True for one that is on unless turned off)."""
    return typer.Option(*names, help=help, metavar="", show_default=show_default, **more)


Arch = choices("Arch", *ARCHITECTURES)  # the registry decides the choices, plugins included


def table_options(command):
    """Give `command` (which takes **options) one parameter per TrainConfig flag, in the table's order, before its own."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD]
    context = [p for p in own if p.name == "ctx"]
    rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p.name != "ctx"]
    command.__signature__ = inspect.Signature(context + [_parameter(name) for name in FLAGS] + rest)
    return command


def _parameter(name: str) -> inspect.Parameter:
    spec, default = OPTIONS[name], TrainConfig.__dataclass_fields__[name].default
    kind = {"int": int, "float": float, "str": str, "bool": bool}[field_type(name)]
    common = dict(help=spec.help, rich_help_panel=spec.panel if not spec.argument else None)
    if spec.argument:
        info, kind, default = typer.Argument(help=spec.help, show_default=False, metavar=flag(name)), Optional[str], None
    elif name == "arch":
        info, kind, default = typer.Option(**common), Arch, Arch(default)
    elif spec.choices:
        kind = choices(name.title().replace("_", ""), *spec.choices)
        info, default = typer.Option(**common), kind(default)
    elif spec.switch:
        info, kind, default = switch(f"{flag(name)}/--no-{flag(name)[2:]}", **common), bool, False
    else:
        kind = Path if spec.path else kind
        low = spec.flag_low if spec.flag_low is not None else None if spec.open else spec.low
        high = None if spec.open else spec.high
        info = option(**common, low=low, high=high, metavar=spec.metavar, kind=kind, show_default=not spec.unset)
        if spec.unset:
            kind, default = Optional[kind], None
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, info], default=default)


class FlagValues(TyperCommand):
    """A command whose choice options with a flag_value (gancli.config) may be typed alone: `--augment` is
    `--augment diff`, as the switch was before it had choices. Typer has no options with an optional value, so a bare
    one gets its value before parsing: when it is last, or the next word is not one of its choices."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        alone = {flag(name): spec for name, spec in OPTIONS.items() if spec.flag_value}
        filled: list[str] = []
        for i, word in enumerate(args):
            filled.append(word)
            if word == "--":
                filled += args[i + 1 :]
                break
            spec = alone.get(word)
            if spec is not None and (i + 1 == len(args) or args[i + 1].startswith("-") or _is_data(args[i + 1])):
                filled.append(spec.flag_value)
        return super().parse_args(ctx, filled)


def _is_data(word: str) -> bool:
    """A DATASET argument: a named dataset or a folder (not a misspelt value, which is refused with the choices)."""
    from gancli.data.datasets import NAMED_DATASETS, dataset_name

    return dataset_name(word) in NAMED_DATASETS or Path(word).exists()
