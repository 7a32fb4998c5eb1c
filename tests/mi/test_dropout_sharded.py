"""Sharded estimation (issue 9, Scale): under torch.distributed every rank returns the numbers
of one process that computes everything, to 1e-9 relative, for every field of the result.

Two real CPU processes under torchrun with gloo (tests/mi/_sharded_worker.py): a toy problem
(one zero pattern, N = 1101 > one noise block, odd so that the ranks' shares differ) and ReLU
features (several zero patterns, three classes), both with labels and
the pairwise bounds. The per-sample columns are assembled exactly (one nonzero contribution per
entry), so only the pairwise bounds' merged log-sum-exp and GEMM blocking differ, by rounding.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from infodrop.mi import gaussian_dropout_mi
from tests._subprocess import subprocess_env

WORKER = Path(__file__).with_name("_sharded_worker.py")
RELATIVE = 1e-9


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}{key}.")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}{index}.")
    else:
        yield prefix.rstrip("."), value


def max_relative_difference(a: dict, b: dict) -> float:
    """Largest |x - y| / max(|x|, |y|) over the numeric fields; AssertionError on any field
    whose kind (None, bool, infinity) differs."""
    flat_a, flat_b = dict(_flatten(a)), dict(_flatten(b))
    assert flat_a.keys() == flat_b.keys()
    worst = 0.0
    for key, x in flat_a.items():
        y = flat_b[key]
        if x is None or y is None or isinstance(x, bool) or not math.isfinite(x) or not math.isfinite(y):
            assert x == y, (key, x, y)
            continue
        scale = max(abs(x), abs(y))
        if scale > 0:
            worst = max(worst, abs(x - y) / scale)
    return worst


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(WORKER), str(out),
    ]
    process = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.parametrize("problem", ["toy", "relu"])
def test_two_ranks_return_the_single_process_numbers_to_1e_9(ranks, problem):
    single = ranks[0][problem]["single"]
    for rank in ranks:
        worst = max_relative_difference(rank[problem]["sharded"], single)
        print(f"{problem}: max relative difference to one process {worst:.2e}")
        assert worst <= RELATIVE


@pytest.mark.parametrize("problem", ["toy", "relu"])
def test_every_rank_returns_the_same_numbers(ranks, problem):
    assert ranks[0][problem]["sharded"] == ranks[1][problem]["sharded"]


def test_the_problems_exercise_zero_patterns_labels_and_bounds(ranks):
    relu, toy = ranks[0]["relu"]["single"], ranks[0]["toy"]["single"]
    assert relu["n_patterns"] > 1 and toy["n_patterns"] == 1
    for result in (relu, toy):
        assert result["i_zy_lower"] is not None and result["i_xz_bounds"] is not None


def test_distributed_without_a_process_group_raises_naming_distributed():
    with pytest.raises(ValueError, match="distributed"):
        gaussian_dropout_mi([[1.0], [2.0]], 0.1, distributed=True, device="cpu")
