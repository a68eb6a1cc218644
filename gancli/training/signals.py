"""Stop requests: SIGINT/SIGTERM ask the training loop to finish its step and save."""

from __future__ import annotations

import signal
from contextlib import contextmanager


class StopFlag:
    requested: str | None = None  # "SIGINT" / "SIGTERM" once asked


@contextmanager
def stop_requests():
    """Within the block, SIGINT/SIGTERM set the flag; a second SIGINT stops at once (KeyboardInterrupt)."""
    flag = StopFlag()
    previous = {}

    def handler(signum, frame):
        if flag.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.requested = signal.Signals(signum).name

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
