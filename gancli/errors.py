"""Errors meant for the user: one line that says what is wrong and what to do."""


class GancliError(Exception):
    """A failure the user can act on; printed as one line, no traceback."""

    exit_code = 1  # runtime failure


class Interrupted(GancliError):
    """Stopped by Ctrl-C (or SIGTERM): says what was kept and how to go on."""

    exit_code = 130  # as for SIGINT


class UsageError(GancliError):
    """The command line asked for something impossible (bad flag value, missing path)."""

    exit_code = 2


def save_traceback(exc: BaseException):
    """Write exc's traceback to <cache>/last-error.txt (GANCLI_CACHE_DIR or ~/.cache/gancli); its path, or None."""
    import os
    import traceback
    from pathlib import Path

    path = Path(os.environ.get("GANCLI_CACHE_DIR") or Path.home() / ".cache" / "gancli") / "last-error.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path
