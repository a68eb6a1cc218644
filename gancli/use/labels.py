"""Class labels on the command line: a class name (any case) or its index -> the index."""

from __future__ import annotations

from gancli.errors import UsageError

ALL = "all"


def parse_label(text: str, class_names: tuple[str, ...], flag: str = "--label") -> int:
    """A class name (case-insensitive) or a class index -> the class index.

    Names win over indices, so MNIST's class "7" is index 7 and a folder class named "3" is
    found by its name.
    """
    wanted = text.strip().lower()
    for index, name in enumerate(class_names):
        if name.lower() == wanted:
            return index
    if wanted.isdigit() and int(wanted) < len(class_names):
        return int(wanted)
    raise UsageError(f"{flag} {text!r} is not a class of this model; use one of: {', '.join(class_names)} (or all).")


def parse_label_list(text: str, class_names: tuple[str, ...], flag: str = "--labels") -> list[int]:
    """'3,8' or 'sneaker,bag' -> class indices."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise UsageError(f"{flag} is empty; give class names or indices separated by commas, e.g. {flag} 3,8.")
    return [parse_label(p, class_names, flag) for p in parts]
