"""What a plane says in words and tables: the CSV twin of a plane file, how many of its points
are saturated, and the one cost line printed before the first record. Values are in nats.

Saturation. From N inputs neither the plain mixture estimate nor a plug-in binning estimate of
I(X;Z) can exceed log N; a point flagged ``saturated`` is pressed against that ceiling and
measures the sample size, not the network: read it as "at least about log N".

Cost. The mixture estimator scores N^2 noise_samples pairs (sample of Z, mixture component) per
split and record, plus O(N^2 d) for the pairwise bracket (``bounds``); :func:`cost_line` says how
many and how long that takes on the device in use, from a short calibration there
(:func:`infodrop.mi.mixture_cost`). It is printed once per process.
"""

from __future__ import annotations

import csv as _csv
import io as _io
from collections.abc import Mapping
from typing import Any

import numpy as np

from infodrop.mi import mixture_cost
from infodrop.mi.cost import format_duration
from infodrop.plane.record import MixtureEstimate, PlaneDocument
from infodrop.plane.settings import PlaneSettings

__all__ = ["CSV_COLUMNS", "announce_cost", "cost_line", "pairs_per_record", "plane_cost", "records_to_csv", "saturation_counts",
           "saturation_summary"]

# The cost line is printed once per process: a script that builds several trackers (a sweep in one
# process, a comparison of two networks) would otherwise repeat it before each one's first record.
_COST_LINE_PRINTED = False


def announce_cost(line: Any) -> None:
    """Print the cost line (``line()`` computes it) unless this process has printed one."""
    global _COST_LINE_PRINTED
    if not _COST_LINE_PRINTED:
        _COST_LINE_PRINTED = True
        print(line(), flush=True)


def _duration(seconds: float) -> str:
    return format_duration(seconds, seconds_below=60.0, minutes_below=3600.0, seconds_spec=".2g")


def pairs_per_record(settings: PlaneSettings, kind: str, sample_counts: Mapping[str, int]) -> int:
    """Pairs (sample of Z, mixture component) the mixture estimator scores in one record:
    N^2 * noise_samples per split for the whole layer, and as many again for each of the
    ``subset_draws`` subsets of each size in ``subsets``. 0 without a mixture estimate."""
    if kind != "gaussian" or "auto" not in settings.estimators:
        return 0
    estimates = 1 + len(settings.subsets) * settings.subset_draws
    return sum(n * n * settings.noise_samples * estimates for n in sample_counts.values())


def plane_cost(settings: PlaneSettings, kind: str, sample_counts: Mapping[str, int], units: int, *, device: Any,
               processes: int = 1, n_classes: int = 0) -> dict:
    """Expected cost of one record on ``device``: ``{"pairs", "bound_pairs", "seconds", "device",
    "processes", "pairs_per_second"}``, from :func:`infodrop.mi.mixture_cost` with a short
    calibration pass on the device (the whole layer of ``units`` units shared by ``processes``,
    each subset size at its own width, not shared). ``seconds`` is None without a mixture estimate."""
    out = {"pairs": pairs_per_record(settings, kind, sample_counts), "bound_pairs": 0, "seconds": None,
           "device": str(device), "processes": processes, "pairs_per_second": None}
    if out["pairs"] == 0:
        return out
    seconds = 0.0
    for n in sample_counts.values():
        whole = mixture_cost(n, units, settings.noise_samples, bounds=settings.bounds, n_classes=n_classes,
                             world_size=processes, device=device, calibrate=True)
        seconds += whole.seconds
        out["bound_pairs"] += whole.bound_pairs
        out["pairs_per_second"] = out["pairs_per_second"] or whole.pairs_per_second
    for k in settings.subsets:
        # The subset pass has no bounds, so its time is linear in the pairs: calibrate once.
        part = mixture_cost(max(sample_counts.values()), k, settings.noise_samples, n_classes=n_classes, device=device,
                            calibrate=True)
        pairs = sum(n * n * settings.noise_samples for n in sample_counts.values())
        seconds += settings.subset_draws * pairs / part.pairs_per_second
    out["seconds"] = seconds
    return out


def cost_line(settings: PlaneSettings, kind: str, sample_counts: Mapping[str, int], units: int, *, device: Any,
              processes: int = 1, n_classes: int = 0) -> str:
    """The one line printed before the first record: pairs and expected time per record."""
    counts = " + ".join(f"{n} {split}" for split, n in sample_counts.items())
    if pairs_per_record(settings, kind, sample_counts) == 0:
        return (f"plane cost: no mixture estimate ({kind} dropout, estimators {list(settings.estimators)}); "
                f"each record is O(N) on {counts} inputs")
    cost = plane_cost(settings, kind, sample_counts, units, device=device, processes=processes, n_classes=n_classes)
    bound = f" + {cost['bound_pairs']:.3g} pairs of the pairwise bracket" if cost["bound_pairs"] else ""
    subsets = f", {len(settings.subsets)} subset sizes x {settings.subset_draws} subsets" if settings.subsets else ""
    shared = f", shared by {cost['processes']} processes" if cost["processes"] > 1 else ""
    return (f"plane cost: {cost['pairs']:.3g} pairs{bound} per record ({counts} inputs, {settings.noise_samples} noise "
            f"samples{subsets}{shared}), about {_duration(cost['seconds'])} per record on {cost['device']} "
            f"(calibrated at {cost['pairs_per_second']:.3g} pairs/s)")


CSV_COLUMNS = ["epoch", "split", "estimator", "bins", "k", "i_xz", "i_zy", "i_xz_lower", "i_xz_upper", "i_zy_lower",
               "i_zy_upper", "log_n", "saturated", "i_xz_std", "i_xz_bounds_lower", "i_xz_bounds_upper",
               "i_zy_bounds_lower", "i_zy_bounds_upper", "sensitivity"]


def records_to_csv(document: PlaneDocument | dict) -> str:
    """One CSV row per (epoch, split, estimator, bins or subset size k), columns ``CSV_COLUMNS``:
    the estimates, their band (``i_xz_lower``..``i_zy_upper``), ``log_n`` and ``saturated``, the
    spread over subsets (``i_xz_std``) and the pairwise bracket of the mixture
    (``i_xz_bounds_*``, ``i_zy_bounds_*``) and ``sensitivity``, how many nats the mixture
    estimate moves per nat of true change (1: it follows the truth; below 1/2: saturated; the
    mean over the subsets for a subset size); empty where a value does not exist or was not
    recorded (files written before bands were recorded)."""
    if isinstance(document, dict):
        document = PlaneDocument.from_json(document)
    buffer = _io.StringIO()
    writer = _csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, restval="")
    writer.writeheader()

    def row(**values: Any) -> None:
        writer.writerow({key: ("" if value is None else value) for key, value in values.items()})

    for record in document.records:
        for split, values in record.splits().items():
            auto = values.auto
            if auto is not None:
                xz = getattr(auto, "i_xz_bounds", None) or (None, None)
                zy = getattr(auto, "i_zy_bounds", None) or (None, None)
                row(epoch=record.epoch, split=split, estimator="auto", i_xz=auto.i_xz, i_zy=auto.i_zy,
                    **{key: getattr(auto, key) for key in ("i_xz_lower", "i_xz_upper", "i_zy_lower", "i_zy_upper", "log_n", "saturated")},
                    i_xz_bounds_lower=xz[0], i_xz_bounds_upper=xz[1], i_zy_bounds_lower=zy[0], i_zy_bounds_upper=zy[1],
                    sensitivity=getattr(auto, "i_xz_sensitivity", None))
            for b, point in (values.binning or {}).items():
                row(epoch=record.epoch, split=split, estimator="binning", bins=b, i_xz=point.i_xz, i_zy=point.i_zy,
                    log_n=point.log_n, saturated=point.saturated)
            for k, point in (values.subsets or {}).items():
                row(epoch=record.epoch, split=split, estimator="subsets", k=k, i_xz=point.mean, i_zy=point.i_zy,
                    i_xz_std=point.std, log_n=point.log_n, saturated=point.saturated,
                    sensitivity=float(np.mean(point.sensitivity)) if point.sensitivity else None)
    return buffer.getvalue()


# ------------------------------------------------------------------------------- saturation


def _saturation_flags(document: PlaneDocument) -> dict[str, list[tuple[str, bool | None]]]:
    """For each estimator (``auto``, ``binning <b> bins``): one (split, saturated) per recorded point;
    saturated is None in files written before it was recorded."""
    points: dict[str, list[tuple[str, bool | None]]] = {}
    for record in document.sorted_records():
        for split, values in record.splits().items():
            if values.auto is not None:
                points.setdefault("auto", []).append((split, getattr(values.auto, "saturated", None)))
            for b, point in sorted((values.binning or {}).items(), key=lambda item: int(item[0])):
                points.setdefault(f"binning {b} bins", []).append((split, point.saturated))
    return points


def saturation_counts(document: PlaneDocument | dict) -> dict[str, dict[str, int]]:
    """How many recorded points are saturated, per estimator and split:
    ``{estimator: {"saturated", "points", "unknown", "train", "train_points", ...}}`` (``unknown``
    counts points of files written before saturation was recorded)."""
    if isinstance(document, dict):
        document = PlaneDocument.from_json(document)
    counts: dict[str, dict[str, int]] = {}
    for name, points in _saturation_flags(document).items():
        entry = {"saturated": 0, "points": len(points), "unknown": 0}
        for split, flag in points:
            entry.setdefault(split, 0)
            entry[f"{split}_points"] = entry.get(f"{split}_points", 0) + 1
            if flag is None:
                entry["unknown"] += 1
            elif flag:
                entry["saturated"] += 1
                entry[split] += 1
        counts[name] = entry
    return counts


def saturation_summary(document: PlaneDocument | dict) -> list[str]:
    """Sentences for a run's summary: how many recorded points are saturated (pressed against
    log N, so they measure the sample size and read "at least about log N"), per estimator."""
    if isinstance(document, dict):
        document = PlaneDocument.from_json(document)
    counts = saturation_counts(document)
    if not counts:
        return ["saturation: no points recorded"]
    auto_name = document.estimators.get("auto", "auto")
    lines = []
    for name, entry in counts.items():
        label = auto_name if name == "auto" else name
        if entry["unknown"] == entry["points"]:
            lines.append(f"{label}: saturation not recorded (file written before it was)")
            continue
        splits = ", ".join(f"{split} {entry[split]}/{entry[f'{split}_points']}" for split in ("train", "test") if f"{split}_points" in entry)
        known = entry["points"] - entry["unknown"]
        if entry["saturated"] == 0:
            verdict = "none is pressed against log N"
        elif entry["saturated"] == known:
            verdict = "all are pressed against log N: they measure the sample size, not the network"
        else:
            verdict = "those are pressed against log N and read only as 'at least about log N'"
        lines.append(f"{label}: {entry['saturated']} of {known} recorded points saturated ({splits}); {verdict}")
    closest = _closest_to_saturation(document)
    if closest is not None:
        lines.append(closest)
    return lines


def _closest_to_saturation(document: PlaneDocument) -> str | None:
    """The unsaturated mixture point with the lowest sensitivity, in words: 'not saturated' does
    not mean unbiased, and a point that moves 0.7 nats per nat of truth reads low."""
    points = [(record.epoch, split, values.auto.i_xz_sensitivity)
              for record in document.sorted_records() for split, values in record.splits().items()
              if isinstance(values.auto, MixtureEstimate) and values.auto.i_xz_sensitivity is not None
              and not values.auto.saturated]
    if not points:
        return None
    epoch, split, sensitivity = min(points, key=lambda point: point[2])
    return (f"sensitivity of the unsaturated mixture points (nats moved per nat of true change, 1 = follows the truth, "
            f"< 0.5 = saturated): lowest {sensitivity:.2f} ({split}, epoch {epoch}); not saturated does not mean "
            f"unbiased: points well below 1 can still read several percent low")


