"""The figures of the toy problem that validates the estimators (Adilova, Geiger & Fischer, ICLR
2023, Section 4 and Appendix A.7): convergence in N, the entropy bounds and the comparison of
estimators. Rows are the dicts that :mod:`infodrop.experiments.toy` writes to its CSV files (one
dict per CSV line); all values in nats. Each function writes one PNG atomically and returns its path.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infodrop.io import atomic_path

__all__ = ["TOY_NAMES", "mean_sd", "plot_convergence", "plot_entropy_bounds", "plot_estimator_comparison"]


def _toy_figure(n_rows: int, n_cols: int, *, width: float = 4.2, height: float = 3.4):
    # A bare Figure renders with the Agg canvas and never touches pyplot's global state.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * n_cols, height * n_rows))
    return figure, figure.subplots(n_rows, n_cols, squeeze=False)


def _toy_save(figure: Any, path: str | os.PathLike) -> Path:
    target = Path(path)
    with atomic_path(target) as temporary:
        figure.savefig(temporary, dpi=150, bbox_inches="tight", format="png")
    return target


def _toy_group(rows, keys, value):
    """Mean and sample standard deviation of ``value`` over rows that share ``keys`` (NaN dropped)."""
    groups: dict = {}
    for row in rows:
        number = float(row[value])
        if not math.isnan(number):
            groups.setdefault(tuple(row[k] for k in keys), []).append(number)
    return {key: mean_sd(values) for key, values in groups.items()}


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of ``values`` with NaN left out (sd 0 for one value;
    both NaN for none)."""
    array = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def _toy_legend(figure: Any, axes: Any, *, ncol: int = 4) -> None:
    """One legend below all panels (first handle per label), so that no legend covers data."""
    unique: dict = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            unique.setdefault(label, handle)
    figure.legend(list(unique.values()), list(unique.keys()), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                  ncol=min(ncol, len(unique)), fontsize=8, frameon=False)


def _over_seeds(rows: Sequence[dict]) -> str:
    """What the markers and bars of a toy figure are, in words that match the seeds of ``rows``."""
    seeds = len({r.get("seed") for r in rows})
    return "one seed, no spread" if seeds == 1 else f"mean ± sd over {seeds} seeds"


def plot_convergence(rows: Sequence[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Figs. 2 and 9 of Adilova et al. (2023): our estimates of h(Z|X) (top row) and I(X;Z)
    (bottom row) against the number N of inputs, one column per input dimension n, mean ± sd over
    seeds, with the quadrature truth as a dashed line and log N (the most the plain mixture
    estimate can give) dotted, inside the axes. Both rows share the N axis; where I(X;Z) was
    computed for fewer N (``mixture_max_samples``) the figure says so. ``rows``: dicts with keys
    dim, n_samples, seed, variance, h_z_given_x, i_xz, h_z_given_x_truth, i_xz_truth (nats),
    optionally i_xz_loo (the leave-one-out variant, drawn too). Writes a PNG (150 dpi) to ``path``
    and returns it.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; pass the rows of at least one run")
    dims = sorted({int(r["dim"]) for r in rows})
    figure, axes = _toy_figure(2, len(dims))
    quantities = (
        ("h_z_given_x", "h(Z|X) [nats]", [("h_z_given_x", "MC estimate of h(Z|X)", "tab:blue", "o")]),
        ("i_xz", "I(X;Z) [nats]", [("i_xz", "our estimate of I(X;Z) (plain mixture)", "tab:blue", "o"),
                                   ("i_xz_loo", "leave-one-out variant", "tab:orange", "s")]),
    )
    estimated = {key: sorted({int(r["n_samples"]) for r in rows if not np.isnan(float(r.get(key, np.nan)))})
                 for key in ("h_z_given_x", "i_xz")}
    all_sizes = sorted({int(r["n_samples"]) for r in rows})
    for row_index, (key, ylabel, series) in enumerate(quantities):
        for column, dim in enumerate(dims):
            ax = axes[row_index][column]
            for value, label, color, marker in series:
                if value not in rows[0]:
                    continue
                stats = _toy_group(rows, ("dim", "n_samples"), value)
                points = sorted((n, m, s) for (d, n), (m, s) in stats.items() if d == dim)
                if points:
                    n, mean, sd = zip(*points)
                    ax.errorbar(n, mean, yerr=sd, marker=marker, ms=4, capsize=3, color=color, label=label)
            truth = next(float(r[f"{key}_truth"]) for r in rows if int(r["dim"]) == dim)
            ax.axhline(truth, color="black", ls="--", lw=1.2, label="quadrature truth")
            if key == "i_xz" and estimated["i_xz"]:
                # The plain mixture estimate cannot exceed about log N (own component included);
                # the y range takes it in, so the line stays inside the axes.
                sizes = estimated["i_xz"]
                ax.plot(sizes, np.log(sizes), color="gray", ls=":", lw=1.4, label="log N (ceiling of the plain mixture estimate)")
            ax.set_xscale("log")
            # One N axis for both rows, so a point of the top row sits above the same N below.
            ax.set_xlim(all_sizes[0] / 1.5, all_sizes[-1] * 1.5)
            ax.set_xlabel("number of inputs N")
            ax.set_ylabel(ylabel)
            ax.set_title(f"n = {dim}")
            ax.grid(alpha=0.3)
    variance = rows[0].get("variance")
    heading = title or f"Toy problem, Gaussian dropout variance {variance:g}: convergence ({_over_seeds(rows)})"
    if estimated["i_xz"] and estimated["i_xz"][-1] < all_sizes[-1]:
        heading += (f"\nh(Z|X) up to N = {all_sizes[-1]:,}; I(X;Z) only up to N = {estimated['i_xz'][-1]:,} "
                    "(the mixture costs N² per estimate)")
    figure.suptitle(heading)
    figure.tight_layout()
    _toy_legend(figure, axes)
    return _toy_save(figure, path)


def plot_entropy_bounds(rows: Sequence[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Figs. 3 and 8 of Adilova et al. (2023): the mixture estimate of h(Z) against the Gaussian
    (Ledoit-Wolf) upper bound, the Kolchinsky-Tracey pairwise bounds and the quadrature truth, against
    the dimension n at the largest N (left), and the same quantities minus the truth, one panel per
    N (right: one colour and marker per quantity, the same in every panel). ``rows``: dicts with keys
    dim, n_samples, seed, variance, h_z_mixture, h_z_gaussian_upper, h_z_pairwise_lower,
    h_z_pairwise_upper, h_z_truth (nats). Writes a PNG.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; pass the rows of at least one run")
    # The mixture estimate and the pairwise bounds are of h of the N-component mixture, which is
    # below h(Z) of the continuous input whenever N is small against exp(h(Z)): an "upper bound"
    # below the truth bounds that mixture, and the labels say so. The Gaussian bound uses a
    # covariance estimated from the samples, so it holds only up to that estimate's error.
    # Mixture estimate and pairwise bounds nearly coincide; distinct markers, line styles and a
    # small sideways offset keep each visible.
    series = (
        ("h_z_mixture", "mixture estimate (h of the N-component mixture)", "tab:blue", "o", "-", 0.0, 7),
        ("h_z_gaussian_upper", "Gaussian upper bound on h(Z) (Ledoit-Wolf covariance, estimated)", "tab:red", "s", "-", 0.0, 5),
        ("h_z_pairwise_upper", "pairwise upper bound (KL) on h of the N-component mixture", "tab:orange", "^", "--", -0.6, 5),
        ("h_z_pairwise_lower", "pairwise lower bound (Bhattacharyya) on h of the N-component mixture", "tab:green", "v", ":", 0.6, 5),
    )
    # Where curves coincide, the legend gives how far apart they are at most.
    def apart(key: str) -> str:
        gaps = [abs(float(r[key]) - float(r["h_z_mixture"])) for r in rows]
        gaps = [gap for gap in gaps if np.isfinite(gap)]
        return f" (within {max(gaps):.2g} nats of the mixture estimate)" if gaps else ""

    series = tuple((key, label + (apart(key) if key.startswith("h_z_pairwise") else ""), *rest)
                   for key, label, *rest in series)
    sizes = sorted({int(r["n_samples"]) for r in rows})
    truth = {int(r["dim"]): float(r["h_z_truth"]) for r in rows}
    dims = sorted(truth)
    figure, axes = _toy_figure(1, 1 + len(sizes), width=4.4, height=3.8)
    left = axes[0][0]
    largest = sizes[-1]
    for key, label, color, marker, style, shift, size in series:
        stats = _toy_group([r for r in rows if int(r["n_samples"]) == largest], ("dim",), key)
        points = sorted((d, m, s) for (d,), (m, s) in stats.items())
        if points:
            d, mean, sd = zip(*points)
            left.errorbar(np.asarray(d) + shift, mean, yerr=sd, marker=marker, ms=size, capsize=3, color=color, ls=style,
                          label=label, mfc="none" if marker in "^v" else color)
    left.plot(dims, [truth[d] for d in dims], color="black", lw=1.2, ls="-.", label="quadrature truth")
    left.set_xlabel("input dimension n")
    left.set_ylabel("h(Z) [nats]")
    left.set_title(f"N = {largest} inputs")
    left.grid(alpha=0.3)
    gaps = []
    for index, size in enumerate(sizes):
        ax = axes[0][index + 1]
        for key, label, color, marker, style, shift, marker_size in series:
            stats = _toy_group(rows, ("dim", "n_samples"), key)
            points = sorted((d, m - truth[d]) for (d, n), (m, _) in stats.items() if n == size)
            if points:
                d, gap = zip(*points)
                gaps += gap
                ax.plot(np.asarray(d) + shift, gap, marker=marker, ms=marker_size, color=color, ls=style, label=label,
                        mfc="none" if marker in "^v" else color)
        ax.axhline(0.0, color="black", lw=1.2, ls="-.")
        ax.set_xlabel("input dimension n")
        ax.set_ylabel("estimate − truth of h(Z) [nats]")
        ax.set_title(f"minus the truth, N = {size}")
        ax.grid(alpha=0.3)
    span = (min(gaps + [0.0]), max(gaps + [0.0]))
    pad = 0.05 * (span[1] - span[0] or 1.0)
    for index in range(len(sizes)):
        axes[0][index + 1].set_ylim(span[0] - pad, span[1] + pad)  # the same y axis for every N
    variance = rows[0].get("variance")
    figure.suptitle(title or f"Toy problem, Gaussian dropout variance {variance:g}: estimate and bounds of h(Z) ({_over_seeds(rows)})")
    figure.tight_layout()
    _toy_legend(figure, axes, ncol=2)
    figure.text(0.5, -0.2, "The mixture estimate and the pairwise bounds are of the entropy of the N-component mixture; "
                "below the truth, they measure N, not h(Z).", ha="center", va="top", fontsize=8)
    return _toy_save(figure, path)


TOY_NAMES = {"ours": "ours (mixture)", "ours_loo": "ours (leave-one-out)", "edge": "EDGE", "ksg": "KSG", "doe": "DoE",
             "doe_l": "DoE (logistic)", "mine": "MINE", "infonce": "InfoNCE"}


def plot_estimator_comparison(rows: Sequence[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Figs. 4 and 10 of Adilova et al. (2023): I(X;Z) of every estimator, one column per input
    dimension n. Top row: each bin-free estimator at a place of its own on the x axis (mean ± sd
    over seeds), so that none hides another. Bottom row: binning against the number of bins
    (bottom axis) and the bin size (top axis, finer to the right). Both rows draw the quadrature
    truth and log N (the most a discrete estimator can give) with their values. ``rows``: dicts
    with keys dim, n_samples, seed, variance, estimator, setting, i_xz, i_xz_truth, log_n (nats).
    Writes a PNG (150 dpi).
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; pass the rows of at least one run")
    dims = sorted({int(r["dim"]) for r in rows})
    figure, axes = _toy_figure(2, len(dims), width=4.6, height=3.6)
    stats = _toy_group(rows, ("dim", "estimator", "setting"), "i_xz")
    scalar = [e for e in dict.fromkeys(str(r["estimator"]) for r in rows) if not e.startswith("binning")]
    import matplotlib

    # ours in blue (ours_loo lighter), the neural estimators in warm colours, the nonparametric in green/purple.
    colours = {"ours": "tab:blue", "ours_loo": "lightskyblue", "edge": "tab:green", "ksg": "tab:purple",
               "doe": "tab:red", "doe_l": "tab:pink", "mine": "tab:orange", "infonce": "tab:brown"}
    markers = {"ours": "o", "ours_loo": "o", "edge": "D", "ksg": "s", "doe": "^", "doe_l": "v", "mine": "P", "infonce": "X"}
    spare = [matplotlib.colormaps["Dark2"](i) for i in range(8)]
    for index, dim in enumerate(dims):
        top, bottom = axes[0][index], axes[1][index]
        subset = [r for r in rows if int(r["dim"]) == dim]
        truth = float(subset[0]["i_xz_truth"])
        log_n = float(subset[0]["log_n"])
        n_samples = int(subset[0]["n_samples"])
        for ax in (top, bottom):
            ax.axhline(truth, color="black", lw=1.6, label="quadrature truth")
            ax.axhline(log_n, color="gray", lw=1.2, ls="--", label=f"log N (N = {n_samples})")
            ax.text(1.0, truth, f" {truth:.2f}", transform=ax.get_yaxis_transform(), va="center", ha="left", fontsize=7)
            ax.text(1.0, log_n, f" {log_n:.2f}", transform=ax.get_yaxis_transform(), va="center", ha="left",
                    fontsize=7, color="gray")
            ax.set_ylabel("I(X;Z) [nats]")
            ax.grid(alpha=0.3)
        for place, name in enumerate(scalar):
            found = [(mean, sd) for (d, estimator, _), (mean, sd) in stats.items() if d == dim and estimator == name]
            if found:
                mean, sd = found[0]
                top.errorbar([place], [mean], yerr=[sd], color=colours.get(name, spare[place % 8]),
                             marker=markers.get(name, "o"), ms=8, capsize=3, ls="none", markeredgecolor="k",
                             markeredgewidth=0.5)
        top.set_xticks(range(len(scalar)))
        top.set_xticklabels([TOY_NAMES.get(name, name) for name in scalar], rotation=40, ha="right", fontsize=8)
        top.set_xlim(-0.6, len(scalar) - 0.4)
        top.set_title(f"n = {dim}: bin-free estimators")
        by_count = sorted((int(s), m) for (d, e, s), (m, _) in stats.items() if d == dim and e == "binning_bins")
        if by_count:
            x, y = zip(*by_count)
            bottom.plot(x, y, color="tab:purple", ls="-", marker="o", ms=5, label="binning by number of bins (bottom axis)")
            bottom.set_xlabel("number of bins")
        by_size = sorted((float(s), m) for (d, e, s), (m, _) in stats.items() if d == dim and e == "binning_size")
        if by_size:
            twin = bottom.twiny()
            x, y = zip(*by_size)
            twin.plot(x, y, color="tab:olive", ls="--", marker="s", ms=5, label="binning by bin size (top axis)")
            twin.set_xscale("log")
            twin.invert_xaxis()
            twin.set_xlabel("bin size", fontsize=8)
            bottom.plot([], [], color="tab:olive", ls="--", marker="s", ms=5, label="binning by bin size (top axis)")
        bottom.set_title(f"n = {dim}: binning", fontsize=10, pad=22 if by_size else 6)
    variance = rows[0].get("variance")
    figure.suptitle(title or f"Toy problem, Gaussian dropout variance {variance:g}: I(X;Z) by estimator ({_over_seeds(rows)})")
    figure.tight_layout()
    _toy_legend(figure, axes)
    return _toy_save(figure, path)
