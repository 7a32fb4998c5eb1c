"""Figures: information planes, heat maps and estimator-validation plots. Values are in nats.

Every function takes data (records, arrays or a path to them) and an output folder, writes PNG
and PDF files atomically (through :mod:`infodrop.io`) and returns the paths it wrote. Figures are
drawn with matplotlib's object-oriented API on the Agg backend, so no display is needed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infodrop.io import atomic_path
from infodrop.plane.record import PlaneDocument, PlaneRecord, VariationalEstimate

# matplotlib is imported inside the drawing functions: it is heavy to import and only they need it.

# ============================================================================ information planes
# (Adilova, Geiger & Fischer, ICLR 2023, Figs. 1, 5, 6, 11-15; the records come from
# infodrop.plane.InformationPlane.)


def _plane_document(records_or_path: Any) -> PlaneDocument:
    """The typed plane document from a path to its JSON, a document (typed or its JSON form), or a
    list of records."""
    if isinstance(records_or_path, (str, os.PathLike)):
        return PlaneDocument.load(records_or_path)
    if isinstance(records_or_path, PlaneDocument):
        return records_or_path
    if isinstance(records_or_path, dict) and "records" in records_or_path:
        return PlaneDocument.from_json(records_or_path)
    if isinstance(records_or_path, list):
        records = [record if isinstance(record, PlaneRecord) else PlaneRecord.from_json(record, f"records[{index}]")
                   for index, record in enumerate(records_or_path)]
        return PlaneDocument(records=records)
    raise ValueError(
        "records_or_path must be the path of a plane JSON file, a PlaneDocument (or the JSON form "
        f"InformationPlane.load returns), or a list of records; got {type(records_or_path).__name__}"
    )


def _plane_records(document: PlaneDocument, min_epoch: int | None) -> list[PlaneRecord]:
    """The records sorted by epoch, from ``min_epoch`` on."""
    if min_epoch is not None and (isinstance(min_epoch, bool) or not isinstance(min_epoch, (int, np.integer))):
        raise ValueError(f"min_epoch must be an integer or None, got {min_epoch!r}")
    return document.sorted_records(min_epoch)


def _plane_log_n(records: list[PlaneRecord], split: str) -> float | None:
    sizes = {record.splits()[split].n for record in records if split in record.splits()}
    return float(np.log(max(sizes))) if sizes else None


def _plane_h_y(records: list[PlaneRecord], split: str) -> float | None:
    """H(Y) of the split's labels (the ceiling of I(Z;Y)), when recorded."""
    values = [record.splits()[split].h_y for record in records
              if split in record.splits() and record.splits()[split].h_y is not None]
    return float(max(values)) if values else None


def _plane_splits(records: list[PlaneRecord]) -> list[str]:
    return [split for split in ("train", "test") if any(split in record.splits() for record in records)]


class _Points:
    """The points of one plane panel (nats): epochs, I(X;Z), I(Z;Y), the bands (lower, upper arrays
    or None), what the band is, and the saturation flags (None when the file predates them)."""

    def __init__(self) -> None:
        self.epochs: list = []
        self.xz: list = []
        self.zy: list = []
        self.xz_band: list = []
        self.zy_band: list = []
        self.saturated: list = []
        self.band_label: str | None = None

    def add(self, epoch: int, xz: float, zy: float, xz_band: tuple, zy_band: tuple, saturated: Any) -> None:
        self.epochs.append(epoch)
        self.xz.append(xz)
        self.zy.append(zy)
        self.xz_band.append(xz_band)
        self.zy_band.append(zy_band)
        self.saturated.append(saturated)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.asarray(self.epochs), np.asarray(self.xz, dtype=float), np.asarray(self.zy, dtype=float)

    @staticmethod
    def _band(pairs: list) -> tuple[np.ndarray, np.ndarray] | None:
        lower = np.array([np.nan if low is None else low for low, _ in pairs], dtype=float)
        upper = np.array([np.nan if high is None else high for _, high in pairs], dtype=float)
        return None if np.all(np.isnan(lower)) and np.all(np.isnan(upper)) else (lower, upper)

    def bands(self) -> tuple[Any, Any]:
        return self._band(self.xz_band), self._band(self.zy_band)

    def saturation(self) -> np.ndarray | None:
        """Boolean per point, or None when no point has the flag recorded."""
        if all(flag is None for flag in self.saturated):
            return None
        return np.array([bool(flag) for flag in self.saturated])


BAND_LABEL = "band: lower and upper estimate, ±2 s.e."
VARIATIONAL_BAND_LABEL = "band: each bound ±2 s.e. of its mean over the inputs"
BRACKET_LABEL = "pairwise bracket of the N-component mixture"
SUBSET_LABEL = "±1 sd over random subsets"


def _plane_points(records: list[PlaneRecord], split: str, estimator: str, bins: str | None = None) -> _Points:
    """The points of one split and estimator (``bins``: the bin count of binning). The band is
    ``i_xz_lower``/``i_xz_upper`` (and ``i_zy_*``) when recorded; files written before the bands
    were recorded fall back to the pairwise bracket of the mixture, labelled as such."""
    points = _Points()
    bracket_only = variational = False
    for record in records:
        values = record.splits().get(split)
        point = values.point(estimator, bins) if values is not None else None
        if point is None or point.i_xz is None or point.i_zy is None:
            continue
        xz_band = (getattr(point, "i_xz_lower", None), getattr(point, "i_xz_upper", None))
        zy_band = (getattr(point, "i_zy_lower", None), getattr(point, "i_zy_upper", None))
        if xz_band == (None, None) and getattr(point, "i_xz_bounds", None):
            xz_band, bracket_only = tuple(point.i_xz_bounds), True
        variational = variational or isinstance(point, VariationalEstimate)
        points.add(record.epoch, point.i_xz, point.i_zy, xz_band, zy_band, getattr(point, "saturated", None))
    if any(band != (None, None) for band in points.xz_band + points.zy_band):
        points.band_label = BRACKET_LABEL if bracket_only else VARIATIONAL_BAND_LABEL if variational else BAND_LABEL
    return points


def _errors(values: np.ndarray, band: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Error-bar lengths below and above; a missing (NaN) or infinite side is 0 here (the caller
    marks an infinite side with an arrowhead)."""
    below = np.zeros_like(values)
    above = np.zeros_like(values)
    finite_low, finite_high = np.isfinite(band[0]), np.isfinite(band[1])
    below[finite_low] = values[finite_low] - band[0][finite_low]
    above[finite_high] = band[1][finite_high] - values[finite_high]
    return np.clip(below, 0.0, None), np.clip(above, 0.0, None)


def _unbounded_markers(ax: Any, xz: np.ndarray, zy: np.ndarray, xz_band: Any, zy_band: Any) -> list:
    """Arrowheads at points whose band has an infinite side (e.g. no finite upper estimate of
    I(X;Z) when an input's zero pattern is unique, or no finite lower estimate of I(Z;Y) when a
    class has a single input), with their legend handles."""
    from matplotlib.lines import Line2D

    handles = []
    sides = []
    if xz_band is not None:
        sides += [(np.isposinf(xz_band[1]), ">", "no finite upper estimate of I(X;Z)"),
                  (np.isneginf(xz_band[0]), "<", "no finite lower estimate of I(X;Z)")]
    if zy_band is not None:
        sides += [(np.isposinf(zy_band[1]), "^", "no finite upper estimate of I(Z;Y)"),
                  (np.isneginf(zy_band[0]), "v", "no finite lower estimate of I(Z;Y)")]
    for where, marker, label in sides:
        if np.any(where):
            ax.scatter(xz[where], zy[where], marker=marker, s=22, color="0.4", zorder=2)
            handles.append(Line2D([], [], color="0.4", marker=marker, linestyle="none", label=label))
    return handles


def _collapse_note(xz: np.ndarray, zy: np.ndarray, log_n: float | None, h_y: float | None,
                   saturated: Any) -> str | None:
    """Why several epochs sit at one point, or None.

    Epochs at (log N, H(Y)) exactly (1e-6 nats): every input has a bin of its own, so the plug-in
    values are log N and H(Y) whatever the network does. Otherwise, all epochs within 1e-3 nats of
    each other: saturated, or the estimate did not move."""
    if len(xz) < 2:
        return None
    if log_n is not None and h_y is not None:
        ceiling = (np.abs(xz - log_n) < 1e-6) & (np.abs(zy - h_y) < 1e-6)
        count = int(ceiling.sum())
        if count >= 2:
            which = f"all {len(xz)} epochs" if count == len(xz) else f"{count} of {len(xz)} epochs"
            return (f"{which} at one point: every input has a bin of its own,\n"
                    "so I(X;Z) = log N and I(Z;Y) = H(Y) whatever the network does")
    if float(np.ptp(xz)) >= 1e-3 or float(np.ptp(zy)) >= 1e-3:
        return None
    if saturated is not None and bool(np.all(saturated)):
        return f"all {len(xz)} epochs at one point:\nevery estimate is saturated (it measures N)"
    return f"all {len(xz)} epochs at one point (spread < 0.001 nats):\nthe estimate did not change during training"


# A band may widen the axes by at most this fraction of the span of the estimates and ceilings;
# past that it is clipped at the axis and marked with an arrowhead, so that one wide band (16 nats
# beside estimates of 7) does not squeeze every point into a corner.
BAND_MARGIN = 0.25
SAME_AXES_NOTE = "all panels and plane figures of these records share their axes"
CLIPPED_LABEL = "band runs past the axis (clipped; arrowhead at the edge)"
HOLLOW_LABEL = "hollow: saturated (the estimate measures N, not the network)"
FILLED_LABEL = "filled: not saturated"
# Up to this many recorded epochs, each gets a colour of its own and a tick on the colour bar.
DISCRETE_EPOCHS = 16


def _axis_range(values: Sequence[float], ceilings: Sequence[float], lows: Sequence[float],
                highs: Sequence[float]) -> tuple[float, float]:
    """One axis's limits (nats): the estimates and the ceilings drawn (log N, H(Y)) always inside,
    the band ends inside when they lie within BAND_MARGIN of that span, and a 4% pad."""
    core = [v for v in list(values) + list(ceilings) if np.isfinite(v)]
    if not core:
        return 0.0, 1.0
    low, high = min(core), max(core)
    span = max(high - low, 0.05 * max(abs(high), 1.0))
    lows = [v for v in lows if np.isfinite(v)]
    highs = [v for v in highs if np.isfinite(v)]
    low = max(min(lows + [low]), low - BAND_MARGIN * span)
    high = min(max(highs + [high]), high + BAND_MARGIN * span)
    # A single point (or all at one value) gets a window of its own size, not a zero-width axis.
    pad = 0.04 * (high - low) if high - low > 1e-9 else 0.5 * span
    return low - pad, high + pad


def _plane_limits(panels: Sequence[tuple["_Points", float | None, float | None]]) -> tuple[tuple, tuple]:
    """The x and y limits shared by the panels ``(points, log_n, h_y)``: from the estimates and
    the ceilings, not from bands far past them (see :func:`_axis_range`)."""
    xs, ys, x_ceilings, y_ceilings = [], [], [], []
    x_lows, x_highs, y_lows, y_highs = [], [], [], []
    for points, log_n, h_y in panels:
        _, xz, zy = points.arrays()
        xs += xz.tolist()
        ys += zy.tolist()
        x_ceilings += [log_n] if log_n is not None and len(xz) else []
        y_ceilings += [h_y] if h_y is not None and len(zy) else []
        xz_band, zy_band = points.bands()
        if xz_band is not None:
            x_lows += xz_band[0].tolist()
            x_highs += xz_band[1].tolist()
        if zy_band is not None:
            y_lows += zy_band[0].tolist()
            # I(Z;Y) <= H(Y): the drawn upper end is capped there (see _plane_axes).
            y_highs += (np.minimum(zy_band[1], h_y) if h_y is not None else zy_band[1]).tolist()
    return (_axis_range(xs, x_ceilings, x_lows, x_highs), _axis_range(ys, y_ceilings, y_lows, y_highs))


def _clip_markers(ax: Any, pending: dict) -> list:
    """Arrowheads at the axis edge where a finite band side runs past the final limits; returns
    their legend handle (or nothing)."""
    from matplotlib.lines import Line2D

    (x_low, x_high), (y_low, y_high) = ax.get_xlim(), ax.get_ylim()
    xz, zy, xz_band, zy_band = pending["xz"], pending["zy"], pending["xz_band"], pending["zy_band"]
    marks = []
    if xz_band is not None:
        marks += [(np.isfinite(xz_band[1]) & (xz_band[1] > x_high), np.full_like(xz, x_high), zy, ">"),
                  (np.isfinite(xz_band[0]) & (xz_band[0] < x_low), np.full_like(xz, x_low), zy, "<")]
    if zy_band is not None:
        marks += [(np.isfinite(zy_band[1]) & (zy_band[1] > y_high), xz, np.full_like(zy, y_high), "^"),
                  (np.isfinite(zy_band[0]) & (zy_band[0] < y_low), xz, np.full_like(zy, y_low), "v")]
    drawn = False
    for where, x, y, marker in marks:
        if np.any(where):
            ax.scatter(x[where], y[where], marker=marker, s=26, color="0.45", clip_on=False, zorder=4)
            drawn = True
    return [Line2D([], [], color="0.45", marker=">", linestyle="none", label=CLIPPED_LABEL)] if drawn else []


def _ceiling_labels(ax: Any, log_n: float | None, h_y: float | None) -> None:
    """The values of log N and H(Y) written on their lines, at the ends where plane trajectories
    (which rise from near the origin towards both ceilings) seldom are."""
    (x_low, x_high), (y_low, y_high) = ax.get_xlim(), ax.get_ylim()
    if log_n is not None and x_low <= log_n <= x_high:
        # Right of the line (no estimate capped at log N lies there) unless the axis ends close by.
        right = log_n < x_low + 0.9 * (x_high - x_low)
        ax.text(log_n, y_low + 0.02 * (y_high - y_low), f" log N = {log_n:.2f} " if right else f"log N = {log_n:.2f} ",
                rotation=90, ha="left" if right else "right", va="bottom", fontsize=7, color="0.3", zorder=2)
    if h_y is not None and y_low <= h_y <= y_high:
        ax.text(x_low + 0.02 * (x_high - x_low), h_y, f"H(Y) = {h_y:.2f}", ha="left", va="top", fontsize=7,
                color="0.3", zorder=2)


def _finish_panels(axes: Sequence[Any], limits: tuple[tuple, tuple] | None = None) -> list:
    """Once the panels are drawn: set the shared ``limits`` (x, y) when given, then mark the bands
    clipped at the axes, write the ceilings' values and put each panel's note (a collapsed
    trajectory's reason) in its title, above the data. Returns the further legend handles."""
    handles = []
    for ax in axes:
        if limits is not None:
            ax.set_xlim(*limits[0])
            ax.set_ylim(*limits[1])
        pending = getattr(ax, "_infodrop_pending", None)
        if pending is None:
            continue
        handles += _clip_markers(ax, pending)
        _ceiling_labels(ax, pending["log_n"], pending["h_y"])
        if pending["note"]:
            ax.set_title(f"{ax.get_title()}\n{pending['note']}", fontsize=7.5)
        ax._infodrop_pending = None
    return handles


class _EpochColours:
    """Colour by epoch: one colour per recorded epoch (a discrete colour bar, a tick per epoch)
    when there are at most DISCRETE_EPOCHS of them, else a continuous viridis scale."""

    def __init__(self, records: list) -> None:
        import matplotlib
        from matplotlib.colors import BoundaryNorm, Normalize

        epochs = sorted({int(record.epoch) for record in records}) or [0]
        self.ticks = epochs if len(epochs) <= DISCRETE_EPOCHS else None
        if self.ticks is not None and len(epochs) > 1:
            middles = [(a + b) / 2 for a, b in zip(epochs, epochs[1:])]
            edges = [epochs[0] - (middles[0] - epochs[0])] + middles + [epochs[-1] + (epochs[-1] - middles[-1])]
            self.cmap = matplotlib.colormaps["viridis"].resampled(len(epochs))
            self.norm = BoundaryNorm(edges, len(epochs))
        else:
            low, high = epochs[0], epochs[-1]
            self.cmap = matplotlib.colormaps["viridis"]
            self.norm = Normalize(vmin=low, vmax=high if high > low else low + 1)

    def __call__(self, epochs: np.ndarray) -> np.ndarray:
        """RGBA rows for ``epochs`` (shape n -> n x 4)."""
        return self.cmap(self.norm(np.asarray(epochs)))

    def colorbar(self, figure: Any, axes: list) -> None:
        """The epoch colour bar beside ``axes``, ticks at whole epochs."""
        from matplotlib.cm import ScalarMappable
        from matplotlib.ticker import MaxNLocator

        bar = figure.colorbar(ScalarMappable(norm=self.norm, cmap=self.cmap), ax=axes, label="epoch")
        if self.ticks is not None:
            bar.set_ticks(self.ticks)
            if len(self.ticks) > 1:
                bar.minorticks_off()
        else:
            bar.locator = MaxNLocator(integer=True)
            bar.update_ticks()


def _plane_axes(ax: Any, points: _Points, colours: _EpochColours, *, log_n: float | None = None,
                h_y: float | None = None, band_label: str | None = None) -> list:
    """Draw one plane: the band as grey error bars, the trajectory as a grey line, the points
    coloured by epoch (hollow exactly where the record says saturated), log N (the most a plug-in or
    plain mixture estimate of I(X;Z) from N inputs can give) dotted and H(Y) (the ceiling of
    I(Z;Y)) dash-dotted. What depends on the final limits (clipped bands, the ceilings' values, a
    note) waits on the axes for :func:`_finish_panels`. Returns the legend handles of the markings
    drawn (for one legend per figure)."""
    from matplotlib.lines import Line2D

    epochs, xz, zy = points.arrays()
    ax.set_xlabel("I(X;Z) [nats]")
    ax.set_ylabel("I(Z;Y) [nats]")
    ax.grid(True, alpha=0.3)
    if len(epochs) == 0:
        ax.text(0.5, 0.5, "no points", ha="center", va="center", transform=ax.transAxes)
        return []
    handles = []
    if log_n is not None:
        handles.append(ax.axvline(log_n, color="0.5", linestyle=":", linewidth=1.0,
                                  label="log N (ceiling of mixture and binning estimates of I(X;Z)), value on the line"))
    if h_y is not None:
        handles.append(ax.axhline(h_y, color="0.5", linestyle="-.", linewidth=0.8, label="H(Y) (ceiling of I(Z;Y)), value on the line"))
    xz_band, zy_band = points.bands()
    if xz_band is not None or zy_band is not None:
        label = band_label or points.band_label
        if zy_band is not None and h_y is not None and np.any(zy_band[1] > h_y):
            # I(Z;Y) <= H(Y) for discrete labels, so the upper estimate is drawn no higher.
            zy_band = (zy_band[0], np.minimum(zy_band[1], h_y))
            label += "; I(Z;Y) upper capped at H(Y)"
        xerr = None if xz_band is None else np.vstack(_errors(xz, xz_band))
        yerr = None if zy_band is None else np.vstack(_errors(zy, zy_band))
        ax.errorbar(xz, zy, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.7", elinewidth=0.9, capsize=1.5, zorder=1)
        handles.append(Line2D([], [], color="0.7", linewidth=0.9, marker="|", label=label))
        handles += _unbounded_markers(ax, xz, zy, xz_band, zy_band)
    ax.plot(xz, zy, color="0.6", linewidth=0.8, zorder=2)
    saturated = points.saturation()
    clear = np.ones(len(epochs), dtype=bool) if saturated is None else ~saturated
    if clear.any():
        ax.scatter(xz[clear], zy[clear], c=colours(epochs[clear]), s=28, edgecolors="k", linewidths=0.3, zorder=3)
    if saturated is not None:
        if saturated.any():
            ax.scatter(xz[saturated], zy[saturated], facecolors="none", edgecolors=colours(epochs[saturated]), s=30,
                       linewidths=1.3, zorder=3)
        handles.append(Line2D([], [], marker="o", linestyle="none", markerfacecolor="0.55", markeredgecolor="k",
                              markeredgewidth=0.3, label=FILLED_LABEL))
        handles.append(Line2D([], [], marker="o", linestyle="none", markerfacecolor="none", markeredgecolor="0.3",
                              markeredgewidth=1.3, label=HOLLOW_LABEL))
    ax._infodrop_pending = {"xz": xz, "zy": zy, "xz_band": xz_band, "zy_band": zy_band, "log_n": log_n, "h_y": h_y,
                            "note": _collapse_note(xz, zy, log_n, h_y, saturated)}
    return handles


def _figure_legend(figure: Any, handles: list) -> None:
    """One legend below the panels with every marking used in them (first handle per label)."""
    unique = {}
    for handle in handles:
        unique.setdefault(handle.get_label(), handle)
    if unique:
        figure.legend(handles=list(unique.values()), loc="outside lower center", ncol=min(3, len(unique)), fontsize=7,
                      frameon=False)


def _plane_save(figure: Any, out_dir: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    """Save ``figure`` as out_dir/stem.<format> for each format, atomically."""
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=fmt, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def _agg_figure(**options: Any) -> Any:
    """A matplotlib ``Figure(**options)`` on the Agg backend: drawn for files only, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(**options)


def _plane_check_formats(formats: Any) -> tuple[str, ...]:
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    if not formats or any(fmt not in ("png", "pdf", "svg") for fmt in formats):
        raise ValueError(f"formats must be a non-empty subset of ('png', 'pdf', 'svg'), got {formats!r}")
    return formats


def _plane_bin_counts(records: list[PlaneRecord]) -> list[int]:
    """Every bin count recorded in any split, ascending."""
    return sorted({int(b) for record in records for values in record.splits().values() for b in (values.binning or {})})


def _plane_default_bins(document: PlaneDocument) -> str | None:
    counts = _plane_bin_counts(document.records)
    return str(counts[len(counts) // 2]) if counts else None


def _plane_label(document: PlaneDocument, estimator: str, bins: str | None) -> str:
    name = document.estimators.get(estimator, estimator)
    if estimator == "binning" and bins is not None:
        name = f"binning, {bins} bins"
    return name


def _document_limits(records: list[PlaneRecord], splits: Sequence[str]) -> tuple[tuple, tuple]:
    """The limits of every plane figure of one file (the mixture or KL estimate and binning at
    every recorded bin count, both splits), so that the same points sit on the same axes in
    plane_auto, plane_binning, plane_side_by_side and plane_binning_bins."""
    panels = []
    for split in splits:
        log_n, h_y = _plane_log_n(records, split), _plane_h_y(records, split)
        panels.append((_plane_points(records, split, "auto"), log_n, h_y))
        panels += [(_plane_points(records, split, "binning", str(count)), log_n, h_y) for count in _plane_bin_counts(records)]
    return _plane_limits(panels)


def _plane_title(document: PlaneDocument, title: str | None, note: str | None = None) -> str:
    """The figure title: ``title`` (e.g. the run name), then what was measured: the data set the
    file names, the layer and its width, the dropout and the sample sizes N of the splits."""
    parts = []
    if document.dataset:
        parts.append(document.dataset)
    if document.layer is not None:
        layer = f"layer '{document.layer}'"
        details = [f"{document.layer_units} units" if document.layer_units else None,
                   f"{document.dropout_kind} dropout" if document.dropout_kind else None]
        details = [detail for detail in details if detail]
        parts.append(layer + (f" ({', '.join(details)})" if details else ""))
    counts = document.sample_counts
    if counts:
        parts.append("N = " + " / ".join(f"{n} {split}" for split, n in counts.items()))
    lines = [line for line in (title, ", ".join(parts), note) if line]
    return "\n".join(lines)


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
    document = _plane_document(records_or_path)
    records = _plane_records(document, min_epoch)
    if not records:
        raise ValueError("the plane has no records yet; record at least one epoch before plotting")
    formats = _plane_check_formats(formats)
    bin_key = str(int(bins)) if bins is not None else _plane_default_bins(document)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = _plane_splits(records)
    estimators = [name for name in ("auto", "binning")
                  if any(getattr(values, name) is not None for record in records for values in record.splits().values())]
    colours = _EpochColours(records)
    limits = _document_limits(records, splits)
    written: list[Path] = []

    def panel(ax: Any, split: str, estimator: str) -> list:
        key = bin_key if estimator == "binning" else None
        points = _plane_points(records, split, estimator, key)
        ax.set_title(f"{_plane_label(document, estimator, key)} — {split}", fontsize=10)
        return _plane_axes(ax, points, colours, log_n=_plane_log_n(records, split), h_y=_plane_h_y(records, split))

    for estimator in estimators:
        figure = _agg_figure(figsize=(4.6 * len(splits) + 0.8, 4.8), layout="constrained")
        axes = figure.subplots(1, len(splits), squeeze=False)[0]
        handles = []
        for ax, split in zip(axes, splits):
            handles += panel(ax, split, estimator)
        handles += _finish_panels(axes, limits)
        _figure_legend(figure, handles)
        colours.colorbar(figure, list(axes))
        figure.suptitle(_plane_title(document, title, SAME_AXES_NOTE), fontsize=9)
        written += _plane_save(figure, out_dir, f"{prefix}_{estimator}", formats)

    if len(estimators) > 1:
        figure = _agg_figure(figsize=(4.6 * len(estimators) + 0.8, 4.0 * len(splits) + 0.4), layout="constrained")
        axes = figure.subplots(len(splits), len(estimators), squeeze=False)
        handles = []
        for row, split in enumerate(splits):
            for column, estimator in enumerate(estimators):
                handles += panel(axes[row][column], split, estimator)
        flat = [ax for row in axes for ax in row]
        handles += _finish_panels(flat, limits)
        _figure_legend(figure, handles)
        colours.colorbar(figure, flat)
        figure.suptitle(_plane_title(document, title, SAME_AXES_NOTE), fontsize=9)
        written += _plane_save(figure, out_dir, f"{prefix}_side_by_side", formats)
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
    document = _plane_document(records_or_path)
    records = _plane_records(document, min_epoch)
    counts = _plane_bin_counts(records)
    if not counts:
        raise ValueError("the plane has no binning records; record with estimators including 'binning'")
    formats = _plane_check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = _plane_splits(records)
    colours = _EpochColours(records)
    figure = _agg_figure(figsize=(3.8 * len(counts) + 0.8, 3.6 * len(splits) + 0.4), layout="constrained")
    axes = figure.subplots(len(splits), len(counts), squeeze=False)
    handles = []
    for row, split in enumerate(splits):
        for column, count in enumerate(counts):
            points = _plane_points(records, split, "binning", str(count))
            axes[row][column].set_title(f"{count} bins — {split}", fontsize=10)
            handles += _plane_axes(axes[row][column], points, colours, log_n=_plane_log_n(records, split),
                                   h_y=_plane_h_y(records, split))
    flat = [ax for row in axes for ax in row]
    handles += _finish_panels(flat, _document_limits(records, splits))
    _figure_legend(figure, handles)
    colours.colorbar(figure, flat)
    figure.suptitle(_plane_title(document, title, "binning planes by bin count; " + SAME_AXES_NOTE), fontsize=9)
    return _plane_save(figure, out_dir, prefix, formats)


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
    document = _plane_document(records_or_path)
    records = _plane_records(document, min_epoch)
    sizes = _subset_sizes(records)
    if not sizes:
        raise ValueError("the plane has no subset records; record with subsets=(1, 4) (plane_subsets=[1,4] in the experiments)")
    formats = _plane_check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = _plane_splits(records)
    colours = _EpochColours(records)
    units = document.layer_units
    figure = _agg_figure(figsize=(4.2 * len(sizes) + 0.8, 3.8 * len(splits) + 0.5), layout="constrained")
    axes = figure.subplots(len(splits), len(sizes), squeeze=False)
    handles = []
    column_panels: list[list] = [[] for _ in sizes]
    for row, split in enumerate(splits):
        for column, k in enumerate(sizes):
            points, whole_zy = _Points(), False
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
            log_n = _plane_log_n(records, split)
            h_y = _plane_h_y(records, split)
            # Small subsets sit far below log N and H(Y); a ceiling is drawn only when the points come
            # within half of it, so that it does not squeeze their trajectory (the title gives both).
            near_x = log_n is not None and points.xz and max(points.xz) > 0.5 * log_n
            near_y = h_y is not None and points.zy and max(points.zy) > 0.5 * h_y
            of_units = f" of {units}" if units else ""
            ax.set_title(f"{k}{of_units} units — {split}", fontsize=10)
            handles += _plane_axes(ax, points, colours, log_n=log_n if near_x else None, h_y=h_y if near_y else None,
                                   band_label=SUBSET_LABEL)
            ax.set_xlabel(f"I(X;Z_S) [nats], |S| = {k}")
            ax.set_ylabel("I(Z;Y) of the whole layer [nats]" if whole_zy else "I(Z_S;Y) [nats]")
            column_panels[column].append((points, log_n if near_x else None, h_y if near_y else None))
    flat = [ax for row in axes for ax in row]
    for column in range(len(sizes)):
        handles += _finish_panels([axes[row][column] for row in range(len(splits))], _plane_limits(column_panels[column]))
    _figure_legend(figure, handles)
    colours.colorbar(figure, flat)
    draws = document.config.get("subset_draws")
    note = f"random unit subsets ({draws} per size)" if draws else "random unit subsets"
    ceilings = ", ".join(f"{split}: log N = {_plane_log_n(records, split):.2f}"
                         + (f", H(Y) = {_plane_h_y(records, split):.2f}" if _plane_h_y(records, split) is not None else "")
                         for split in splits)
    note += f"; {ceilings}; each column (one size) shares its axes, columns differ"
    figure.suptitle(_plane_title(document, title, note), fontsize=9)
    return _plane_save(figure, out_dir, prefix, formats)


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

    documents = [_plane_document(item) for item in records_or_paths]
    labels = [str(label) for label in labels]
    if not documents or len(labels) != len(documents):
        raise ValueError(f"labels must name each of the {len(documents)} planes (got {len(labels)}); pass one label per plane")
    if estimator not in ("auto", "binning"):
        raise ValueError(f"estimator must be 'auto' or 'binning', got {estimator!r}")
    formats = _plane_check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_records = [_plane_records(document, None) for document in documents]
    splits = [split for split in ("train", "test") if any(split in record.splits() for records in all_records for record in records)]
    if not splits:
        raise ValueError("the planes have no records yet; record at least one epoch before plotting")
    figure = _agg_figure(figsize=(4.8 * len(splits) + 0.4, 4.6), layout="constrained")
    axes = figure.subplots(1, len(splits), squeeze=False)[0]
    handles, any_hollow, drawn, clipped = [], False, [], []
    for ax, split in zip(axes, splits):
        for index, (document, records, label) in enumerate(zip(documents, all_records, labels)):
            colour = f"C{index % 10}"
            bins = _plane_default_bins(document) if estimator == "binning" else None
            points = _plane_points(records, split, estimator, bins)
            epochs, xz, zy = points.arrays()
            if len(epochs) == 0:
                continue
            h_y = _plane_h_y(records, split)
            drawn.append((points, None, h_y))
            xz_band, zy_band = points.bands()
            if zy_band is not None and h_y is not None:
                zy_band = (zy_band[0], np.minimum(zy_band[1], h_y))  # I(Z;Y) <= H(Y)
            clipped.append((ax, {"xz": xz, "zy": zy, "xz_band": xz_band, "zy_band": zy_band}))
            if xz_band is not None or zy_band is not None:
                ax.errorbar(xz, zy, xerr=None if xz_band is None else np.vstack(_errors(xz, xz_band)),
                            yerr=None if zy_band is None else np.vstack(_errors(zy, zy_band)), fmt="none",
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
    limits = _plane_limits(drawn)
    for ax in axes:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
    for ax, pending in clipped:
        handles += _clip_markers(ax, pending)[:1]
    handles.append(Line2D([], [], color="0.4", marker="o", linestyle="none", markersize=8, label="large marker: last epoch"))
    if any_hollow:
        handles.append(Line2D([], [], color="0.4", marker="o", linestyle="none", markerfacecolor="none", label=HOLLOW_LABEL))
    _figure_legend(figure, handles)
    names = sorted({str(document.estimators.get(estimator, estimator)) for document in documents})
    figure.suptitle(_plane_title(documents[0], title, f"estimator: {', '.join(names)}; error bars: each point's band; "
                                                      "panels share their axes"), fontsize=9)
    return _plane_save(figure, out_dir, stem, formats)


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
    document = _plane_document(records_or_path)
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
    formats = _plane_check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    panels: dict[str, list] = {}
    for row in rows:
        panels.setdefault(row.get("panel", ""), []).append(row)
    labels = list(dict.fromkeys(row["label"] for row in rows))
    colours = {label: f"C{index % 10}" for index, label in enumerate(labels)}
    figure = _agg_figure(figsize=(5.4 * len(panels), 4.2), layout="constrained")
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
                    ax.axhspan(p["lower"], p["upper"], color=colours[label], alpha=0.15, label=f"{label}: bracket, lower to upper")
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
    _figure_legend(figure, handles)
    if title:
        figure.suptitle(title, fontsize=10)
    return _plane_save(figure, out_dir, stem, formats)


# ============================================================================ KL heat maps
# (Achille & Soatto, TPAMI 2018, Section 8, Fig. 3: where in the image information dropout lets
# information through.)


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _display(picture: np.ndarray) -> tuple[np.ndarray, str | None]:
    """One C x H x W image as imshow wants it (H x W grey or H x W x 3, scaled to [0, 1])."""
    picture = picture.transpose(1, 2, 0)
    low, high = picture.min(), picture.max()
    picture = (picture - low) / (high - low) if high > low else np.zeros_like(picture)
    return (picture[:, :, 0], "gray") if picture.shape[2] == 1 else (picture, None)


def _check_kl_inputs(images: np.ndarray, labels: np.ndarray, maps: list, raw_images: Any,
                     class_names: Sequence[str] | None) -> np.ndarray | None:
    """Validate plot_kl_maps' arguments at the door; returns the unwhitened images or None."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape N x C x H x W with C = 1 or 3, got {images.shape}")
    if len(labels) != len(images):
        raise ValueError(f"labels has {len(labels)} entries for {len(images)} images; pass one label per image")
    for index, kl_map in enumerate(maps):
        if kl_map.ndim != 3 or len(kl_map) != len(images):
            raise ValueError(f"kl_maps[{index}] must have shape N x h x w with N = {len(images)}, got {kl_map.shape}")
    if class_names is not None and (isinstance(class_names, str) or any(int(label) >= len(class_names) for label in labels)):
        raise ValueError(f"class_names must name every label (0..{int(np.max(labels))}); got {class_names!r}")
    if raw_images is None:
        return None
    raw = np.asarray(raw_images, dtype=np.float32)
    if raw.ndim != 4 or len(raw) != len(images) or raw.shape[1] not in (1, 3):
        raise ValueError(f"raw_images must have shape N x C x H x W with N = {len(images)}, got {raw.shape}")
    return raw


def plot_kl_maps(
    images: Any,
    labels: Sequence[int],
    kl_maps: Sequence[Any],
    out_dir: str | os.PathLike,
    *,
    prefix: str = "kl",
    class_names: Sequence[str] | None = None,
    shared_scale: bool = False,
    raw_images: Any = None,
) -> list[Path]:
    """One PNG ``<out_dir>/<prefix>_<j>.png`` per image j: the input beside one heat map per layer.

    ``images``: N x C x H x W, what the network sees (C = 1 grey, 3 colour; scaled to [0, 1] per
    image for display); ``labels``: N integer classes, shown by name with ``class_names``;
    ``kl_maps``: one array per information-dropout layer, N x h x w, the per-location KL
    ``InformationDropout.kl_map`` (nats summed over channels at each location). ``raw_images``:
    the same images before whitening (N x C x H x W), drawn first when given, so that a reader
    sees the object as well as the whitened input. Colour scales are per panel, or one scale for
    every layer of an image with ``shared_scale`` (then the layers' KL can be compared; the
    original subtracts each layer's minimum, which changes nothing under a per-panel scale).
    Returns the paths written.
    """
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels)
    maps = [np.asarray(kl_map, dtype=np.float32) for kl_map in kl_maps]
    raw = _check_kl_inputs(images, labels, maps, raw_images, class_names)
    out_dir = Path(out_dir)
    written = []
    pictures = ([(raw, "image")] if raw is not None else []) + [
        (images, "whitened input (what the network sees)" if raw is not None else "input")]
    for j in range(len(images)):
        figure = _agg_figure(figsize=(2.6 * (len(pictures) + len(maps)), 3.0))
        axes = figure.subplots(1, len(pictures) + len(maps), squeeze=False)[0]
        name = class_names[int(labels[j])] if class_names is not None else f"label {int(labels[j])}"
        for ax, (source, title) in zip(axes, pictures):
            shown, cmap = _display(source[j])
            ax.imshow(shown, cmap=cmap, interpolation="none")
            ax.set_title(f"{title}\n{name}", fontsize=8)
        # One colour scale for every layer: from 0 (no information let through) to the largest value.
        top = max(float(kl_map[j].max()) for kl_map in maps) if shared_scale and maps else None
        for i, kl_map in enumerate(maps):
            ax = axes[len(pictures) + i]
            shown = ax.imshow(kl_map[j], cmap="Blues", interpolation="none",
                              vmin=0.0 if shared_scale else None, vmax=top)
            ax.set_title(f"KL, dropout layer {i + 1}", fontsize=8)
            if not shared_scale or i == len(maps) - 1:
                bar = figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
                bar.set_label("KL per location [nats]" + (", all layers" if shared_scale else ""), fontsize=8)
        for ax in axes:
            ax.axis("off")
        figure.tight_layout()
        target = out_dir / f"{prefix}_{j}.png"
        with atomic_path(target) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
        written.append(target)
    return written


def plot_kl_maps_file(path: str | os.PathLike, out_dir: str | os.PathLike, **options: Any) -> list[Path]:
    """:func:`plot_kl_maps` from the ``kl_maps.npz`` that ``infodrop cifar plot`` and ``infodrop
    cluttered plot`` write beside their figures (``images``, ``labels``, ``kl_0``, ``kl_1``, ...;
    optionally ``raw_images``); ``options`` as for plot_kl_maps."""
    from infodrop.io import load_npz

    arrays = load_npz(path)
    maps = [arrays[f"kl_{index}"] for index in range(sum(key.startswith("kl_") for key in arrays))]
    if "raw_images" in arrays:
        options.setdefault("raw_images", arrays["raw_images"])
    return plot_kl_maps(arrays["images"], arrays["labels"], maps, out_dir, **options)


# --------------------------------------------------------------------------- estimator validation (toy problem)
# Adilova, Geiger & Fischer (ICLR 2023), Section 4 and Appendix A.7. Rows are the dicts that
# ``infodrop.experiments.toy`` writes to its CSV files (one dict per CSV line); all values in nats.


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
    out = {}
    for key, values in groups.items():
        array = np.asarray(values)
        out[key] = (float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0)
    return out


def _toy_legend(figure: Any, axes: Any, *, ncol: int = 4) -> None:
    """One legend below all panels (first handle per label), so that no legend covers data."""
    unique: dict = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            unique.setdefault(label, handle)
    figure.legend(list(unique.values()), list(unique.keys()), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                  ncol=min(ncol, len(unique)), fontsize=8, frameon=False)


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
    heading = title or f"Toy problem, Gaussian dropout variance {variance:g}: convergence (mean ± sd over seeds)"
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
    figure.suptitle(title or f"Toy problem, Gaussian dropout variance {variance:g}: estimate and bounds of h(Z)")
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
    figure.suptitle(title or f"Toy problem, Gaussian dropout variance {variance:g}: I(X;Z) by estimator (mean ± sd over seeds)")
    figure.tight_layout()
    _toy_legend(figure, axes)
    return _toy_save(figure, path)
