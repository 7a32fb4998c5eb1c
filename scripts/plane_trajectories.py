"""Draw I(X;Z) and I(Z;Y) against the epoch for several plane files on one figure, with bands.

    python scripts/plane_trajectories.py OUT.png "LABEL=runs/.../plane.json[::ESTIMATOR]" ... \
        [--estimator auto | binning:BINS | subsets:K] [--split train|test] [--log] [--title TEXT]

ESTIMATOR after ``::`` overrides ``--estimator`` for that series, so one figure can hold a whole
layer beside its unit subsets.

The information plane puts two estimates against each other; when runs differ by orders of
magnitude in I(X;Z) (information dropout at several beta) or when compression is the question,
the trajectory in time is easier to read. Left panel: I(X;Z) per recorded epoch, its band
(``i_xz_lower`` to ``i_xz_upper``; for unit subsets the mean of the subsets' band edges) shaded,
saturated points hollow, log N dotted (grey) for the estimators it caps (mixture, subsets, binning).
Right panel: I(Z;Y) likewise, its band capped at H(Y) (its ceiling, dash-dotted). Values in nats. Writes OUT (PNG) and prints its path.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def _entry(split_values: dict, estimator: str) -> dict | None:
    if estimator == "auto":
        return split_values.get("auto")
    kind, _, key = estimator.partition(":")
    return (split_values.get(kind) or {}).get(key)


def _series(document: dict, split: str, estimator: str) -> dict[str, np.ndarray]:
    rows = {name: [] for name in ("epoch", "xz", "xz_lo", "xz_hi", "zy", "zy_lo", "zy_hi", "saturated")}
    for record in sorted(document["records"], key=lambda item: item["epoch"]):
        values = record.get(split)
        entry = None if values is None else _entry(values, estimator)
        if entry is None:
            continue
        if "mean" in entry:  # a unit-subset point: mean over the subsets, band from their edges
            xz, zy = entry["mean"], entry.get("i_zy")
            lower, upper = entry.get("lower") or [], entry.get("upper") or []
            xz_lo = float(np.mean(lower)) if lower else np.nan
            xz_hi = float(np.mean(upper)) if upper else np.nan
            zy_lo = zy_hi = np.nan
        else:
            xz, zy = entry.get("i_xz"), entry.get("i_zy")
            xz_lo, xz_hi = entry.get("i_xz_lower"), entry.get("i_xz_upper")
            zy_lo, zy_hi = entry.get("i_zy_lower"), entry.get("i_zy_upper")
        rows["epoch"].append(record["epoch"])
        for name, value in (("xz", xz), ("xz_lo", xz_lo), ("xz_hi", xz_hi), ("zy", zy), ("zy_lo", zy_lo), ("zy_hi", zy_hi)):
            rows[name].append(np.nan if value is None else float(value))
        rows["saturated"].append(bool(entry.get("saturated")))
    return {name: np.asarray(values) for name, values in rows.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("planes", nargs="+", help="LABEL=path/to/plane.json[::ESTIMATOR], one per series")
    parser.add_argument("--estimator", default="auto", help="auto, binning:BINS (e.g. binning:30) or subsets:K (e.g. subsets:4)")
    parser.add_argument("--split", default="train", choices=("train", "test"))
    parser.add_argument("--log", action="store_true", help="logarithmic I(X;Z) axis")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    def known(name: str) -> bool:
        kind, _, key = name.partition(":")
        return name == "auto" or (kind in ("binning", "subsets") and bool(key))

    if not known(args.estimator):
        parser.error(f"--estimator must be auto, binning:BINS or subsets:K, got {args.estimator!r}")

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.9), layout="constrained")
    left, right = figure.subplots(1, 2)
    ceilings: set[float] = set()
    for index, item in enumerate(args.planes):
        label, sep, rest = item.partition("=")
        path, _, estimator = rest.partition("::")
        estimator = estimator or args.estimator
        if not sep or not Path(path).is_file():
            parser.error(f"planes: {item!r} must be LABEL=path to an existing plane.json")
        if not known(estimator):
            parser.error(f"planes: {item!r}: the estimator after :: must be auto, binning:BINS or subsets:K")
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        data = _series(document, args.split, estimator)
        if len(data["epoch"]) == 0:
            parser.error(f"planes: {path} has no {estimator} points on the {args.split} split")
        colour = f"C{index % 10}"
        h_y = next((record[args.split].get("h_y") for record in document["records"] if args.split in record), None)
        for ax, key in ((left, "xz"), (right, "zy")):
            epochs, values = data["epoch"], data[key]
            lower, upper = data[f"{key}_lo"], data[f"{key}_hi"]
            if key == "zy" and h_y is not None:
                upper = np.minimum(upper, h_y)  # I(Z;Y) <= H(Y): an upper estimate above it says nothing more
            if np.isfinite(lower).any() and np.isfinite(upper).any():
                ax.fill_between(epochs, lower, upper, color=colour, alpha=0.2, linewidth=0)
            ax.plot(epochs, values, color=colour, linewidth=1.2, label=label if key == "xz" else None)
            hollow = data["saturated"] if key == "xz" else np.zeros(len(epochs), dtype=bool)
            ax.scatter(epochs[~hollow], values[~hollow], s=16, color=colour, zorder=3)
            ax.scatter(epochs[hollow], values[hollow], s=22, facecolors="white", edgecolors=colour, linewidths=1.2, zorder=3)
        if h_y is not None and index == 0:
            right.axhline(h_y, color="0.4", linestyle="-.", linewidth=1.0)
        kind = document.get("dropout_kind")
        n = (document.get("sample_counts") or {}).get(args.split)
        if n and (estimator != "auto" or kind == "gaussian") and math.log(n) not in ceilings:
            ceilings.add(math.log(n))
            left.axhline(math.log(n), color="0.4", linestyle=":", linewidth=1.0)
    if args.log:
        left.set_yscale("log")
    left.set_xlabel("epoch")
    right.set_xlabel("epoch")
    left.set_ylabel("I(X;Z) [nats]")
    right.set_ylabel("I(Z;Y) [nats]")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.legend(loc="outside lower center", ncol=3, fontsize=8)
    note = (f"{args.split} split; shaded: band (lower to upper estimate; I(Z;Y) capped at H(Y)); hollow: saturated\n"
            "dotted: log N (ceiling of mixture, subset and binning estimates); dash-dotted: H(Y)")
    figure.suptitle(f"{args.title}\n{note}" if args.title else note, fontsize=9)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
