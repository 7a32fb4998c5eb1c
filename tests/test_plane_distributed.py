"""The tracker under torchrun (issue 9, part 4): the ranks share the mixture estimation and the
plane they record is the one a single process records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests._subprocess import subprocess_env

SCRIPT = Path(__file__).resolve().parent / "_engine_scripts" / "plane_train.py"
FIELDS = ("i_xz", "i_xz_lower", "i_xz_upper", "log_n", "i_zy", "i_zy_lower", "i_zy_upper", "h_z", "i_xz_stderr")


@pytest.mark.end_to_end
def test_two_cpu_processes_share_the_plane_estimate_and_record_what_one_process_records(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
               str(tmp_path), "--epochs", "2"]
    process = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    # Both ranks took part (the engine called the hook on rank 1 too) and hold the same numbers.
    assert all(rank["distributed"] and rank["world"] == 2 for rank in ranks)
    assert [record["epoch"] for record in ranks[1]["records"]] == [0, 1, 2]
    assert ranks[0]["records"] == ranks[1]["records"]
    # Rank 0 alone wrote the file, with every epoch, initialisation included.
    written = json.loads((tmp_path / "plane.json").read_text())
    assert [record["epoch"] for record in written["records"]] == [0, 1, 2] and written["config"]["distributed"] is True
    # The last record equals one process computing everything, to 1e-9 relative.
    single = json.loads((tmp_path / "single.json").read_text())["records"][0]
    shared = written["records"][-1]
    for split in ("train", "test"):
        for field in FIELDS:
            assert shared[split]["auto"][field] == pytest.approx(single[split]["auto"][field], rel=1e-9, abs=1e-12), field
        assert shared[split]["auto"]["saturated"] == single[split]["auto"]["saturated"]
        assert shared[split]["subsets"] == single[split]["subsets"]
