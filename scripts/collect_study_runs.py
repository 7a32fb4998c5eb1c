"""Copy the runs of a seed study into the repository, small enough to commit.

    python scripts/collect_study_runs.py SOURCE_RUNS_DIR DEST_RUNS_DIR [EXPERIMENT]

For every ``SOURCE/<experiment>/<run>/plane.json`` this writes ``DEST/<experiment>/<run>/`` with
the plane file and ``metrics.jsonl`` as they are, and the per-input terms (``plane_terms.npz``)
cut down to the epochs that :func:`infodrop.study.compression_verdict` compares (each
trajectory's peak and end): the full terms are N float64 per epoch, trajectory and subset, some
10 MB a run. ``infodrop study verdict with runs_dir=DEST`` then gives the same verdicts, paired
tests included, from the committed files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from infodrop.io import load_npz, save_npz
from infodrop.plane.record import terms_key, terms_path
from infodrop.study import compression_verdict, load_runs, recorded_trajectories


def needed_keys(run, split: str = "train") -> set[str]:
    """The terms keys of the epochs the verdicts of this run compare (peak and end of each
    trajectory the run recorded)."""
    keys = set()
    trajectories = {(estimator, subset) for estimator, part, subset in recorded_trajectories([run])
                    if part == split and estimator == "auto"}
    for estimator, subset in trajectories:
        verdict = compression_verdict([run], estimator=estimator, split=split, subset=subset, min_seeds=1).runs[0]
        for epoch in (verdict.peak.epoch, verdict.end.epoch):
            if subset is None:
                keys.add(terms_key(epoch, split))
            else:
                keys.update(key for key in run.terms if key.startswith(f"{epoch}/{split}/subset{subset}/"))
    return keys


def collect(source: Path, dest: Path, experiment: str) -> list[Path]:
    written = []
    for plane_file in sorted((source / experiment).glob("*/plane.json")):
        (run,) = load_runs([plane_file])
        target = dest / experiment / plane_file.parent.name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plane_file, target / "plane.json")
        if (plane_file.parent / "metrics.jsonl").exists():
            shutil.copyfile(plane_file.parent / "metrics.jsonl", target / "metrics.jsonl")
        if run.terms:
            arrays = load_npz(terms_path(plane_file))
            save_npz(terms_path(target / "plane.json"), **{key: arrays[key] for key in sorted(needed_keys(run))})
        written.append(target)
        print(f"{plane_file.parent} -> {target}")
    return written


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    collect(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) == 4 else "mnist")
