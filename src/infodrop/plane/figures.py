"""The information-plane figures (Adilova, Geiger & Fischer, ICLR 2023, Figs. 1, 5, 6, 11-15) of
the records :class:`infodrop.plane.InformationPlane` writes, and the bin sweep of binary dropout.
Values are in nats.

Every function takes a plane (a path to its JSON, a :class:`~infodrop.plane.record.PlaneDocument`
or its JSON form, or a list of records) and an output folder, writes the figure in each of
``formats`` atomically and returns the paths it wrote. The drawing parts are in
:mod:`infodrop.plane.panels`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infodrop.plane.panels import (
    HOLLOW_LABEL,
    SAME_AXES_NOTE,
    SUBSET_LABEL,
    EpochColours,
    Points,
    agg_figure,
    bin_counts,
    clip_markers,
    default_bins,
    document_limits,
    errors,
    figure_legend,
    finish_panels,
    h_y_of,
    log_n_of,
    plane_axes,
    plane_document,
    plane_label,
    plane_limits,
    plane_points,
    plane_records,
    plane_title,
    save_figure,
    splits_of,
)
from infodrop.plane.record import PlaneDocument, PlaneRecord
from infodrop.plane.settings import ESTIMATORS, check_formats

__all__ = ["plot_bin_sweep", "plot_binning_planes", "plot_information_plane", "plot_plane_comparison",
           "plot_plane_figures", "plot_subset_planes"]


@dataclass
class _Opened:
    """What every plane figure starts from: the document, its records by epoch (from ``min_epoch``
    on), the checked formats, the output folder and the recorded splits."""

    document: PlaneDocument
    records: list[PlaneRecord]
    formats: tuple[str, ...]
    out_dir: Path
    splits: list[str]

    @cached_property
    def colours(self) -> EpochColours:
        return EpochColours(self.records)


def _open(records_or_path: Any, out_dir: str | os.PathLike, formats: Any, min_epoch: int | None) -> _Opened:
    document = plane_document(records_or_path)
    records = plane_records(document, min_epoch)
    return _Opened(document, records, check_formats(formats), Path(out_dir), splits_of(records))


def plot_information_plane(
    records_or_path: Any,
    out_dir: str | os.PathLike,
    *,
    bins: int | None = None,
    prefix: str = "plane",
    formats: Sequence[str] = ("png", "pdf"),
    title: str | None = None,
    min_epoch: int | None = None,
) -> list[Path]:
    """Information planes I(X;Z) (x axis) vs I(Z;Y) (y axis), in nats, points coloured by epoch.

    One figure per estimator (``<prefix>_auto``, ``<prefix>_binning``), each with a training and a
    test panel and an epoch colour bar. The band of each point (``i_xz_lower``..``i_zy_upper``;
    the pairwise bracket of the mixture in files that predate bands) is drawn as grey error bars,
    saturated points (pressed against log N, so they measure the sample size) as hollow markers,
    log N and H(Y) as grey lines; a legend explains each marking. When there is more than one
    estimator a further figure ``<prefix>_side_by_side`` puts them next to each other (rows:
    splits) on shared axes, as in Fig. 1/5. Panels of one figure share their axes, and the title
    says so. The title names the data set, the layer and N (from the file) after ``title``.

    Args:
        records_or_path: a plane JSON path, the document ``InformationPlane.load`` returns, or its
            list of records.
        out_dir: folder for the figures (created).
        bins: the bin count of the binning plane (default: the middle of the recorded counts).
        prefix: file-name prefix. formats: file formats ('png', 'pdf', 'svg').
        title: optional first title line (e.g. the run name).
        min_epoch: draw only records from this epoch on (e.g. 1 to leave out the initialisation,
            whose point near the origin squeezes the rest of the trajectory).

    Returns:
        The paths written.
    """
    plane = _open(records_or_path, out_dir, formats, min_epoch)
    document, records, splits, colours = plane.document, plane.records, plane.splits, plane.colours
    if not records:
        raise ValueError("the plane has no records yet; record at least one epoch before plotting")
    bin_key = str(int(bins)) if bins is not None else default_bins(document)
    estimators = [name for name in ESTIMATORS
                  if any(getattr(values, name) is not None for record in records for values in record.splits().values())]
    limits = document_limits(records, splits)
    written: list[Path] = []

    def panel(ax: Any, split: str, estimator: str) -> list:
        key = bin_key if estimator == "binning" else None
        points = plane_points(records, split, estimator, key)
        ax.set_title(f"{plane_label(document, estimator, key)} — {split}", fontsize=10)
        return plane_axes(ax, points, colours, log_n=log_n_of(records, split), h_y=h_y_of(records, split))

    for estimator in estimators:
        figure = agg_figure(figsize=(4.6 * len(splits) + 0.8, 4.8), layout="constrained")
        axes = figure.subplots(1, len(splits), squeeze=False)[0]
        handles = []
        for ax, split in zip(axes, splits):
            handles += panel(ax, split, estimator)
        handles += finish_panels(axes, limits)
        figure_legend(figure, handles)
        colours.colorbar(figure, list(axes))
        figure.suptitle(plane_title(document, title, SAME_AXES_NOTE), fontsize=9)
        written += save_figure(figure, plane.out_dir, f"{prefix}_{estimator}", plane.formats)

    if len(estimators) > 1:
        figure = agg_figure(figsize=(4.6 * len(estimators) + 0.8, 4.0 * len(splits) + 0.4), layout="constrained")
        axes = figure.subplots(len(splits), len(estimators), squeeze=False)
        handles = []
        for row, split in enumerate(splits):
            for column, estimator in enumerate(estimators):
                handles += panel(axes[row][column], split, estimator)
        flat = [ax for row in axes for ax in row]
        handles += finish_panels(flat, limits)
        figure_legend(figure, handles)
        colours.colorbar(figure, flat)
        figure.suptitle(plane_title(document, title, SAME_AXES_NOTE), fontsize=9)
        written += save_figure(figure, plane.out_dir, f"{prefix}_side_by_side", plane.formats)
    return written


def plot_binning_planes(
    records_or_path: Any,
    out_dir: str | os.PathLike,
    *,
    prefix: str = "plane_binning_bins",
    formats: Sequence[str] = ("png", "pdf"),
    title: str | None = None,
    min_epoch: int | None = None,
) -> list[Path]:
    """Binning information planes for every recorded bin count side by side (Fig. 14 of
    Adilova et al.): columns are bin counts, rows are the training and test sets, points coloured
    by epoch (hollow where saturated), values in nats, all panels on the same axes; ``min_epoch``
    as in :func:`plot_information_plane`. Returns the paths written (``<prefix>.<format>``)."""
    plane = _open(records_or_path, out_dir, formats, min_epoch)
    document, records, splits, colours = plane.document, plane.records, plane.splits, plane.colours
    counts = bin_counts(records)
    if not counts:
        raise ValueError("the plane has no binning records; record with estimators including 'binning'")
    figure = agg_figure(figsize=(3.8 * len(counts) + 0.8, 3.6 * len(splits) + 0.4), layout="constrained")
    axes = figure.subplots(len(splits), len(counts), squeeze=False)
    handles = []
    for row, split in enumerate(splits):
        for column, count in enumerate(counts):
            points = plane_points(records, split, "binning", str(count))
            axes[row][column].set_title(f"{count} bins — {split}", fontsize=10)
            handles += plane_axes(axes[row][column], points, colours, log_n=log_n_of(records, split),
                                   h_y=h_y_of(records, split))
    flat = [ax for row in axes for ax in row]
    handles += finish_panels(flat, document_limits(records, splits))
    figure_legend(figure, handles)
    colours.colorbar(figure, flat)
    figure.suptitle(plane_title(document, title, "binning planes by bin count; " + SAME_AXES_NOTE), fontsize=9)
    return save_figure(figure, plane.out_dir, prefix, plane.formats)


def _subset_sizes(records: list[PlaneRecord]) -> list[int]:
    return sorted({int(k) for record in records for values in record.splits().values() for k in (values.subsets or {})})


def plot_subset_planes(
    records_or_path: Any,
    out_dir: str | os.PathLike,
    *,
    prefix: str = "plane_subsets",
    formats: Sequence[str] = ("png", "pdf"),
    title: str | None = None,
    min_epoch: int | None = None,
) -> list[Path]:
    """Planes of sub-representations Z_S (random subsets S of k units of the tracked layer):
    one column per recorded size k (its panels share their axes; the columns do not, so that
    small subsets are not squeezed), rows the splits, x = the mean of I(X;Z_S) over the subsets
    with ±1 standard deviation over them, y = I(Z_S;Y) likewise (the whole layer's I(Z;Y)
    estimate where the file holds no subset value, said in the axis label), in nats, points
    coloured by epoch. By data processing I(X;Z_S) <= I(X;Z); for small k it stays below log N,
    so it can move where the whole layer's estimate is saturated. Returns the paths written."""
    plane = _open(records_or_path, out_dir, formats, min_epoch)
    document, records, splits, colours = plane.document, plane.records, plane.splits, plane.colours
    sizes = _subset_sizes(records)
    if not sizes:
        raise ValueError("the plane has no subset records; record with subsets=(1, 4) (plane_subsets=[1,4] in the experiments)")
    units = document.layer_units
    figure = agg_figure(figsize=(4.2 * len(sizes) + 0.8, 3.8 * len(splits) + 0.5), layout="constrained")
    axes = figure.subplots(len(splits), len(sizes), squeeze=False)
    handles = []
    column_panels: list[list] = [[] for _ in sizes]
    for row, split in enumerate(splits):
        for column, k in enumerate(sizes):
            points, whole_zy = Points(), False
            for record in records:
                values = record.splits().get(split)
                point = values.point("subsets", str(k)) if values is not None else None
                if point is None:
                    continue
                zy, zy_std = point.i_zy, point.i_zy_std
                if zy is None:
                    zy, zy_std, whole_zy = (values.auto.i_zy if values.auto is not None else None), None, True
                if zy is None:
                    continue
                xz_band = (point.mean - point.std, point.mean + point.std)
                zy_band = (None, None) if zy_std is None else (zy - zy_std, zy + zy_std)
                points.add(record.epoch, point.mean, zy, xz_band, zy_band, point.saturated)
            ax = axes[row][column]
            log_n = log_n_of(records, split)
            h_y = h_y_of(records, split)
            # Small subsets sit far below log N and H(Y); a ceiling is drawn only when the points come
            # within half of it, so that it does not squeeze their trajectory (the title gives both).
            near_x = log_n is not None and points.xz and max(points.xz) > 0.5 * log_n
            near_y = h_y is not None and points.zy and max(points.zy) > 0.5 * h_y
            of_units = f" of {units}" if units else ""
            ax.set_title(f"{k}{of_units} units — {split}", fontsize=10)
            handles += plane_axes(ax, points, colours, log_n=log_n if near_x else None, h_y=h_y if near_y else None,
                                   band_label=SUBSET_LABEL)
            ax.set_xlabel(f"I(X;Z_S) [nats], |S| = {k}")
            ax.set_ylabel("I(Z;Y) of the whole layer [nats]" if whole_zy else "I(Z_S;Y) [nats]")
            column_panels[column].append((points, log_n if near_x else None, h_y if near_y else None))
    flat = [ax for row in axes for ax in row]
    for column in range(len(sizes)):
        handles += finish_panels([axes[row][column] for row in range(len(splits))], plane_limits(column_panels[column]))
    figure_legend(figure, handles)
    colours.colorbar(figure, flat)
    draws = document.config.get("subset_draws")
    note = f"random unit subsets ({draws} per size)" if draws else "random unit subsets"
    ceilings = ", ".join(f"{split}: log N = {log_n_of(records, split):.2f}"
                         + (f", H(Y) = {h_y_of(records, split):.2f}" if h_y_of(records, split) is not None else "")
                         for split in splits)
    note += f"; {ceilings}; each column (one size) shares its axes, columns differ"
    figure.suptitle(plane_title(document, title, note), fontsize=9)
    return save_figure(figure, plane.out_dir, prefix, plane.formats)


def plot_plane_comparison(
    records_or_paths: Sequence[Any],
    labels: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    estimator: str = "auto",
    stem: str = "plane_comparison",
    formats: Sequence[str] = ("png", "pdf"),
    title: str | None = None,
) -> list[Path]:
    """Several runs' planes on one pair of axes per split (e.g. information dropout at several
    beta, Achille & Soatto's trade-off): one colour per run, its trajectory as a line from the
    first recorded epoch (small marker) to the last (large marker), the bands as error bars,
    saturated points hollow, values in nats; the panels share their axes. ``labels`` name the
    runs in the legend. Returns the paths written (``<stem>.<format>``)."""
    from matplotlib.lines import Line2D

    documents = [plane_document(item) for item in records_or_paths]
    labels = [str(label) for label in labels]
    if not documents or len(labels) != len(documents):
        raise ValueError(f"labels must name each of the {len(documents)} planes (got {len(labels)}); pass one label per plane")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
    formats, out_dir = check_formats(formats), Path(out_dir)
    all_records = [plane_records(document, None) for document in documents]
    splits = [split for split in ("train", "test") if any(split in record.splits() for records in all_records for record in records)]
    if not splits:
        raise ValueError("the planes have no records yet; record at least one epoch before plotting")
    figure = agg_figure(figsize=(4.8 * len(splits) + 0.4, 4.6), layout="constrained")
    axes = figure.subplots(1, len(splits), squeeze=False)[0]
    handles, any_hollow, drawn, clipped = [], False, [], []
    for ax, split in zip(axes, splits):
        for index, (document, records, label) in enumerate(zip(documents, all_records, labels)):
            colour = f"C{index % 10}"
            bins = default_bins(document) if estimator == "binning" else None
            points = plane_points(records, split, estimator, bins)
            epochs, xz, zy = points.arrays()
            if len(epochs) == 0:
                continue
            h_y = h_y_of(records, split)
            drawn.append((points, None, h_y))
            xz_band, zy_band = points.bands()
            if zy_band is not None and h_y is not None:
                zy_band = (zy_band[0], np.minimum(zy_band[1], h_y))  # I(Z;Y) <= H(Y)
            clipped.append((ax, {"xz": xz, "zy": zy, "xz_band": xz_band, "zy_band": zy_band}))
            if xz_band is not None or zy_band is not None:
                ax.errorbar(xz, zy, xerr=None if xz_band is None else np.vstack(errors(xz, xz_band)),
                            yerr=None if zy_band is None else np.vstack(errors(zy, zy_band)), fmt="none",
                            ecolor=colour, alpha=0.35, elinewidth=0.8, zorder=1)
            ax.plot(xz, zy, color=colour, linewidth=1.0, zorder=2)
            saturated = points.saturation()
            hollow = np.zeros(len(epochs), dtype=bool) if saturated is None else saturated
            any_hollow = any_hollow or bool(hollow.any())
            sizes = np.full(len(epochs), 14.0)
            sizes[-1] = 60.0  # the last recorded epoch
            ax.scatter(xz[~hollow], zy[~hollow], s=sizes[~hollow], color=colour, edgecolors="k", linewidths=0.3, zorder=3)
            ax.scatter(xz[hollow], zy[hollow], s=sizes[hollow], facecolors="none", edgecolors=colour, linewidths=1.2, zorder=3)
            if split == splits[0]:
                handles.append(Line2D([], [], color=colour, marker="o", label=f"{label} (epochs {epochs[0]}-{epochs[-1]})"))
        ax.set_title(split, fontsize=10)
        ax.set_xlabel("I(X;Z) [nats]")
        ax.set_ylabel("I(Z;Y) [nats]")
        ax.grid(True, alpha=0.3)
    limits = plane_limits(drawn)
    for ax in axes:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
    for ax, pending in clipped:
        handles += clip_markers(ax, pending)[:1]
    handles.append(Line2D([], [], color="0.4", marker="o", linestyle="none", markersize=8, label="large marker: last epoch"))
    if any_hollow:
        handles.append(Line2D([], [], color="0.4", marker="o", linestyle="none", markerfacecolor="none", label=HOLLOW_LABEL))
    figure_legend(figure, handles)
    names = sorted({str(document.estimators.get(estimator, estimator)) for document in documents})
    figure.suptitle(plane_title(documents[0], title, f"estimator: {', '.join(names)}; error bars: each point's band; "
                                                      "panels share their axes"), fontsize=9)
    return save_figure(figure, out_dir, stem, formats)


def plot_plane_figures(
    records_or_path: Any,
    out_dir: str | os.PathLike,
    *,
    formats: Sequence[str] = ("png", "pdf"),
    title: str | None = None,
) -> list[Path]:
    """Every figure of a recorded plane: one plane per estimator (and ours beside binning), the
    binning planes per bin count when binning was recorded, and the sub-representation planes
    when subsets were. Returns the paths written."""
    document = plane_document(records_or_path)
    figures = plot_information_plane(document, out_dir, formats=tuple(formats), title=title)
    if "binning" in document.estimators:
        figures += plot_binning_planes(document, out_dir, formats=tuple(formats), title=title)
    if _subset_sizes(document.records):
        figures += plot_subset_planes(document, out_dir, formats=tuple(formats), title=title)
    return figures


def plot_bin_sweep(
    rows: Sequence[dict],
    out_dir: str | os.PathLike,
    *,
    stem: str = "binary_binning",
    formats: Sequence[str] = ("png", "pdf"),
    title: str | None = None,
) -> list[Path]:
    """I(X;Z) in nats against the bin count for several networks (the consequence of Theorems
    3.1/3.2: binary dropout's binning estimate grows without bound, up to the plug-in ceiling).

    ``rows``: dicts with ``label`` (curve name), ``bins`` (count), ``i_xz`` and optionally
    ``log_n`` (the ceiling log N, drawn dotted) and ``panel`` (one subplot per distinct panel name);
    rows with ``bins=None`` are bin-free estimates, drawn as horizontal dashed lines, with a shaded
    bracket when ``lower``/``upper`` are given.
    """
    formats, out_dir = check_formats(formats), Path(out_dir)
    panels: dict[str, list] = {}
    for row in rows:
        panels.setdefault(row.get("panel", ""), []).append(row)
    labels = list(dict.fromkeys(row["label"] for row in rows))
    colours = {label: f"C{index % 10}" for index, label in enumerate(labels)}
    figure = agg_figure(figsize=(5.4 * len(panels), 4.2), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    handles = []
    for ax, (panel, panel_rows) in zip(axes, panels.items()):
        curves: dict[str, list] = {}
        for row in panel_rows:
            curves.setdefault(row["label"], []).append(row)
        ceilings = [row["log_n"] for row in panel_rows if row.get("log_n") is not None]
        for label, points in curves.items():
            swept = sorted((p for p in points if p.get("bins") is not None), key=lambda p: p["bins"])
            if swept:
                ax.plot([p["bins"] for p in swept], [p["i_xz"] for p in swept], "o-", color=colours[label], label=label)
            for p in points:
                if p.get("bins") is not None:
                    continue
                ax.axhline(p["i_xz"], color=colours[label], linestyle="--", label=label)
                if p.get("lower") is not None and p.get("upper") is not None:
                    ax.axhspan(p["lower"], p["upper"], color=colours[label], alpha=0.15,
                               label=f"{label}: bracket, lower to upper (where the record has one)")
        if ceilings:
            ceiling = max(ceilings)
            ax.axhline(ceiling, color="0.4", linestyle=":", linewidth=1.0, label=f"log N = {ceiling:.2f} (plug-in ceiling)")
        handles += ax.get_legend_handles_labels()[0]
        ax.set_xscale("log", base=2)
        ax.set_xlabel("number of bins per unit")
        ax.set_ylabel("I(X;Z) [nats]")
        ax.grid(True, alpha=0.3, which="both")
        if panel:
            ax.set_title(panel, fontsize=10)
    # One legend below the panels: inside, it covered the per-unit curves.
    figure_legend(figure, handles)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_figure(figure, out_dir, stem, formats)
