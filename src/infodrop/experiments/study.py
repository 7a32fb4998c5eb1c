"""Seed studies: does a setting compress, over its training seeds? (:mod:`infodrop.study`)

Train a setting with several seeds, e.g.::

    infodrop mnist train --multirun with dataset=fashion variance=4.0 plane_subsets=[1,4] seed=0,1,2,3,4

then::

    infodrop study verdict with experiment=mnist

reads every ``runs/<experiment>/<run>/plane.json``, groups the runs into settings by their run
name without its ``seed=...`` part (the runs of one setting differ only in the seed), and for
each setting and trajectory (the whole layer, each recorded unit-subset size, each binning bin
count when ``binning=true``) prints the verdict of :func:`infodrop.study.compression_verdict`:
"compresses", "does not compress" or "cannot be told", with the seeds, how many compress, the
mean fall and the spread between seeds (nats). It writes the table and the per-epoch seed
summary as CSV to ``runs/study/<experiment>/`` and draws mean +- seed spread against the epoch,
beside the error and learning-rate curves, to ``plots/study/<experiment>/``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional

from tqdm import tqdm

from infodrop.checks import check_int
from infodrop.experiments.config import entry
from infodrop.io import write_text
from infodrop.study import Run, Verdict, compression_verdict, load_runs, recorded_trajectories, seed_summary
from infodrop.study_figures import plot_seed_summary

__all__ = ["COMMANDS", "Config", "NAMED_CONFIGS", "group_settings", "validate", "verdict"]


@dataclass
class Config:
    experiment: str = entry("mnist", "experiment whose runs are read: runs_dir/<experiment>/<run>/plane.json")
    settings: List[str] = entry([], "run names without their seed part to include, quoted for Hydra: \"settings=['variance=4.0,dataset=fashion']\" (empty = every setting found)")
    split: str = entry("train", "split of the plane: train or test")
    binning: bool = entry(False, "judge the binning trajectories too (one per bin count)")
    min_seeds: int = entry(3, "fewest seeds from which a setting can be told")
    runs_dir: str = entry("runs", "folder with the runs (as given to the experiment)")
    plots_dir: str = entry("plots", "folder for the figures")
    plot_formats: List[str] = entry(["png"], "file formats of the figures (png, pdf, svg)")
    title: Optional[str] = entry(None, "title of the figure (null = what it shows)")
    progress: Optional[bool] = entry(None, "progress bar over the settings read: null = only when stderr is a terminal; true or false to force")


NAMED_CONFIGS: dict[str, dict[str, Any]] = {}

SEED_PART = re.compile(r"(^|,)seed=\d+")


def setting_name(run_name: str) -> str:
    """A run's name without its ``seed=N`` part: the name of its setting ('default' when nothing
    else differs from the defaults)."""
    name = SEED_PART.sub("", run_name).strip(",")
    return name or "default"


def group_settings(experiment_dir: Path, wanted: list[str], progress: bool | None = None) -> dict[str, list[Run]]:
    """Setting name -> runs, from every run folder under ``experiment_dir`` holding a plane.json."""
    groups: dict[str, list[Path]] = {}
    for plane_file in sorted(experiment_dir.glob("*/plane.json")):
        groups.setdefault(setting_name(plane_file.parent.name), []).append(plane_file)
    if wanted:
        missing = [name for name in wanted if name not in groups]
        if missing:
            raise ValueError(f"settings={missing}: no runs of these under {experiment_dir}; found {sorted(groups) or 'none'}")
        groups = {name: groups[name] for name in wanted}
    if not groups:
        raise ValueError(f"no plane.json under {experiment_dir}/*/; train runs first or set runs_dir and experiment")
    disable = None if progress is None else not progress
    return {name: load_runs(files) for name, files in tqdm(groups.items(), desc="settings", unit="setting", disable=disable)}


def validate(cfg: Any) -> None:
    """Raise ValueError naming the entry for a value the command cannot use."""
    if cfg.split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {cfg.split!r}")
    check_int(cfg.min_seeds, "min_seeds", minimum=1)
    if not str(cfg.experiment).strip() or "/" in str(cfg.experiment):
        raise ValueError(f"experiment must name one experiment folder under runs_dir, got {cfg.experiment!r}")


def _trajectories(runs: list[Run], split: str, binning: bool) -> list[tuple[str, int | None]]:
    def order(item: tuple[str, int | None]) -> tuple:
        estimator, subset = item
        bins = int(estimator.partition(":")[2] or 0)
        return (estimator != "auto", subset is not None, subset or 0, bins)

    names = sorted({(estimator, subset) for estimator, part, subset in recorded_trajectories(runs) if part == split}, key=order)
    return [(estimator, subset) for estimator, subset in names if binning or estimator == "auto"]


def _table(verdicts: list[tuple[str, Verdict]]) -> str:
    width = max([len("setting"), *(len(name) for name, _ in verdicts)])
    header = f"{'setting':{width}s} {'trajectory':12s} {'seeds':>5s} {'fall':>5s} {'mean fall':>9s} {'spread':>7s}  verdict"
    lines = [header, "-" * len(header)]
    for name, verdict in verdicts:
        row = verdict.row()
        trajectory = row["subset"] if verdict.estimator == "auto" else verdict.estimator
        lines.append(f"{name:{width}s} {trajectory:12s} {row['seeds']:5d} {row['compressing']:5d} "
                     f"{row['mean_fall']:9.3f} {row['spread']:7.3f}  {row['verdict']}")
    return "\n".join(lines)


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def verdict(cfg: Any) -> dict:
    """Print the verdict table of every setting and trajectory; write it and the per-epoch seed
    summary as CSV, and the mean +- seed-spread figure. Returns ``{'verdicts', 'table', 'files'}``."""
    settings = group_settings(Path(cfg.runs_dir) / cfg.experiment, list(cfg.settings), cfg.progress)
    verdicts: list[tuple[str, Verdict]] = []
    summary_rows = []
    for name, runs in settings.items():
        for estimator, subset in _trajectories(runs, cfg.split, cfg.binning):
            verdicts.append((name, compression_verdict(runs, estimator=estimator, split=cfg.split, subset=subset,
                                                       min_seeds=cfg.min_seeds)))
        summary_rows += [dict(setting=name, **dataclasses.asdict(row)) for row in seed_summary(runs, split=cfg.split)]
    table = _table(verdicts)
    print(table)
    for name, item in verdicts:
        print(f"{name} / {item.row()['subset'] if item.estimator == 'auto' else item.estimator}: {item.verdict}: {item.reason}")
    out_dir = Path(cfg.runs_dir) / "study" / cfg.experiment
    files = [write_text(out_dir / "verdicts.csv", _csv([dict(setting=name, **item.row(), reason=item.reason) for name, item in verdicts])),
             write_text(out_dir / "seed_summary.csv", _csv(summary_rows))]
    sizes = sorted({subset for _, item in verdicts if item.subset is not None for subset in [item.subset]})
    files += plot_seed_summary(settings, Path(cfg.plots_dir) / "study" / cfg.experiment, split=cfg.split,
                               subsets=(None, *sizes), formats=tuple(cfg.plot_formats), title=cfg.title)
    print("files:\n" + "\n".join(f"  {path}" for path in files))
    return {"verdicts": verdicts, "table": table, "files": files}


COMMANDS: dict[str, Callable[[Any], object]] = {"verdict": verdict}
