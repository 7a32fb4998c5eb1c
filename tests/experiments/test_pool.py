"""The sweep pool (infodrop.experiments.pool): jobs run concurrently, each in its own process,
output prefixed with the job, a failed job named, results in submission order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infodrop.experiments.pool import JobOutcome, JobPool
from tests._subprocess import REPO, subprocess_env


def meet(folder: str, me: str, other: str) -> str:
    """Announce this job, then wait until the other job has announced itself too: only possible
    when both run at the same time. (The wait is bounded so that a sequential pool fails the
    test instead of hanging it.)"""
    Path(folder, me).touch()
    print(f"{me} started")
    print("progress 10%\rprogress 50%\r", end="")  # a progress bar redrawing itself
    for _ in range(3000):
        if Path(folder, other).exists():
            print(f"{me} met {other}")
            return f"{me}:{os.getpid()}"
        time.sleep(0.1)
    raise RuntimeError(f"{other} never ran while {me} did")


def fail(message: str) -> None:
    print("about to fail")
    raise FloatingPointError(message)


def test_two_jobs_run_at_once_in_processes_of_their_own_with_prefixed_output(tmp_path, capfd):
    pool = JobPool(workers=2)
    pool.submit(meet, str(tmp_path), "a", "b", label="beta=0.5")
    pool.submit(meet, str(tmp_path), "b", "a", label="beta=1")
    outcomes = pool.wait()
    assert [outcome.label for outcome in outcomes] == ["beta=0.5", "beta=1"]
    assert not any(outcome.failed for outcome in outcomes)
    values = [outcome.value for outcome in outcomes]
    assert [value.split(":")[0] for value in values] == ["a", "b"]
    pids = {int(value.split(":")[1]) for value in values}
    assert len(pids) == 2 and os.getpid() not in pids
    lines = capfd.readouterr().out.splitlines()
    assert "[beta=0.5] a started" in lines and "[beta=1] b met a" in lines
    assert not any("progress" in line for line in lines)  # carriage-return updates are dropped


def test_a_failed_job_is_named_and_the_others_complete(tmp_path, capfd):
    pool = JobPool(workers=2)
    pool.submit(fail, "the loss is nan at epoch 1", label="beta=20")
    pool.submit(meet, str(tmp_path), "a", "a", label="beta=1")  # meets itself: completes alone
    failed, completed = pool.wait()
    assert failed == JobOutcome("beta=20", error="FloatingPointError: the loss is nan at epoch 1")
    assert completed.label == "beta=1" and not completed.failed
    err = capfd.readouterr().err
    assert "[beta=20] Traceback" in err and "[beta=20] FloatingPointError: the loss is nan at epoch 1" in err


def test_one_worker_runs_the_jobs_one_after_the_other(tmp_path):
    pool = JobPool(workers=1)
    pool.submit(meet, str(tmp_path), "a", "a", label="first")
    pool.submit(fail, "second", label="second")  # waits for the slot: the first job has ended
    assert len(pool._running) == 1 and pool._outcomes[0] is not None and not pool._outcomes[0].failed
    first, second = pool.wait()
    assert not first.failed and second.error == "FloatingPointError: second"


def test_workers_must_be_a_positive_integer():
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="workers"):
            JobPool(workers=bad)


def train_until_interrupted(folder: str) -> None:
    """Stands for a training run: works until Ctrl-C, then takes a second to save its last epoch
    and re-raises. Every SIGINT it receives is logged, also one arriving during the save."""
    received = []

    def on_sigint(number, frame):
        with open(Path(folder, "signals"), "a") as handle:
            handle.write("SIGINT\n")
        if not received:
            received.append(number)
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    Path(folder, "started").touch()
    try:
        for _ in range(3000):
            time.sleep(0.1)
    except KeyboardInterrupt:
        time.sleep(1.0)  # writing the checkpoint
        Path(folder, "saved").touch()
        raise


_INTERRUPTED_SWEEP = """
import sys
from infodrop.experiments.pool import JobPool
from tests.experiments.test_pool import train_until_interrupted
pool = JobPool(workers=1)
pool.submit(train_until_interrupted, sys.argv[1], label="first")
pool.submit(train_until_interrupted, sys.argv[1] + "/never", label="second")
try:
    pool.wait()
except KeyboardInterrupt:
    print([(outcome.label, outcome.error) for outcome in pool._outcomes])
    sys.exit(130)
"""


def test_ctrl_c_reaches_the_running_job_once_and_starts_no_other(tmp_path):
    sweep = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_SWEEP, str(tmp_path)], cwd=REPO, env=subprocess_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(3000):  # wait for the first job to run (bounded: a broken pool fails, not hangs)
        if (tmp_path / "started").exists() or sweep.poll() is not None:
            break
        time.sleep(0.1)
    assert (tmp_path / "started").exists()
    # SIGINT to the pool alone (`kill -INT`, or a Ctrl-C, which the jobs' own process groups do
    # not receive from the terminal): the pool passes it on.
    sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 130, err
    # The job saved, having received the signal once.
    assert (tmp_path / "saved").exists() and (tmp_path / "signals").read_text() == "SIGINT\n"
    assert "('first', 'interrupted')" in out and "('second', 'not started: the sweep was interrupted')" in out
