"""Errors meant for the user: one line that says what is wrong and what to do."""


class GancliError(Exception):
    """A failure the user can act on; printed as one line, no traceback."""

    exit_code = 1  # runtime failure


class UsageError(GancliError):
    """The command line asked for something impossible (bad flag value, missing path)."""

    exit_code = 2
