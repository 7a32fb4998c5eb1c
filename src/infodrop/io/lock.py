"""One writer per run: an OS file lock held for the run's lifetime.

:class:`RunLock` takes an exclusive ``fcntl.flock`` on a lock file (``<run folder>/.lock``)
without waiting. A second process that wants the same run fails at once with
:class:`RunLockedError`, whose one-line message names the run and the process (PID and host)
that holds it; the holder writes its PID and host into the lock file for that message.

The lock belongs to the open file, not to the file on disk, so the operating system drops it
when the holder exits in any way, kill -9 included: a lock file left behind never blocks anyone,
and it is never deleted (deleting it while another process opens it would let two processes
lock two different files). Within one process the lock is re-entrant: a command that holds a
run's lock may call code that takes it again.

``flock`` works on local file systems and on NFS (Linux emulates it with NFS byte-range locks);
on file systems without locks, taking the lock raises OSError naming the file.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

__all__ = ["RunLock", "RunLockedError", "LOCK_NAME"]

LOCK_NAME = ".lock"

# Locks this process holds: resolved lock-file path -> [file descriptor, depth].
_HELD: dict[str, list[int]] = {}


class RunLockedError(RuntimeError):
    """Another process holds the run's lock; the message names the run and that process."""


def _holder(descriptor: int) -> str:
    """'process PID on HOST' as the holder wrote it, read from our own descriptor."""
    # The holder writes its PID right after taking the lock; give it a moment if we raced it.
    for _ in range(20):
        text = os.pread(descriptor, 200, 0).decode("utf-8", "replace").split()
        if len(text) >= 2 and text[0].isdigit():
            return f"process {text[0]} on {text[1]}"
        time.sleep(0.01)
    return "another process"


class RunLock:
    """An exclusive lock on the run in ``folder``, taken by :meth:`acquire` (or ``with``).

    Args:
        folder: the run's folder; the lock file ``folder/.lock`` is created (with the folder)
            when missing.
        name: how messages call the run (default: the folder).
    """

    def __init__(self, folder: str | os.PathLike, *, name: str | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.name = name if name is not None else str(self.folder)
        self._held = False

    def __repr__(self) -> str:
        return f"RunLock({str(self.folder)!r}, held={self._held})"

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self) -> "RunLock":
        """Take the lock or raise :class:`RunLockedError` at once; no-op if this object holds it."""
        if self._held:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        if key in _HELD:
            _HELD[key][1] += 1
            self._held = True
            return self
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(descriptor)
            os.close(descriptor)
            raise RunLockedError(
                f"run {self.name} is in use by {holder} (lock {self.path}); wait for it to finish or stop it, "
                "then run the command again"
            ) from None
        except OSError as error:
            os.close(descriptor)
            raise OSError(error.errno, f"cannot lock {self.path} ({error.strerror}); put the run on a file system with file locks") from error
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        _HELD[key] = [descriptor, 1]
        self._held = True
        return self

    def release(self) -> None:
        """Give the lock back (the file stays). Safe to call when not held."""
        if not self._held:
            return
        self._held = False
        key = str(self.path.resolve())
        entry = _HELD.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[key]
            os.close(entry[0])  # closing the last descriptor releases the flock

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
