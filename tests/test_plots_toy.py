"""Toy-problem figures (Adilova et al. 2023, Figs. 2-4, 8-10) are readable: legends outside the
data, log N inside the axes, the rows' different N ranges said, one place per estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests._subprocess import REPO


@pytest.fixture()
def saved(monkeypatch):
    """The matplotlib figures the toy plot functions save."""
    import infodrop.experiments.toy_figures as plots

    figures = []
    original = plots._toy_save

    def capture(figure, path):
        figures.append(figure)
        return original(figure, path)

    monkeypatch.setattr(plots, "_toy_save", capture)
    return figures


def _rows(name: str) -> list[dict]:
    from infodrop.experiments.toy import read_csv

    return read_csv(REPO / "docs" / "data" / f"toy_{name}_var0.1.csv")


def _no_legend_in_a_panel(figure) -> None:
    assert figure.legends, "one legend for the figure"
    assert all(ax.get_legend() is None for ax in figure.axes)


def test_convergence_keeps_log_n_inside_the_axes_and_says_the_rows_differ_in_n(tmp_path, saved):
    from infodrop.experiments.toy_figures import plot_convergence

    rows = _rows("convergence")
    plot_convergence(rows, tmp_path / "c.png")
    figure = saved[0]
    _no_legend_in_a_panel(figure)
    largest_estimated = max(int(r["n_samples"]) for r in rows if not math.isnan(float(r["i_xz"])))
    for ax in figure.axes[len(figure.axes) // 2:]:  # the I(X;Z) row
        low, high = ax.get_ylim()
        assert low <= math.log(10) and math.log(largest_estimated) <= high
    assert f"I(X;Z) only up to N = {largest_estimated:,}" in figure.get_suptitle()
    assert len({ax.get_xlim() for ax in figure.axes}) == 1  # both rows on one N axis


def test_compare_puts_every_bin_free_estimator_at_a_place_of_its_own(tmp_path, saved):
    from infodrop.experiments.toy_figures import plot_estimator_comparison

    plot_estimator_comparison(_rows("compare"), tmp_path / "e.png")
    figure = saved[0]
    _no_legend_in_a_panel(figure)
    top = figure.axes[0]
    labels = [label.get_text() for label in top.get_xticklabels()]
    assert len(labels) == len(set(labels)) >= 8 and "ours (mixture)" in labels
    places = [tuple(line.get_xdata()) for line in top.get_lines() if len(line.get_xdata()) == 1]
    assert len(set(places)) == len(labels)


def test_bounds_give_each_quantity_one_colour_and_marker_and_a_legend_outside(tmp_path, saved):
    from infodrop.experiments.toy_figures import plot_entropy_bounds

    plot_entropy_bounds(_rows("bounds"), tmp_path / "b.png")
    figure = saved[0]
    _no_legend_in_a_panel(figure)
    texts = [text.get_text() for text in figure.legends[0].get_texts()]
    assert len(texts) == 5 and any("within" in text for text in texts)
    markers = {line.get_marker() for ax in figure.axes for line in ax.get_lines() if line.get_marker() not in (None, "None", "")}
    assert {"o", "s", "^", "v"} <= markers
    np.testing.assert_equal(len({ax.get_ylim() for ax in figure.axes[1:]}), 1)  # every N on one y axis
