"""What every plane figure is drawn with: the points of a panel (epochs, estimates, bands,
saturation flags) from the typed records, common axis limits, the epoch colours, the markings of
ceilings, bands and saturated points, titles, legends, and the atomic save. Values are in nats.

Figures are drawn with matplotlib's object-oriented API on the Agg backend, so no display is
needed; matplotlib is imported inside the drawing functions: it is heavy to import and only they
need it. The figures themselves are in :mod:`infodrop.plane.figures`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infodrop.io import atomic_path
from infodrop.plane.record import PlaneDocument, PlaneRecord, VariationalEstimate


def plane_document(records_or_path: Any) -> PlaneDocument:
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


def plane_records(document: PlaneDocument, min_epoch: int | None) -> list[PlaneRecord]:
    """The records sorted by epoch, from ``min_epoch`` on."""
    if min_epoch is not None and (isinstance(min_epoch, bool) or not isinstance(min_epoch, (int, np.integer))):
        raise ValueError(f"min_epoch must be an integer or None, got {min_epoch!r}")
    return document.sorted_records(min_epoch)


def log_n_of(records: list[PlaneRecord], split: str) -> float | None:
    sizes = {record.splits()[split].n for record in records if split in record.splits()}
    return float(np.log(max(sizes))) if sizes else None


def h_y_of(records: list[PlaneRecord], split: str) -> float | None:
    """H(Y) of the split's labels (the ceiling of I(Z;Y)), when recorded."""
    values = [record.splits()[split].h_y for record in records
              if split in record.splits() and record.splits()[split].h_y is not None]
    return float(max(values)) if values else None


def splits_of(records: list[PlaneRecord]) -> list[str]:
    return [split for split in ("train", "test") if any(split in record.splits() for record in records)]


class Points:
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


def plane_points(records: list[PlaneRecord], split: str, estimator: str, bins: str | None = None) -> Points:
    """The points of one split and estimator (``bins``: the bin count of binning). The band is
    ``i_xz_lower``/``i_xz_upper`` (and ``i_zy_*``) when recorded; files written before the bands
    were recorded fall back to the pairwise bracket of the mixture, labelled as such."""
    points = Points()
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


def errors(values: np.ndarray, band: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
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


def plane_limits(panels: Sequence[tuple["Points", float | None, float | None]]) -> tuple[tuple, tuple]:
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
            # I(Z;Y) <= H(Y): the drawn upper end is capped there (see plane_axes).
            y_highs += (np.minimum(zy_band[1], h_y) if h_y is not None else zy_band[1]).tolist()
    return (_axis_range(xs, x_ceilings, x_lows, x_highs), _axis_range(ys, y_ceilings, y_lows, y_highs))


def clip_markers(ax: Any, pending: dict) -> list:
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


def finish_panels(axes: Sequence[Any], limits: tuple[tuple, tuple] | None = None) -> list:
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
        handles += clip_markers(ax, pending)
        _ceiling_labels(ax, pending["log_n"], pending["h_y"])
        if pending["note"]:
            ax.set_title(f"{ax.get_title()}\n{pending['note']}", fontsize=7.5)
        ax._infodrop_pending = None
    return handles


class EpochColours:
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


def plane_axes(ax: Any, points: Points, colours: EpochColours, *, log_n: float | None = None,
                h_y: float | None = None, band_label: str | None = None) -> list:
    """Draw one plane: the band as grey error bars, the trajectory as a grey line, the points
    coloured by epoch (hollow exactly where the record says saturated), log N (the most a plug-in or
    plain mixture estimate of I(X;Z) from N inputs can give) dotted and H(Y) (the ceiling of
    I(Z;Y)) dash-dotted. What depends on the final limits (clipped bands, the ceilings' values, a
    note) waits on the axes for :func:`finish_panels`. Returns the legend handles of the markings
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
        xerr = None if xz_band is None else np.vstack(errors(xz, xz_band))
        yerr = None if zy_band is None else np.vstack(errors(zy, zy_band))
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


def figure_legend(figure: Any, handles: list, columns: int = 3) -> None:
    """One legend below the panels with every marking used in them (first handle per label), in
    at most ``columns`` columns."""
    unique = {}
    for handle in handles:
        unique.setdefault(handle.get_label(), handle)
    if unique:
        figure.legend(handles=list(unique.values()), loc="outside lower center", ncol=min(columns, len(unique)),
                      fontsize=7, frameon=False)


def save_figure(figure: Any, out_dir: str | os.PathLike, stem: str, formats: Sequence[str]) -> list[Path]:
    """Save ``figure`` as out_dir/stem.<format> for each format, atomically (``out_dir`` created)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=fmt, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def agg_figure(**options: Any) -> Any:
    """A matplotlib ``Figure(**options)`` on the Agg backend: drawn for files only, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(**options)


def bin_counts(records: list[PlaneRecord]) -> list[int]:
    """Every bin count recorded in any split, ascending."""
    return sorted({int(b) for record in records for values in record.splits().values() for b in (values.binning or {})})


def default_bins(document: PlaneDocument) -> str | None:
    counts = bin_counts(document.records)
    return str(counts[len(counts) // 2]) if counts else None


def plane_label(document: PlaneDocument, estimator: str, bins: str | None) -> str:
    name = document.estimators.get(estimator, estimator)
    if estimator == "binning" and bins is not None:
        name = f"binning, {bins} bins"
    return name


def document_limits(records: list[PlaneRecord], splits: Sequence[str]) -> tuple[tuple, tuple]:
    """The limits of every plane figure of one file (the mixture or KL estimate and binning at
    every recorded bin count, both splits), so that the same points sit on the same axes in
    plane_auto, plane_binning, plane_side_by_side and plane_binning_bins."""
    panels = []
    for split in splits:
        log_n, h_y = log_n_of(records, split), h_y_of(records, split)
        panels.append((plane_points(records, split, "auto"), log_n, h_y))
        panels += [(plane_points(records, split, "binning", str(count)), log_n, h_y) for count in bin_counts(records)]
    return plane_limits(panels)


def plane_title(document: PlaneDocument, title: str | None, note: str | None = None) -> str:
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
