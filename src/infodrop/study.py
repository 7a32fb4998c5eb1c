"""Several training runs of one setting: the spread between seeds and a compression verdict.

The band on a plane point covers the estimator's error for *one* trained network. Whether a
kind of network compresses (Adilova, Geiger & Fischer, ICLR 2023, Sec. 5: I(X;Z) first rises
while the network fits, then falls) is a claim about training, and training has its own
randomness: the same setting trained with another seed gives another trajectory. This module
reads the plane files of one setting trained with several seeds and answers the question with a
criterion fixed before looking at any run (:func:`compression_verdict`).

- :func:`load_runs`: the plane files of one setting (plus each run's ``metrics.jsonl`` and
  per-input terms when they sit beside it), checked to be the same setting with distinct seeds.
- :func:`seed_summary`: per epoch, the mean over seeds, the spread between seeds (sample
  standard deviation) and the mean estimator band, for every estimator, split and subset size.
- :func:`compression_verdict`: "compresses", "does not compress" or "cannot be told", with
  the numbers behind it.
- :func:`paired_change`: the change of I(X;Z) between two epochs as the mean of per-input
  differences on the shared inputs, with its own standard error.

A trajectory is named by ``estimator``: ``"auto"`` (the mixture estimate for Gaussian dropout,
the KL bound for information dropout), ``"binning:30"`` (binning with 30 bins; it has no band,
so its band is the point itself) and ``subset=k`` (the mean over the recorded k-unit subsets,
whose band is the mean of the subsets' band edges). All values are nats.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from infodrop.plane.record import PlaneDocument, PlaneRecord, load_terms, terms_key

__all__ = [
    "PairedChange",
    "Point",
    "Run",
    "RunVerdict",
    "SeedSummaryRow",
    "Verdict",
    "compression_verdict",
    "load_runs",
    "paired_change",
    "recorded_trajectories",
    "seed_summary",
    "terms_key",
    "trajectory",
]

# Standard errors a paired change must exceed to count as resolved (the bands use the same 2).
PAIRED_Z = 2.0
# Fewer seeds than this cannot make a claim about training.
MIN_SEEDS = 3
VERDICTS = ("compresses", "does not compress", "cannot be told")


@dataclass(frozen=True)
class Run:
    """One trained network: its plane file, seed, metrics lines (``metrics.jsonl`` beside the
    plane file, else empty) and per-input terms (``plane_terms.npz`` beside it, else empty)."""

    path: Path
    document: PlaneDocument
    seed: int
    metrics: list[dict] = field(default_factory=list, repr=False)
    terms: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Point:
    """One plane point of one run: I(X;Z) with its band (nats) and saturation flag."""

    epoch: int
    value: float
    lower: float
    upper: float
    saturated: bool
    i_zy: float | None = None


def _seed_of(document: PlaneDocument, path: Path) -> int:
    seed = document.config.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"plane file {path} records no integer seed in its config; it was not written by the tracker")
    return seed


def _setting_of(document: PlaneDocument) -> tuple:
    """What must agree between runs of one setting (the seed is what may differ)."""
    config = {key: value for key, value in document.config.items() if key != "seed"}
    return (document.layer, document.dropout_kind, document.variance, document.prior,
            json.dumps(document.sample_counts, sort_keys=True), json.dumps(config, sort_keys=True), document.dataset)


def _read_metrics(path: Path) -> list[dict]:
    lines = []
    if path.exists():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    raise ValueError(f"{path} line {number} is not JSON; remove the cut line at its end") from None
    return lines


def _read_terms(plane_file: Path) -> dict[str, np.ndarray]:
    arrays = load_terms(plane_file, advice="delete it; the verdict then compares bands instead of per-input terms")
    return {key: np.asarray(value, dtype=np.float64) for key, value in arrays.items()}


def load_runs(plane_files: Iterable[str | os.PathLike]) -> list[Run]:
    """The runs of one setting, sorted by seed.

    plane_files: paths of ``plane.json`` files (or of run folders holding one), one per seed.
    Raises a one-line ValueError naming the file when a file is missing or not a plane file,
    when two files hold the same seed, or when a file is of another setting (layer, dropout,
    variance, sample counts or tracker settings other than the seed differ).
    """
    runs: list[Run] = []
    for given in plane_files:
        path = Path(given)
        if path.is_dir():
            path = path / "plane.json"
        document = PlaneDocument.load(path)
        runs.append(Run(path, document, _seed_of(document, path), _read_metrics(path.parent / "metrics.jsonl"),
                        _read_terms(path)))
    if not runs:
        raise ValueError("plane_files is empty; give the plane.json files of one setting, one per seed")
    first = runs[0]
    seen: dict[int, Path] = {}
    for run in runs:
        if _setting_of(run.document) != _setting_of(first.document):
            raise ValueError(f"plane file {run.path} is of another setting than {first.path} (layer, dropout, variance, "
                             "sample counts or tracker settings differ); give the runs of one setting")
        if run.seed in seen:
            raise ValueError(f"plane files {seen[run.seed]} and {run.path} both hold seed {run.seed}; give one run per seed")
        seen[run.seed] = run.path
    return sorted(runs, key=lambda run: run.seed)


def _parse_estimator(estimator: str) -> tuple[str, str | None]:
    if estimator == "auto":
        return "auto", None
    kind, _, bins = estimator.partition(":")
    if kind == "binning" and bins.isdigit():
        return "binning", bins
    raise ValueError(f"estimator must be 'auto' or 'binning:<bins>' (e.g. 'binning:30'), got {estimator!r}")


def _point(record: PlaneRecord, split: str, estimator: str, subset: int | None) -> Point | None:
    split_record = record.splits().get(split)
    if split_record is None:
        return None
    if subset is not None:
        if estimator != "auto":
            raise ValueError(f"subset={subset} goes with estimator='auto' (the mixture estimate of the subsets), got {estimator!r}")
        sub = (split_record.subsets or {}).get(str(subset))
        if sub is None:
            return None
        lower = float(np.mean(sub.lower)) if sub.lower else sub.mean
        upper = float(np.mean(sub.upper)) if sub.upper else sub.mean
        return Point(record.epoch, sub.mean, lower, upper, bool(sub.saturated), sub.i_zy)
    kind, bins = _parse_estimator(estimator)
    point = split_record.point(kind, bins)
    if point is None:
        return None
    lower = getattr(point, "i_xz_lower", None)
    upper = getattr(point, "i_xz_upper", None)
    return Point(record.epoch, point.i_xz, point.i_xz if lower is None else lower, point.i_xz if upper is None else upper,
                 bool(point.saturated), point.i_zy)


def trajectory(run: Run, *, estimator: str = "auto", split: str = "train", subset: int | None = None) -> list[Point]:
    """The recorded points of one run, by epoch (epochs where the estimate is absent are left out)."""
    points = [_point(record, split, estimator, subset) for record in run.document.sorted_records()]
    return [point for point in points if point is not None]


@dataclass(frozen=True)
class SeedSummaryRow:
    """One epoch of one trajectory over seeds (nats): the mean over seeds, the spread between
    seeds (sample standard deviation, ddof 1; 0 for one seed), the mean estimator band width
    (upper - lower) and the mean of each band edge, the number of seeds and how many of them are
    saturated there. ``i_zy_*`` likewise for I(Z;Y) where recorded."""

    estimator: str
    split: str
    subset: int | None
    epoch: int
    seeds: int
    mean: float
    spread: float
    band: float
    saturated: int
    i_zy_mean: float | None
    i_zy_spread: float | None
    lower: float
    upper: float


def _spread(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def recorded_trajectories(runs: Sequence[Run]) -> list[tuple[str, str, int | None]]:
    """Every (estimator, split, subset) the first run recorded (the runs of one setting record
    the same ones: :func:`load_runs` checks their tracker settings)."""
    found = []
    for split in ("train", "test"):
        records = [record.splits().get(split) for record in runs[0].document.sorted_records()]
        records = [record for record in records if record is not None]
        if not records:
            continue
        if any(record.auto is not None for record in records):
            found.append(("auto", split, None))
        bins = sorted({int(b) for record in records for b in (record.binning or {})})
        found.extend((f"binning:{b}", split, None) for b in bins)
        sizes = sorted({int(k) for record in records for k in (record.subsets or {})})
        found.extend(("auto", split, k) for k in sizes)
    return found


def seed_summary(runs: Sequence[Run], *, estimator: str | None = None, split: str | None = None,
                 subset: int | None = None) -> list[SeedSummaryRow]:
    """Per epoch, mean over seeds, spread between seeds and mean band of every trajectory.

    runs: from :func:`load_runs`. estimator, split, subset: keep only these (None: all that the
    first run recorded; ``subset=None`` with ``estimator`` given means the whole layer). Only
    epochs that every run recorded are summarised, so every row averages the same seeds.
    """
    if not runs:
        raise ValueError("runs is empty; load the plane files with load_runs first")
    rows = []
    for name, part, size in recorded_trajectories(runs):
        if (estimator is not None and (name != estimator or size != subset)) or (split is not None and part != split):
            continue
        per_run = [{point.epoch: point for point in trajectory(run, estimator=name, split=part, subset=size)} for run in runs]
        shared = sorted(set.intersection(*(set(points) for points in per_run)))
        for epoch in shared:
            points = [points[epoch] for points in per_run]
            values = [point.value for point in points]
            zy = [point.i_zy for point in points if point.i_zy is not None]
            rows.append(SeedSummaryRow(
                name, part, size, epoch, len(points), float(np.mean(values)), _spread(values),
                float(np.mean([point.upper - point.lower for point in points])), sum(point.saturated for point in points),
                float(np.mean(zy)) if len(zy) == len(points) else None, _spread(zy) if len(zy) == len(points) else None,
                float(np.mean([point.lower for point in points])), float(np.mean([point.upper for point in points]))))
    return rows


@dataclass(frozen=True)
class PairedChange:
    """The change of a per-input quantity between two epochs on the same N inputs (nats):
    ``change`` = mean(after_i - before_i), ``stderr`` = std(after_i - before_i) / sqrt(N),
    ``z`` = change / stderr, ``resolved`` when |z| > PAIRED_Z."""

    change: float
    stderr: float
    z: float
    n: int
    resolved: bool


def paired_change(before: np.ndarray, after: np.ndarray) -> PairedChange:
    """The change between two epochs as the mean of per-input differences, with its standard error.

    before, after: shape (N,), the per-input terms of the same N inputs at two epochs (e.g. the
    tracker's per-input terms of the lower estimate of I(X;Z), whose mean is that estimate),
    nats. The differences d_i = after_i - before_i are independent over inputs (each input's
    terms depend on its own noise draws and, to first order, not on the others'; see
    :mod:`infodrop.mi.band`), so std(d)/sqrt(N) is the standard error of their mean however
    strongly the two epochs depend on each other. It is sharper than comparing the two bands,
    which treat the epochs as independent: the between-input variation that the two epochs
    share cancels in d_i.
    """
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    if before.ndim != 1 or after.shape != before.shape:
        raise ValueError(f"before and after must be 1-D arrays of the same N inputs, got shapes {before.shape} and {after.shape}")
    if before.shape[0] < 2:
        raise ValueError(f"before and after need at least 2 inputs for a standard error, got {before.shape[0]}")
    if not (np.isfinite(before).all() and np.isfinite(after).all()):
        raise ValueError("before and after hold NaN or inf; per-input terms of a saturated or broken estimate cannot be paired")
    difference = after - before
    change = float(difference.mean())
    stderr = float(difference.std(ddof=1)) / math.sqrt(difference.shape[0])
    z = change / stderr if stderr > 0 else (math.inf if change > 0 else -math.inf if change < 0 else 0.0)
    return PairedChange(change, stderr, z, int(difference.shape[0]), abs(z) > PAIRED_Z)


def _paired_fall(run: Run, peak: Point, end: Point, split: str, subset: int | None) -> PairedChange | None:
    """The paired change end - peak when the run's per-input terms of both epochs are on file
    (for a subset size: the mean over its subsets of the per-input terms)."""
    def terms(epoch: int) -> np.ndarray | None:
        if subset is None:
            return run.terms.get(terms_key(epoch, split))
        parts = [value for key, value in run.terms.items() if key.startswith(f"{epoch}/{split}/subset{subset}/")]
        return np.mean(parts, axis=0) if parts else None

    before, after = terms(peak.epoch), terms(end.epoch)
    if before is None or after is None or before.shape != after.shape:
        return None
    return paired_change(before, after)


@dataclass(frozen=True)
class RunVerdict:
    """One seed: its peak after epoch 0 and its end (nats), the fall peak - end, how the fall was
    tested ("paired" or "bands") and the outcome."""

    seed: int
    peak: Point
    end: Point
    fall: float
    fall_stderr: float | None
    test: str
    resolved: bool
    verdict: str


@dataclass(frozen=True)
class Verdict:
    """The setting's verdict and the numbers behind it (nats)."""

    verdict: str
    reason: str
    estimator: str
    split: str
    subset: int | None
    seeds: int
    compressing: int
    untellable: int
    mean_fall: float
    spread: float
    runs: tuple[RunVerdict, ...]

    def row(self) -> dict:
        """The verdict as one row of a table."""
        return {"estimator": self.estimator, "split": self.split, "subset": "whole layer" if self.subset is None else f"k={self.subset}",
                "seeds": self.seeds, "compressing": self.compressing, "untellable": self.untellable,
                "mean_fall": self.mean_fall, "spread": self.spread, "verdict": self.verdict}


def _run_verdict(run: Run, points: list[Point], split: str, subset: int | None) -> RunVerdict:
    trained = [point for point in points if point.epoch > 0] or points
    peak = max(trained, key=lambda point: point.value)
    end = trained[-1]
    paired = _paired_fall(run, peak, end, split, subset) if peak is not end else None
    fall = peak.value - end.value
    if paired is not None:
        test, resolved, fall_stderr = "paired", -paired.change > PAIRED_Z * paired.stderr, paired.stderr
    else:
        test, resolved, fall_stderr = "bands", end.upper < peak.lower, None
    if peak.saturated or end.saturated:
        verdict = "cannot be told"
    else:
        verdict = "compresses" if peak is not end and resolved else "does not compress"
    return RunVerdict(run.seed, peak, end, fall, fall_stderr, test, resolved, verdict)


def compression_verdict(plane_files: Iterable[str | os.PathLike] | Sequence[Run], *, estimator: str = "auto",
                        split: str = "train", subset: int | None = None, min_seeds: int = MIN_SEEDS) -> Verdict:
    """Does this setting compress? A criterion fixed before looking at any run.

    **One run** (one seed) compresses when its end lies resolved below its maximum after the
    fitting phase. The fitting phase is the stretch from the first trained epoch to the peak,
    the largest point estimate over the recorded epochs after epoch 0 (the untrained network);
    the end is the last recorded epoch. The fall peak - end is *resolved* when

    - per-input terms of both epochs are on file (``plane_terms.npz``): the paired change
      (:func:`paired_change`) is below -2 standard errors;
    - else: the end's band lies wholly below the peak's band (upper(end) < lower(peak)); for
      binning, which has no band, the point itself.

    A run whose peak or end is saturated (the estimate measures N, not the network) cannot be
    told; a run whose peak is its end does not compress.

    **The setting** compresses when a strict majority of all its seeds compress *and* the mean
    fall over the tellable seeds exceeds the spread between seeds (the sample standard deviation
    over seeds of the end value: the randomness of training, which the bands do not cover). It
    cannot be told with fewer than ``min_seeds`` seeds, or when at most half of the seeds can be
    told. Otherwise it does not compress.

    plane_files: plane.json paths of one setting, one per seed, or runs from :func:`load_runs`.
    estimator: ``"auto"`` or ``"binning:<bins>"``; split: ``"train"`` or ``"test"``;
    subset: a recorded unit-subset size k (the mean over its subsets), or None for the layer.

    Returns a :class:`Verdict`: ``verdict`` (one of "compresses", "does not compress",
    "cannot be told"), ``reason`` in words, the counts, ``mean_fall``, ``spread`` and each run's
    :class:`RunVerdict`.
    """
    given = list(plane_files)
    runs = given if given and all(isinstance(item, Run) for item in given) else load_runs(given)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    verdicts = []
    for run in runs:
        points = trajectory(run, estimator=estimator, split=split, subset=subset)
        if not points:
            what = f"subset={subset}" if subset is not None else f"estimator={estimator!r}"
            raise ValueError(f"plane file {run.path} has no {what} points on split {split!r}; choose one it recorded")
        verdicts.append(_run_verdict(run, points, split, subset))
    tellable = [item for item in verdicts if item.verdict != "cannot be told"]
    compressing = sum(item.verdict == "compresses" for item in verdicts)
    mean_fall = float(np.mean([item.fall for item in tellable])) if tellable else math.nan
    spread = _spread([item.end.value for item in tellable]) if tellable else math.nan
    seeds = len(verdicts)
    if seeds < min_seeds:
        verdict, reason = "cannot be told", f"{seeds} seed(s); a claim about training needs at least {min_seeds}"
    elif 2 * len(tellable) <= seeds:
        verdict, reason = "cannot be told", f"the peak or end is saturated in {seeds - len(tellable)} of {seeds} seeds"
    elif 2 * compressing > seeds and mean_fall > spread:
        verdict, reason = "compresses", (f"{compressing} of {seeds} seeds end resolved below their peak; mean fall "
                                         f"{mean_fall:.3f} > spread between seeds {spread:.3f}")
    elif 2 * compressing > seeds:
        verdict, reason = "does not compress", (f"{compressing} of {seeds} seeds fall resolved, but the mean fall "
                                                f"{mean_fall:.3f} is within the spread between seeds {spread:.3f}")
    else:
        verdict, reason = "does not compress", f"only {compressing} of {seeds} seeds end resolved below their peak"
    return Verdict(verdict, reason, estimator, split, subset, seeds, compressing, seeds - len(tellable), mean_fall, spread,
                   tuple(verdicts))
