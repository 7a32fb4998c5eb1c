"""The sweep pool (infodrop.experiments.pool): jobs run concurrently, each in its own process,
output prefixed with the job, a failed job named, results in submission order."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from infodrop.experiments.pool import JobOutcome, JobPool


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
