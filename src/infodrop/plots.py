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
from infodrop.plane_record import PlaneDocument, PlaneRecord

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


def _plane_splits(records: list[PlaneRecord]) -> list[str]:
    return [split for split in ("train", "test") if any(split in record.splits() for record in records)]


def _plane_points(records: list[PlaneRecord], split: str, estimator: str, bins: str | None = None) -> tuple:
    """(epochs, I(X;Z), I(Z;Y), I(X;Z) brackets or None) of one split and estimator, in nats."""
    epochs, xz, zy, lower, upper = [], [], [], [], []
    for record in records:
        values = record.splits().get(split)
        point = values.point(estimator, bins) if values is not None else None
        if point is None or point.i_xz is None or point.i_zy is None:
            continue
        epochs.append(record.epoch)
        xz.append(point.i_xz)
        zy.append(point.i_zy)
        bracket = getattr(point, "i_xz_bounds", None)
        lower.append(bracket[0] if bracket else np.nan)
        upper.append(bracket[1] if bracket else np.nan)
    bracket = None if np.all(np.isnan(lower)) else (np.asarray(lower), np.asarray(upper))
    return np.asarray(epochs), np.asarray(xz, dtype=float), np.asarray(zy, dtype=float), bracket


def _plane_axes(ax: Any, epochs: np.ndarray, xz: np.ndarray, zy: np.ndarray, norm: Any, *, bracket: Any = None,
                log_n: float | None = None) -> Any:
    """Draw one plane: the trajectory as a grey line, the points coloured by epoch, and log N
    (the most a plug-in or plain mixture estimate of I(X;Z) from N inputs can give) dotted."""
    if len(epochs) == 0:
        ax.text(0.5, 0.5, "no points", ha="center", va="center", transform=ax.transAxes)
        return None
    if log_n is not None:
        ax.axvline(log_n, color="0.5", linestyle=":", linewidth=1.0, label="log N")
        ax.legend(loc="lower right", fontsize=7)
    if bracket is not None:
        ax.errorbar(xz, zy, xerr=np.abs(np.vstack([xz - bracket[0], bracket[1] - xz])), fmt="none",
                    ecolor="0.75", elinewidth=0.8, zorder=1)
    ax.plot(xz, zy, color="0.6", linewidth=0.8, zorder=2)
    points = ax.scatter(xz, zy, c=epochs, cmap="viridis", norm=norm, s=28, edgecolors="k", linewidths=0.3, zorder=3)
    ax.set_xlabel("I(X;Z) [nats]")
    ax.set_ylabel("I(Z;Y) [nats]")
    ax.grid(True, alpha=0.3)
    return points


def _plane_save(figure: Any, out_dir: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    """Save ``figure`` as out_dir/stem.<format> for each format, atomically."""
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=fmt, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def _plane_check_formats(formats: Any) -> tuple[str, ...]:
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    if not formats or any(fmt not in ("png", "pdf", "svg") for fmt in formats):
        raise ValueError(f"formats must be a non-empty subset of ('png', 'pdf', 'svg'), got {formats!r}")
    return formats


def _plane_norm(records: list[PlaneRecord]) -> Any:
    from matplotlib.colors import Normalize

    epochs = [record.epoch for record in records] or [0]
    low, high = min(epochs), max(epochs)
    return Normalize(vmin=low, vmax=high if high > low else low + 1)


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
    test panel and an epoch colour bar; for the mixture estimator the pairwise bracket of I(X;Z)
    is drawn as a grey horizontal bar. When there is more than one estimator a further figure
    ``<prefix>_side_by_side`` puts them next to each other (rows: splits), as in Fig. 1/5.

    Args:
        records_or_path: a plane JSON path, a :class:`~infodrop.plane_record.PlaneDocument` (or the
            JSON form ``InformationPlane.load`` returns), or a list of records.
        out_dir: folder for the figures (created).
        bins: the bin count of the binning plane (default: the middle of the recorded counts).
        prefix: file-name prefix. formats: file formats ('png', 'pdf', 'svg').
        title: optional figure title prefix (e.g. the run name).
        min_epoch: draw only records from this epoch on (e.g. 1 to leave out the initialisation,
            whose point near the origin squeezes the rest of the trajectory).

    Returns:
        The paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure

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
    norm = _plane_norm(records)
    written: list[Path] = []

    def panel(ax: Any, split: str, estimator: str) -> None:
        key = bin_key if estimator == "binning" else None
        epochs, xz, zy, bracket = _plane_points(records, split, estimator, key)
        _plane_axes(ax, epochs, xz, zy, norm, bracket=bracket, log_n=_plane_log_n(records, split))
        ax.set_title(f"{_plane_label(document, estimator, key)} — {split}", fontsize=10)

    for estimator in estimators:
        figure = Figure(figsize=(4.6 * len(splits) + 0.8, 4.0), layout="constrained")
        axes = figure.subplots(1, len(splits), squeeze=False)[0]
        for ax, split in zip(axes, splits):
            panel(ax, split, estimator)
        figure.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=list(axes), label="epoch")
        if title:
            figure.suptitle(title)
        written += _plane_save(figure, out_dir, f"{prefix}_{estimator}", formats)

    if len(estimators) > 1:
        figure = Figure(figsize=(4.6 * len(estimators) + 0.8, 3.8 * len(splits)), layout="constrained")
        axes = figure.subplots(len(splits), len(estimators), squeeze=False)
        for row, split in enumerate(splits):
            for column, estimator in enumerate(estimators):
                panel(axes[row][column], split, estimator)
        figure.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=[ax for row in axes for ax in row], label="epoch")
        if title:
            figure.suptitle(title)
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
    by epoch, values in nats; ``min_epoch`` as in :func:`plot_information_plane`. Returns the paths
    written (``<prefix>.<format>``)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure

    document = _plane_document(records_or_path)
    records = _plane_records(document, min_epoch)
    counts = _plane_bin_counts(records)
    if not counts:
        raise ValueError("the plane has no binning records; record with estimators including 'binning'")
    formats = _plane_check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = _plane_splits(records)
    norm = _plane_norm(records)
    figure = Figure(figsize=(3.8 * len(counts) + 0.8, 3.4 * len(splits)), layout="constrained")
    axes = figure.subplots(len(splits), len(counts), squeeze=False)
    for row, split in enumerate(splits):
        for column, count in enumerate(counts):
            epochs, xz, zy, _ = _plane_points(records, split, "binning", str(count))
            _plane_axes(axes[row][column], epochs, xz, zy, norm, log_n=_plane_log_n(records, split))
            axes[row][column].set_title(f"{count} bins — {split}", fontsize=10)
    figure.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=[ax for row in axes for ax in row], label="epoch")
    if title:
        figure.suptitle(title)
    return _plane_save(figure, out_dir, prefix, formats)


def plot_plane_figures(
    records_or_path: Any,
    out_dir: str | os.PathLike,
    *,
    formats: Sequence[str] = ("png", "pdf"),
    title: str | None = None,
) -> list[Path]:
    """Every figure of a recorded plane: one plane per estimator (and ours beside binning), plus
    the binning planes per bin count when binning was recorded. Returns the paths written."""
    document = _plane_document(records_or_path)
    figures = plot_information_plane(document, out_dir, formats=tuple(formats), title=title)
    if "binning" in document.estimators:
        figures += plot_binning_planes(document, out_dir, formats=tuple(formats), title=title)
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
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    formats = _plane_check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    panels: dict[str, list] = {}
    for row in rows:
        panels.setdefault(row.get("panel", ""), []).append(row)
    labels = list(dict.fromkeys(row["label"] for row in rows))
    colours = {label: f"C{index % 10}" for index, label in enumerate(labels)}
    figure = Figure(figsize=(5.4 * len(panels), 4.2), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
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
                    ax.axhspan(p["lower"], p["upper"], color=colours[label], alpha=0.15)
        if ceilings:
            ax.axhline(max(ceilings), color="0.4", linestyle=":", linewidth=1.0, label="log N (plug-in ceiling)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("number of bins per unit")
        ax.set_ylabel("I(X;Z) [nats]")
        ax.grid(True, alpha=0.3, which="both")
        if panel:
            ax.set_title(panel, fontsize=10)
        ax.legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    return _plane_save(figure, out_dir, stem, formats)


# ============================================================================ KL heat maps
# (Achille & Soatto, TPAMI 2018, Section 8, Fig. 3: where in the image information dropout lets
# information through.)


def plot_kl_maps(
    images: Any,
    labels: Sequence[int],
    kl_maps: Sequence[Any],
    out_dir: str | os.PathLike,
    *,
    prefix: str = "kl",
) -> list[Path]:
    """One PNG ``<out_dir>/<prefix>_<j>.png`` per image j: the input beside one heat map per layer.

    ``images``: N x C x H x W (C = 1 grey, 3 colour; scaled to [0, 1] per image for display);
    ``labels``: N; ``kl_maps``: one array per information-dropout layer, N x h x w, the per-location
    KL ``InformationDropout.kl_map`` (nats summed over channels at each location). Colour scales are
    per panel; the original subtracts each layer's minimum, which changes nothing under a per-panel
    scale. Returns the paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape N x C x H x W with C = 1 or 3, got {images.shape}")
    labels = np.asarray(labels)
    maps = [np.asarray(kl_map, dtype=np.float32) for kl_map in kl_maps]
    if len(labels) != len(images):
        raise ValueError(f"labels has {len(labels)} entries for {len(images)} images; pass one label per image")
    for index, kl_map in enumerate(maps):
        if kl_map.ndim != 3 or len(kl_map) != len(images):
            raise ValueError(f"kl_maps[{index}] must have shape N x h x w with N = {len(images)}, got {kl_map.shape}")
    out_dir = Path(out_dir)
    written = []
    for j in range(len(images)):
        figure = Figure(figsize=(2.6 * (1 + len(maps)), 2.8))
        axes = figure.subplots(1, 1 + len(maps), squeeze=False)
        picture = images[j].transpose(1, 2, 0)
        low, high = picture.min(), picture.max()
        picture = (picture - low) / (high - low) if high > low else np.zeros_like(picture)
        grey = picture.shape[2] == 1
        axes[0, 0].imshow(picture[:, :, 0] if grey else picture, cmap="gray" if grey else None, interpolation="none")
        axes[0, 0].set_title(f"input (label {int(labels[j])})", fontsize=9)
        for i, kl_map in enumerate(maps):
            shown = axes[0, i + 1].imshow(kl_map[j], cmap="Blues", interpolation="none")
            axes[0, i + 1].set_title(f"KL, dropout layer {i + 1}", fontsize=9)
            figure.colorbar(shown, ax=axes[0, i + 1], fraction=0.046, pad=0.04)
        for axis in axes[0]:
            axis.axis("off")
        figure.tight_layout()
        target = out_dir / f"{prefix}_{j}.png"
        with atomic_path(target) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
        written.append(target)
    return written


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


def plot_convergence(rows: Sequence[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Figs. 2 and 9 of Adilova et al. (2023): our estimates of h(Z|X) (top row) and I(X;Z)
    (bottom row) against the number N of inputs, one column per input dimension n, mean ± sd over
    seeds, with the quadrature truth as a dashed line. ``rows``: dicts with keys dim, n_samples,
    seed, variance, h_z_given_x, i_xz, h_z_given_x_truth, i_xz_truth (nats), optionally i_xz_loo
    (the leave-one-out variant, drawn too). Writes a PNG (150 dpi) to ``path`` and returns it.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; pass the rows of at least one run")
    dims = sorted({int(r["dim"]) for r in rows})
    figure, axes = _toy_figure(2, len(dims))
    quantities = (
        ("h_z_given_x", "h(Z|X) [nats]", [("h_z_given_x", "MC estimate of h(Z|X)", "tab:blue", "o")]),
        ("i_xz", "I(X;Z) [nats]", [("i_xz", "our estimate of I(X;Z)", "tab:blue", "o"),
                                   ("i_xz_loo", "leave-one-out variant", "tab:orange", "s")]),
    )
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
            if key == "i_xz":
                # The plain mixture estimate cannot exceed about log N (own component included).
                # Drawn where I(X;Z) was estimated; the y range stays that of the estimates.
                sizes = sorted({int(r["n_samples"]) for r in rows if int(r["dim"]) == dim and not np.isnan(float(r["i_xz"]))})
                if sizes:
                    low, high = ax.get_ylim()
                    ax.plot(sizes, np.log(sizes), color="gray", ls=":", lw=1.2, label="log N")
                    ax.set_ylim(low, high)
            ax.set_xscale("log")
            ax.set_xlabel("number of inputs N")
            ax.set_ylabel(ylabel)
            ax.set_title(f"n = {dim}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="best")
    variance = rows[0].get("variance")
    figure.suptitle(title or f"Toy problem, Gaussian dropout variance {variance:g}: convergence (mean ± sd over seeds)")
    figure.tight_layout()
    return _toy_save(figure, path)


def plot_entropy_bounds(rows: Sequence[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Figs. 3 and 8 of Adilova et al. (2023): the mixture estimate of h(Z) against the Gaussian
    (Ledoit-Wolf) upper bound, the Kolchinsky-Tracey pairwise bounds and the quadrature truth, against
    the dimension n at the largest N (left), and the same quantities minus the truth for every N
    (right). ``rows``: dicts with keys dim, n_samples, seed, variance, h_z_mixture,
    h_z_gaussian_upper, h_z_pairwise_lower, h_z_pairwise_upper, h_z_truth (nats). Writes a PNG.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; pass the rows of at least one run")
    series = (
        ("h_z_mixture", "mixture estimate", "tab:blue", "o", "-"),
        ("h_z_gaussian_upper", "Gaussian upper bound (Ledoit-Wolf)", "tab:red", "s", "-"),
        ("h_z_pairwise_upper", "pairwise upper bound (KL)", "tab:orange", "^", "--"),
        ("h_z_pairwise_lower", "pairwise lower bound (Bhattacharyya)", "tab:green", "v", "--"),
    )
    sizes = sorted({int(r["n_samples"]) for r in rows})
    largest = sizes[-1]
    truth = {int(r["dim"]): float(r["h_z_truth"]) for r in rows}
    dims = sorted(truth)
    figure, axes = _toy_figure(1, 2, width=5.2, height=4.0)
    left, right = axes[0]
    for key, label, color, marker, style in series:
        stats = _toy_group([r for r in rows if int(r["n_samples"]) == largest], ("dim",), key)
        points = sorted((d, m, s) for (d,), (m, s) in stats.items())
        if points:
            d, mean, sd = zip(*points)
            left.errorbar(d, mean, yerr=sd, marker=marker, ms=4, capsize=3, color=color, ls=style, label=label)
    left.plot(dims, [truth[d] for d in dims], color="black", lw=1.2, ls=":", label="quadrature truth")
    left.set_xlabel("input dimension n")
    left.set_ylabel("h(Z) [nats]")
    left.set_title(f"N = {largest} inputs")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="best")

    dashes = ["-", "--", "-.", ":"]
    for key, label, color, marker, _ in series:
        stats = _toy_group(rows, ("dim", "n_samples"), key)
        for index, size in enumerate(sizes):
            points = sorted((d, m - truth[d]) for (d, n), (m, _) in stats.items() if n == size)
            if points:
                d, gap = zip(*points)
                right.plot(d, gap, marker=marker, ms=4, color=color, ls=dashes[index % len(dashes)],
                           label=f"{label.split(' (')[0]}, N = {size}")
    right.axhline(0.0, color="black", lw=1.0, ls=":")
    right.set_xlabel("input dimension n")
    right.set_ylabel("estimate − truth of h(Z) [nats]")
    right.set_title("difference from the quadrature truth")
    right.grid(alpha=0.3)
    right.legend(fontsize=7, loc="best", ncol=1)
    variance = rows[0].get("variance")
    figure.suptitle(title or f"Toy problem, Gaussian dropout variance {variance:g}: estimate and bounds of h(Z)")
    figure.tight_layout()
    return _toy_save(figure, path)


def plot_estimator_comparison(rows: Sequence[dict], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Figs. 4 and 10 of Adilova et al. (2023): I(X;Z) of every estimator, one panel per input
    dimension n. Binning is drawn against the number of bins (bottom axis) and the bin size (top
    axis, finer to the right); every other estimator, the quadrature truth and log N (the most a
    discrete estimator can give) are horizontal lines. ``rows``: dicts with keys dim, n_samples,
    seed, variance, estimator, setting, i_xz, i_xz_truth, log_n (nats). Writes a PNG (150 dpi).
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; pass the rows of at least one run")
    dims = sorted({int(r["dim"]) for r in rows})
    n_cols = min(3, len(dims))
    n_rows = -(-len(dims) // n_cols)
    figure, axes = _toy_figure(n_rows, n_cols, width=4.8, height=4.0)
    stats = _toy_group(rows, ("dim", "estimator", "setting"), "i_xz")
    scalar = [e for e in dict.fromkeys(str(r["estimator"]) for r in rows) if not e.startswith("binning")]
    import matplotlib

    names = {"ours": "ours (mixture)", "ours_loo": "ours (leave-one-out)", "edge": "EDGE", "ksg": "KSG", "doe": "DoE", "doe_l": "DoE (logistic)", "mine": "MINE", "infonce": "InfoNCE"}
    # purple, brown and gray are kept for binning and log N
    fixed = {"ours": ("tab:blue", "-"), "ours_loo": ("tab:orange", "-."), "edge": ("tab:green", "--"),
             "ksg": ("tab:red", "-."), "doe": ("tab:pink", "--"), "doe_l": ("tab:olive", "-"),
             "mine": ("tab:cyan", "-."), "infonce": ("navy", "--")}  # fmt: skip
    spare = [matplotlib.colormaps["Dark2"](i) for i in range(8)]
    colors = {name: fixed.get(name, (spare[i % 8], ":"))[0] for i, name in enumerate(scalar)}
    line_styles = {name: fixed.get(name, (None, ":"))[1] for name in scalar}
    handles = {}
    for index, dim in enumerate(dims):
        ax = axes[index // n_cols][index % n_cols]
        subset = [r for r in rows if int(r["dim"]) == dim]
        truth = float(subset[0]["i_xz_truth"])
        log_n = float(subset[0]["log_n"])
        handles["truth"] = ax.axhline(truth, color="black", lw=2.0, label="quadrature truth")
        handles["log_n"] = ax.axhline(log_n, color="gray", lw=1.2, ls="--", label=f"log N (N = {int(subset[0]['n_samples'])})")
        for name in scalar:
            for (d, estimator, setting), (mean, _) in stats.items():
                if d == dim and estimator == name:
                    handles[name] = ax.axhline(
                        mean, color=colors[name], lw=2.2 if name == "ours" else 1.3,
                        ls=line_styles[name], label=names.get(name, name),
                    )
        by_count = sorted((int(s), m) for (d, e, s), (m, _) in stats.items() if d == dim and e == "binning_bins")
        if by_count:
            x, y = zip(*by_count)
            (handles["binning_bins"],) = ax.plot(x, y, color="tab:purple", ls=":", marker="o", ms=4, label="binning by number")
            ax.set_xlabel("number of bins")
        else:
            ax.set_xticks([])
        by_size = sorted((float(s), m) for (d, e, s), (m, _) in stats.items() if d == dim and e == "binning_size")
        if by_size:
            top = ax.twiny()
            x, y = zip(*by_size)
            (handles["binning_size"],) = top.plot(x, y, color="tab:brown", ls=":", marker="s", ms=4, label="binning by size")
            top.set_xscale("log")
            top.invert_xaxis()
            top.set_xlabel("bin size")
        ax.set_ylabel("I(X;Z) [nats]")
        ax.set_title(f"n = {dim}", loc="left")
        ax.grid(alpha=0.3)
    for index in range(len(dims), n_rows * n_cols):
        axes[index // n_cols][index % n_cols].set_visible(False)
    variance = rows[0].get("variance")
    figure.suptitle(title or f"Toy problem, Gaussian dropout variance {variance:g}: I(X;Z) by estimator")
    figure.tight_layout()
    figure.legend(list(handles.values()), [h.get_label() for h in handles.values()], loc="upper center",
                  ncol=min(5, len(handles)), fontsize=8, bbox_to_anchor=(0.5, 0.0))
    return _toy_save(figure, path)
