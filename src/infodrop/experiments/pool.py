"""Run the jobs of a sweep several at a time, each in a process of its own.

One training run at batch 100 leaves most of a GPU idle; a sweep of them can share it.
:class:`JobPool` runs up to ``workers`` jobs at once::

    pool = JobPool(workers=4)
    for label, cfg in jobs:
        pool.submit(train, cfg, label=label)  # waits for a free slot when 4 are running
    outcomes = pool.wait()                    # one JobOutcome per job, in submission order

Each job is ``function(*args)`` in a freshly spawned interpreter: its own CUDA context, random
generators and allocator, so it computes what it computes when run alone, and a crash (or an
out-of-memory kill) ends that job only. Its output lines are prefixed with ``[label] `` and
written whole, so the lines of concurrent jobs do not mix; carriage-return updates (progress
bars) are dropped, the epoch lines remain. Its return value comes back pickled; an exception
becomes a failed :class:`JobOutcome` with the exception's type and message (its traceback is
printed with the job's prefix).

Ctrl-C (or SIGTERM) reaches the running jobs, which save their last complete epoch as a single
run does; no further job starts, and the pool re-raises once they have ended.

A job dies with the pool's process: when that process ends in any way (kill -9 included), each
job receives SIGTERM and saves its last complete epoch as under a SIGTERM of its own, then exits
and gives its run's lock back. On Linux the kernel sends it (``prctl(PR_SET_PDEATHSIG)``);
elsewhere, and as a second line of defence, a thread of the job notices that its parent changed
(``os.getppid()``) within ``PARENT_CHECK_SECONDS``. Output to a reader that went away with the
parent is dropped instead of ending in BrokenPipeError tracebacks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

__all__ = ["JobOutcome", "JobPool"]

# How often a job's watcher thread checks that the pool's process is still its parent.
PARENT_CHECK_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass
class JobOutcome:
    """What became of one job: ``value`` (its return value) when ``error`` is None, else the
    one-line reason it failed."""

    label: str
    value: Any = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


class _PrefixedLines:
    """A text stream that writes each complete line to file descriptor ``fd`` as one write,
    prefixed; the text before a carriage return is dropped (a progress bar redrawing itself)."""

    def __init__(self, fd: int, prefix: str):
        self.fd, self.prefix, self.pending = fd, prefix, ""
        self.encoding, self.errors = "utf-8", "replace"

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        visible = line.rsplit("\r", 1)[-1]
        if visible.strip():
            try:
                os.write(self.fd, f"{self.prefix}{visible}\n".encode(self.encoding, self.errors))
            except BrokenPipeError:
                pass  # the reader went away with the pool's process; the job still saves its epoch

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.pending.rsplit("\r", 1)[-1].strip():
            self._emit(self.pending)
        self.pending = ""

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.fd

    @property
    def closed(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


def _set_parent_death_signal() -> None:
    """Ask the Linux kernel to send this process SIGTERM when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watcher thread covers it


def _watch_parent(parent: int) -> None:
    """Send this process SIGTERM once ``parent`` is no longer its parent (it died: the job was
    re-parented), so that the job saves its epoch and ends instead of training on orphaned."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _die_with_parent(parent: int) -> None:
    """End this job, as under SIGTERM, when the pool's process ``parent`` ends (see the module docstring)."""
    _set_parent_death_signal()
    # A daemon thread: it never keeps the job alive, and it also catches a parent that died
    # before the kernel was asked to tell us.
    threading.Thread(target=_watch_parent, args=(parent,), name="watch the sweep's process", daemon=True).start()


def _send(connection: Connection, message: tuple) -> None:
    try:
        connection.send(message)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        pass  # the pool's process is gone; nobody is left to read the outcome


def _run_job(function: Callable[..., Any], args: tuple, label: str, connection: Connection, parent: int | None = None) -> None:
    """The body of a job's process: prefixed output, the call, its outcome sent back. ``parent``:
    the pool's process id, whose end ends the job."""
    # A process group of its own: a Ctrl-C at the terminal reaches the pool, which passes it on
    # once (twice, the second could cut short the checkpoint the first one makes the job save).
    os.setpgrp()
    if parent is not None:
        _die_with_parent(parent)
    sys.stdout.flush()
    sys.stderr.flush()
    out, err = _PrefixedLines(1, f"[{label}] "), _PrefixedLines(2, f"[{label}] ")
    sys.stdout, sys.stderr = out, err
    try:
        try:
            value = function(*args)
        except KeyboardInterrupt:
            _send(connection, ("error", "interrupted"))
            return
        except BaseException as error:  # the job failed; the pool reports it and goes on
            traceback.print_exc()
            _send(connection, ("error", f"{type(error).__name__}: {error}"))
            return
        try:
            connection.send(("value", value))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            pass  # the pool's process is gone
        except Exception as error:  # an unpicklable return value
            _send(connection, ("error", f"its result could not be sent back: {type(error).__name__}: {error}"))
    finally:
        out.close()
        err.close()
        connection.close()


@dataclass
class _Running:
    index: int
    label: str
    process: Any
    connection: Connection


class JobPool:
    """Up to ``workers`` jobs at a time, each in a spawned process (see the module docstring)."""

    def __init__(self, workers: int):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._running: list[_Running] = []
        self._outcomes: list[JobOutcome | None] = []
        self._stopping: int | None = None  # the signal that stops the pool

    def submit(self, function: Callable[..., Any], *args: Any, label: str) -> None:
        """Start ``function(*args)`` (picklable: a module-level function and picklable arguments)
        once fewer than ``workers`` jobs run; ``label`` prefixes its output and names it."""
        with self._forwarding_signals():
            while len(self._running) >= self.workers and self._stopping is None:
                self._reap(block=True)
            if self._stopping is not None:
                self._outcomes.append(JobOutcome(label, error="not started: the sweep was interrupted"))
                return
            receiver, sender = self._context.Pipe(duplex=False)
            process = self._context.Process(target=_run_job, args=(function, args, label, sender, os.getpid()), name=f"job {label}")
            sys.stdout.flush()
            sys.stderr.flush()
            process.start()
            sender.close()  # the child holds its end; ours would keep the pipe open after it dies
            self._running.append(_Running(len(self._outcomes), label, process, receiver))
            self._outcomes.append(None)

    def wait(self) -> list[JobOutcome]:
        """Wait for every submitted job; their outcomes in submission order. Re-raises
        KeyboardInterrupt (or exits 128 + SIGTERM) after the jobs have ended when interrupted."""
        with self._forwarding_signals():
            while self._running:
                self._reap(block=True)
        if self._stopping == signal.SIGINT:
            raise KeyboardInterrupt
        if self._stopping is not None:
            raise SystemExit(128 + self._stopping)
        return [outcome for outcome in self._outcomes if outcome is not None]

    def _reap(self, *, block: bool) -> None:
        """Collect the jobs that have finished (waiting for at least one when ``block``)."""
        sentinels = {job.process.sentinel: job for job in self._running}
        ready = wait(list(sentinels), timeout=None if block else 0)
        for sentinel in ready:
            job = sentinels[sentinel]
            job.process.join()
            outcome = JobOutcome(job.label)
            if job.connection.poll():
                kind, payload = job.connection.recv()
                if kind == "value":
                    outcome.value = payload
                else:
                    outcome.error = payload
            else:
                outcome.error = f"its process ended with exit code {job.process.exitcode} and no result"
            job.connection.close()
            self._outcomes[job.index] = outcome
            self._running.remove(job)

    def _forwarding_signals(self) -> "_SignalForwarding":
        return _SignalForwarding(self)


class _SignalForwarding:
    """While the pool waits: SIGINT and SIGTERM go to the running jobs (so each saves its last
    epoch) and stop the pool from starting more."""

    def __init__(self, pool: JobPool):
        self.pool = pool

    def _handle(self, number: int, frame: Any) -> None:
        self.pool._stopping = self.pool._stopping or number
        for job in self.pool._running:
            if job.process.pid is not None and job.process.exitcode is None:
                os.kill(job.process.pid, number)

    def __enter__(self) -> None:
        self.previous = {}
        if multiprocessing.current_process().name != "MainProcess" or not _main_thread():
            return  # signal handlers can only be set in the main thread
        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, self._handle)

    def __exit__(self, *exc_info: Any) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
