"""Figures of a seed study (:mod:`infodrop.study`): I(X;Z) against the epoch as the mean over
seeds with the spread between seeds, beside the accuracy and the learning rate. Values in nats.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from infodrop.plane.panels import agg_figure, figure_legend, save_figure
from infodrop.plane.settings import check_formats
from infodrop.study import Run, seed_summary

__all__ = ["plot_seed_summary"]

# Colour = setting (colour-blind safe, Okabe-Ito); marker = setting too, for grey-scale prints.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _metric_curve(runs: Sequence[Run], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Epochs, mean and spread over seeds of a metrics.jsonl entry (epochs every run logged)."""
    per_run = [{line["epoch"]: line[key] for line in run.metrics if key in line and line.get(key) is not None} for run in runs]
    if not per_run or not all(per_run):
        return None
    epochs = sorted(set.intersection(*(set(values) for values in per_run)))
    values = np.array([[values[epoch] for epoch in epochs] for values in per_run], dtype=np.float64)
    spread = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(epochs))
    return np.array(epochs), values.mean(axis=0), spread


def _short_labels(labels: list[str]) -> list[str]:
    """Setting names without the comma-separated parts that every name has."""
    parts = [label.split(",") for label in labels]
    shared = set.intersection(*(set(part) for part in parts)) if len(labels) > 1 else set()
    short = [",".join(part for part in split if part not in shared) or label for split, label in zip(parts, labels)]
    return [_wrapped(label) for label in short]


def _wrapped(label: str, width: int = 40) -> str:
    """A long run name broken after its commas, so that a legend does not squeeze the panels."""
    lines, line = [], ""
    for part in label.split(","):
        candidate = f"{line},{part}" if line else part
        if line and len(candidate) > width:
            lines.append(line + ",")
            line = part
        else:
            line = candidate
    return "\n".join(lines + [line])


def _panel_title(subset: int | None) -> str:
    return "I(X;Z), whole layer" if subset is None else f"I(X;Z_S), mean over {subset}-unit subsets"


def _finish_panel(axis, subset: int | None, clipped: list, log_n: float | None) -> list:
    """Limits, title and labels of one I(X;Z) panel; band edges above the top are cut there and
    marked with an arrowhead; log N drawn where it is on the panel's scale. Returns the log N
    line (for the legend) or nothing."""
    # The axis follows the means and spreads; a band edge far above them (the leave-one-out
    # upper edge of a saturated point) is cut at the top rather than squashing the data.
    data_top = max((line.get_ydata().max() for line in axis.lines if len(line.get_ydata())), default=1.0)
    top = 1.25 * max(data_top, 1e-3)
    # log N bounds the mixture estimate; beside a variational bound of thousands of nats it is a
    # line on the floor that says nothing, so it is drawn only where it is on the scale.
    show_log_n = log_n is not None and 0.8 * log_n < top < 20 * log_n
    if show_log_n:
        top = max(top, 1.08 * log_n)
    axis.set_ylim(bottom=min(0.0, axis.get_ylim()[0]), top=top)
    for epochs, upper, colour in clipped:
        cut = upper > top
        axis.plot(epochs[cut], np.full(cut.sum(), 0.985 * top), marker="^", color=colour, markersize=4, linestyle="none")
    axis.set_title(_panel_title(subset), fontsize=9)
    axis.set_xlabel("epoch")
    axis.set_ylabel("nats (mean over seeds)")
    if not show_log_n:
        return []
    return [axis.axhline(log_n, color="grey", linestyle=":", linewidth=1, label=f"log N = {log_n:.2f} (N inputs)")]


def _marking_handles() -> list:
    """Legend entries for the markings every I(X;Z) panel uses."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Line2D([], [], marker="o", color="grey", linestyle="none", markersize=4, label="filled: no seed saturated"),
        Line2D([], [], marker="o", color="grey", markerfacecolor="white", linestyle="none", markersize=4.5,
               label="hollow: saturated in at least one seed (its band reaches log N)"),
        Line2D([], [], color="grey", linewidth=0.6, label="bar: mean estimator band; ^ where cut at the top"),
        Patch(color="grey", alpha=0.2, label="shaded: +-1 s.d. between seeds"),
    ]


def plot_seed_summary(settings: Mapping[str, Sequence[Run]], out_dir: str | os.PathLike, *, stem: str = "seed_summary",
                      split: str = "train", subsets: Sequence[int | None] = (None,), formats: Sequence[str] = ("png",),
                      title: str | None = None) -> list[Path]:
    """Draw I(X;Z) against the epoch for several settings, each as the mean over its seeds with a
    shaded band of +- one spread between seeds (sample standard deviation over seeds), and the
    mean estimator band as error bars (cut at the top of the panel with an arrowhead); beside them
    the test and training error and the learning rate.

    settings: label -> runs of that setting (from :func:`infodrop.study.load_runs`); the
        ``key=value`` parts that all labels share are left out of the legend.
    subsets: one panel per entry: None = the whole layer, k = the mean over the k-unit subsets.
    Hollow markers: epochs where at least one seed's point is saturated (the estimate measures
    N, not the network); the dotted line is log N, labelled with its value in the legend. One
    legend below the panels says every marking; ``title`` heads the figure.
    Writes out_dir/stem.<format> and returns the paths.
    """
    formats = check_formats(formats)
    if not settings:
        raise ValueError("settings is empty; give label -> runs of at least one setting")
    panels = len(subsets) + 1
    figure = agg_figure(figsize=(4.2 * panels, 4.8), layout="constrained")
    axes = figure.subplots(1, panels, squeeze=False)[0]
    log_n = None
    handles = []
    clipped: list[list] = [[] for _ in subsets]  # per panel: (epochs, upper band edges, colour)
    for index, (label, runs) in enumerate(zip(_short_labels(list(settings)), settings.values())):
        colour, marker = COLOURS[index % len(COLOURS)], MARKERS[index % len(MARKERS)]
        handle = None
        for panel, subset in enumerate(subsets):
            axis = axes[panel]
            rows = seed_summary(runs, estimator="auto", split=split, subset=subset)
            if not rows:
                continue  # this setting did not record the trajectory: its colour is absent from the panel
            epochs = np.array([row.epoch for row in rows])
            mean = np.array([row.mean for row in rows])
            spread = np.array([row.spread for row in rows])
            upper = np.array([row.upper for row in rows])
            below = np.clip(mean - np.array([row.lower for row in rows]), 0, None)
            above = np.clip(upper - mean, 0, None)
            axis.fill_between(epochs, mean - spread, mean + spread, color=colour, alpha=0.2, linewidth=0)
            bars = axis.errorbar(epochs, mean, yerr=[below, above], color=colour, linewidth=1.2, elinewidth=0.6,
                                 capsize=0, label=f"{label} ({len(runs)} seeds)")
            handle = handle or bars
            clipped[panel].append((epochs, upper, colour))
            saturated = np.array([row.saturated > 0 for row in rows])
            axis.plot(epochs[~saturated], mean[~saturated], marker, color=colour, markersize=3.5, linestyle="none")
            axis.plot(epochs[saturated], mean[saturated], marker, markerfacecolor="white", markeredgecolor=colour,
                      markersize=4.5, linestyle="none")
            log_n = log_n or runs[0].document.log_n(split)
        if handle is not None:
            handles.append(handle)
        error = _metric_curve(runs, "test_error")
        if error is not None:
            epochs, mean, spread = error
            axes[-1].plot(epochs, 100 * mean, color=colour, linewidth=1.2)
            # an error is never below 0: the shading stops there
            axes[-1].fill_between(epochs, np.clip(100 * (mean - spread), 0, None), 100 * (mean + spread), color=colour,
                                  alpha=0.2, linewidth=0)
        train_error = _metric_curve(runs, "train_error")
        if train_error is not None:
            axes[-1].plot(train_error[0], 100 * train_error[1], color=colour, linewidth=1.0, linestyle="--")
    log_n_lines = []
    for panel, subset in enumerate(subsets):
        log_n_lines += _finish_panel(axes[panel], subset, clipped[panel], log_n)
    axes[-1].set_title("error (solid: test, dashed: train)", fontsize=9)
    axes[-1].set_xlabel("epoch")
    axes[-1].set_ylabel("error, % (mean over seeds)")
    first = next(iter(settings.values()))
    lr = _metric_curve(first, "lr")
    if lr is not None:
        twin = axes[-1].twinx()
        twin.plot(lr[0], lr[1], color="grey", linewidth=0.8, linestyle=":")
        twin.set_ylim(0, 1.1 * max(lr[1].max(), 1e-12))  # from 0, so that a constant rate reads as constant
        twin.set_ylabel("learning rate (dotted)", fontsize=8, color="grey")
    figure_legend(figure, handles + log_n_lines + _marking_handles(), columns=3 if panels > 2 else 2)
    heading = f"{title}\n" if title else ""
    figure.suptitle(f"{heading}I(X;Z) of the {split} split: mean over seeds", fontsize=9)
    return save_figure(figure, Path(out_dir), stem, formats)
