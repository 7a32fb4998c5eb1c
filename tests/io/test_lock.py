"""One writer per run (issue 11, item 2): an fcntl lock held for the run's lifetime; a second
process fails at once naming the run and the holder; a killed holder never blocks."""

import os
import signal
import socket
import subprocess
import sys
import textwrap

from infodrop.io import RunLock
from tests._subprocess import subprocess_env

HOLDER = textwrap.dedent(
    """
    import sys
    from infodrop.io import RunLock
    with RunLock(sys.argv[1], name="mnist/demo"):
        print("holding", flush=True)
        sys.stdin.readline()
    """
)

SECOND = textwrap.dedent(
    """
    import sys
    from infodrop.io import RunLock, RunLockedError
    try:
        RunLock(sys.argv[1], name="mnist/demo").acquire()
    except RunLockedError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    print("acquired")
    """
)


def _start_holder(folder) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def _second(folder) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SECOND, str(folder)], capture_output=True, text=True, env=subprocess_env())


def test_a_second_process_on_the_same_run_fails_at_once_naming_the_run_and_the_holder(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        second = _second(tmp_path)
    finally:
        holder.communicate("done\n")
    assert second.returncode == 1
    message = second.stderr.strip()
    assert "\n" not in message
    assert message.startswith(f"run mnist/demo is in use by process {holder.pid} on {socket.gethostname()}")
    # Once the holder has finished, the run is free again.
    assert _second(tmp_path).stdout.strip() == "acquired"


def test_a_lock_left_by_a_killed_process_never_blocks(tmp_path):
    holder = _start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdin.close()
    holder.stdout.close()
    assert (tmp_path / ".lock").exists()  # the file stays; the OS dropped the lock
    assert _second(tmp_path).stdout.strip() == "acquired"
    with RunLock(tmp_path):
        pass


def test_within_one_process_the_lock_is_reentrant_and_released_by_the_outermost(tmp_path):
    outer = RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # e.g. fit() called by a command that already holds the run
        assert _second(tmp_path).returncode == 1
    assert _second(tmp_path).returncode == 1  # still held by `outer`
    outer.release()
    assert _second(tmp_path).stdout.strip() == "acquired"


def test_the_lock_file_names_its_holder(tmp_path):
    with RunLock(tmp_path, name="cifar/x") as lock:
        assert (tmp_path / ".lock").read_text().split() == [str(os.getpid()), socket.gethostname()]
        assert lock.held and "held=True" in repr(lock)
    assert not lock.held


