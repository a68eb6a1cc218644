"""Help text people read: flags without a type, metavars such as N, PATH or RUN, no Python-style ranges.

Typer labels every option with its Python type (`<int range> [x>=1]`, `<bool>`); the values are
still checked (the error names the range), only the help shows a word instead.
"""

from __future__ import annotations

# Option parameter names whose value is best described by what it is, not by its type.
METAVARS = {
    "out": "PATH", "out_dir": "DIR", "checkpoint": "RUN", "resume": "RUN", "model": "RUN", "classifier": "RUN",
    "eval_classifier": "RUN", "upscale": "RUN", "time_limit": "MINUTES", "seeds": "SEEDS", "label": "CLASS",
    "labels": "CLASSES", "data_dir": "DIR", "benchmark": "DATA", "inception_weights": "FILE", "arch": "ARCH",
    "lr_g": "LR", "lr_d": "LR", "truncation": "PSI", "fps": "FPS", "seed": "SEED", "mix": "SEED", "video": "MP4",
    "gif": "GIF",
}  # fmt: skip
BY_TYPE = {"int": "N", "float": "X", "Path": "PATH", "str": "TEXT"}  # choices keep their <a|b> list


def make_readable(command) -> None:
    """Set readable metavars on every option of `command` and its subcommands (a click command)."""
    for sub in getattr(command, "commands", {}).values():
        make_readable(sub)
    help_option = command.get_help_option

    def readable_help_option(ctx):
        option = help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = readable_help_option
    for param in command.params:
        if getattr(param, "param_type_name", "") != "option":
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""  # a switch: --ema / --no-ema says it all
            param.show_default = param.default is not False  # off unless given: the help says what on does
        elif param.metavar is None:
            param.metavar = METAVARS.get(param.name) or BY_TYPE.get(param.bare_type())
        param._get_number_range_help_str = lambda: None  # "[x>=1]": the error message states the range instead
