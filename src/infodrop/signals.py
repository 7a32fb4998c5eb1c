"""SIGTERM handled as Ctrl-C is: the training loop saves its last complete epoch and stops.

SIGTERM is what SLURM (at the end of a job's time, with ``#SBATCH --signal=TERM@120``, or on
``scancel`` and preemption), docker (``docker stop``) and systemd send before they kill a
process. Within :func:`sigterm_raises`, SIGTERM raises :class:`Terminated` in the main thread.
It is a ``KeyboardInterrupt``, so every ``except KeyboardInterrupt`` that saves work (the
engine's) saves on SIGTERM too; the run is marked "terminated", and the command line exits
with status 143 (128 + SIGTERM), which SLURM reports as a termination, not a failure.

Only the first SIGTERM raises; further ones are ignored until the block ends, so that the save
it triggers is not cut short by a second signal (the sender follows up with SIGKILL anyway).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

__all__ = ["Terminated", "TERMINATED_EXIT_STATUS", "sigterm_raises"]

TERMINATED_EXIT_STATUS = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (raised by the handler :func:`sigterm_raises` installs)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(f"received signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated`; the previous handler is put back
    after it. Outside the main thread (where Python cannot set handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
