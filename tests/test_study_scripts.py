"""The two scripts behind docs/compression.md: scripts/plane_summary.py reads a fall as compression
only when the bands separate and never off a saturated point; scripts/plane_trajectories.py draws
several plane files into one figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests._subprocess import REPO, subprocess_env


def _point(value: float, half_width: float, saturated: bool = False) -> dict:
    return {"i_xz": value, "i_zy": 1.0, "i_xz_lower": value - half_width, "i_xz_upper": value + half_width,
            "i_zy_lower": 0.9, "i_zy_upper": 1.1, "log_n": 4.6, "saturated": saturated}


def _plane(path: Path, values: list[tuple[float, float, bool]]) -> Path:
    """A plane file in the tracker's layout: one Gaussian-mixture point per epoch, train split."""
    records = [{"epoch": epoch, "train": {"n": 100, "h_y": 2.3, "auto": _point(*value)}} for epoch, value in enumerate(values)]
    document = {"format": "infodrop.plane/1", "units": "nats", "layer": "layers.2.2", "dropout_kind": "gaussian",
                "variance": 1.0, "prior": None, "estimators": {"auto": "gaussian-mixture"},
                "sample_counts": {"train": 100}, "records": records}
    path.write_text(json.dumps(document))
    return path


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, env=subprocess_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("values, verdict", [
    # rise to 5.0, then a fall whose band lies wholly below the peak's: compression the estimate sees
    ([(0.0, 0.01, False), (5.0, 0.1, False), (4.0, 0.1, False)], "fall: resolved"),
    # the same fall with bands that overlap: cannot be told from noise
    ([(0.0, 0.01, False), (5.0, 0.6, False), (4.0, 0.6, False)], "fall: within band"),
    # a fall from a saturated peak says nothing (the peak measures N)
    ([(0.0, 0.01, False), (4.6, 0.1, True), (4.0, 0.1, False)], "fall: saturated"),
])
def test_summary_reads_a_fall_as_compression_only_when_the_bands_separate(tmp_path, values, verdict):
    out = _run("scripts/plane_summary.py", str(_plane(tmp_path / "plane.json", values)), "--table")
    line = next(line for line in out.splitlines() if "gaussian-mixture" in line and "I(X;Z)" in line)
    assert verdict in line, line
    assert "peak @1" in line and "end @2" in line
    # the per-epoch table has one row per recorded epoch
    assert [row.split("|")[0].strip() for row in out.splitlines() if row.strip()[:1].isdigit()] == ["0", "1", "2"]


def test_trajectories_draw_several_plane_files_into_one_png(tmp_path):
    first = _plane(tmp_path / "a.json", [(0.0, 0.01, False), (5.0, 0.1, False), (4.0, 0.1, False)])
    second = _plane(tmp_path / "b.json", [(0.0, 0.01, False), (4.6, 0.1, True), (4.5, 0.1, True)])
    target = tmp_path / "figure.png"
    out = _run("scripts/plane_trajectories.py", str(target), f"first={first}", f"second={second}::auto", "--title", "t")
    assert out.strip() == str(target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trajectories_refuse_an_unknown_estimator_naming_it(tmp_path):
    first = _plane(tmp_path / "a.json", [(0.0, 0.01, False)])
    done = subprocess.run([sys.executable, "scripts/plane_trajectories.py", str(tmp_path / "f.png"), f"x={first}::kde"],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True)
    assert done.returncode == 2 and "kde" in done.stderr and "Traceback" not in done.stderr
