"""Print the numbers of information-plane files: start, peak and end of each trajectory with its
band, the saturated points, and whether a fall from the peak is resolved by the bands.

    python scripts/plane_summary.py runs/mnist/RUN/plane.json [more plane.json ...] [--table]

For every file, split (train, test) and estimator (the tracker's 'auto' estimate, each binning bin
count, each unit-subset size k), one row per quantity, in nats:

    I(X;Z)  start [lower, upper]  peak @epoch [..]  low @epoch [..]  end @epoch [..]  saturated m/n  fall  rise

``start`` is the first recorded epoch (0 = the initialisation), ``peak`` the largest estimate
after it, ``low`` the smallest after it, ``end`` the last. ``fall`` compares the end with the
peak (a decrease after a rise: compression), ``rise`` the end with the low (an increase after a
decrease), each as:

- ``resolved`` when the end's upper band edge lies below the peak's lower edge (the decrease is
  larger than both bands: compression that the estimate can see);
- ``within band`` when they overlap (the data cannot tell a fall from noise);
- ``none`` when the end is the peak (the low);
- ``saturated`` when the peak or the end is saturated (pressed against log N: the number
  measures the sample size, so no fall or rise can be read off it).

``--table`` adds, per file and split, one line per recorded epoch with I(X;Z) [lower, upper] of
every estimator (``S`` marks a saturated point), for reading a dip in the middle of a run.

Points without a band (binning) are compared by their values only and marked ``no band``. For
the unit subsets the band of a point is the mean of its subsets' band edges. The bands treat the
two epochs as independent; the tracker evaluates the same inputs at every epoch, so the data part
of the band is shared and the test is conservative.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def _point(values: dict | None, key: str) -> tuple[float, float | None, float | None, bool | None] | None:
    """(value, lower, upper, saturated) of one estimator's entry; None when it has no value."""
    if values is None:
        return None
    if key == "i_xz" and "mean" in values:  # a unit-subset entry
        lower = values.get("lower") or []
        upper = values.get("upper") or []
        return (
            float(values["mean"]),
            sum(lower) / len(lower) if lower else None,
            sum(upper) / len(upper) if upper else None,
            values.get("saturated"),
        )
    if key == "i_zy" and "mean" in values:
        return None if values.get("i_zy") is None else (float(values["i_zy"]), None, None, None)
    value = values.get(key)
    if value is None:
        return None
    return float(value), values.get(f"{key}_lower"), values.get(f"{key}_upper"), values.get("saturated") if key == "i_xz" else None


def _series(records: list, split: str, path: tuple[str, ...], key: str) -> list[tuple[int, tuple]]:
    out = []
    for record in records:
        values: Any = record.get(split)
        for part in path:
            values = None if values is None else values.get(part)
        point = _point(values, key)
        if point is not None and math.isfinite(point[0]):
            out.append((record["epoch"], point))
    return out


def _fmt(point: tuple) -> str:
    value, lower, upper, saturated = point
    band = "" if lower is None or upper is None else f" [{lower:.3f}, {upper:.3f}]"
    mark = " S" if saturated else ""
    return f"{value:.3f}{band}{mark}"


def _change(high: tuple, low: tuple, same: bool) -> str:
    """Is ``low`` (value, lower, upper, saturated) below ``high`` by more than both bands?"""
    if high[3] or low[3]:
        return "saturated"
    if same:
        return "none"
    if high[1] is None or low[2] is None:
        return f"no band ({low[0] - high[0]:+.3f})"
    return "resolved" if low[2] < high[1] else "within band"


def epoch_table(path: str | Path) -> list[str]:
    """Per split, one line per recorded epoch: I(X;Z) [lower, upper] of every estimator."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    records = sorted(document["records"], key=lambda record: record["epoch"])
    lines = [f"{path}: I(X;Z) per epoch [band], S = saturated"]
    for split in ("train", "test"):
        if not records or split not in records[0]:
            continue
        first = records[0][split]
        columns = ([("auto", ("auto",))] if "auto" in first else []) + \
                  [(f"binning {b}", ("binning", b)) for b in (first.get("binning") or {})] + \
                  [(f"subsets k={k}", ("subsets", k)) for k in (first.get("subsets") or {})]
        lines.append(f"  {split}: epoch | " + " | ".join(name for name, _ in columns))
        for record in records:
            cells = []
            for _, where in columns:
                values: Any = record.get(split)
                for part in where:
                    values = None if values is None else values.get(part)
                point = _point(values, "i_xz")
                cells.append("-" if point is None else _fmt(point))
            lines.append(f"    {record['epoch']:>3d} | " + " | ".join(cells))
    return lines


def summarise(path: str | Path) -> list[str]:
    """The lines printed for one plane file."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    records = sorted(document["records"], key=lambda record: record["epoch"])
    counts = document.get("sample_counts", {})
    lines = [
        f"{path}",
        f"  layer {document.get('layer')!r} ({document.get('dropout_kind')} dropout"
        + (f", variance {document['variance']}" if document.get("variance") is not None else "")
        + (f", prior {document['prior']}" if document.get("prior") else "")
        + f"), inputs {counts}, epochs {[record['epoch'] for record in records]}",
    ]
    estimators: list[tuple[str, tuple[str, ...]]] = []
    first = records[0] if records else {}
    for split in ("train", "test"):
        if split in first:
            if "auto" in first[split]:
                estimators.append((f"{document.get('estimators', {}).get('auto', 'auto')}", ("auto",)))
            for bins in (first[split].get("binning") or {}):
                estimators.append((f"binning {bins} bins", ("binning", bins)))
            for k in (first[split].get("subsets") or {}):
                estimators.append((f"subsets k={k}", ("subsets", k)))
            break
    for split in ("train", "test"):
        if split not in first:
            continue
        log_n = math.log(counts[split]) if split in counts else None
        lines.append(f"  {split} (log N = {log_n:.3f}):" if log_n else f"  {split}:")
        for name, where in estimators:
            for key, label in (("i_xz", "I(X;Z)"), ("i_zy", "I(Z;Y)")):
                series = _series(records, split, where, key)
                if not series:
                    continue
                start = series[0]
                later = series[1:] or series
                peak = max(later, key=lambda item: item[1][0])
                low = min(later, key=lambda item: item[1][0])
                end = series[-1]
                row = (f"    {name:<22s} {label}  start {_fmt(start[1])}   peak @{peak[0]} {_fmt(peak[1])}   "
                       f"low @{low[0]} {_fmt(low[1])}   end @{end[0]} {_fmt(end[1])}")
                if key == "i_xz":
                    flags = [point[3] for _, point in series if point[3] is not None]
                    if flags:
                        row += f"   saturated {sum(flags)}/{len(flags)}"
                    row += f"   fall: {_change(peak[1], end[1], peak[0] == end[0])}"
                    row += f"   rise: {_change(end[1], low[1], low[0] == end[0])}"
                lines.append(row)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("planes", nargs="+", help="plane.json files written by the InformationPlane tracker")
    parser.add_argument("--table", action="store_true", help="also print I(X;Z) of every recorded epoch")
    args = parser.parse_args(argv)
    for path in args.planes:
        if not Path(path).is_file():
            parser.error(f"planes: {path} is not a file; give the plane.json of a run (runs/<experiment>/<run>/plane.json)")
        try:
            lines = summarise(path) + (epoch_table(path) if args.table else [])
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            parser.error(f"planes: {path} is not a plane file the tracker wrote ({type(error).__name__}: {error})")
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
