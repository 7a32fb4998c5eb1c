"""Information-plane figures (Adilova, Geiger & Fischer, ICLR 2023, Figs. 1, 5, 6, 14)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infodrop.io import write_json
from infodrop.plane import PLANE_FORMAT
from infodrop.plots import plot_bin_sweep, plot_binning_planes, plot_information_plane

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _document(epochs=(0, 2, 4, 6)) -> dict:
    """A plane document in the tracker's format, with a rise-then-fall of I(X;Z)."""
    records = []
    for index, epoch in enumerate(epochs):
        xz = 3.0 + index - 0.4 * index**2
        record = {"epoch": epoch}
        for split, shift in (("train", 0.0), ("test", -0.1)):
            record[split] = {
                "n": 100,
                "auto": {"i_xz": xz + shift, "i_zy": 1.0 + 0.3 * index, "i_xz_bounds": [xz - 0.2, xz + 0.1], "is_mi": True},
                "binning": {str(b): {"i_xz": 4.6, "i_zy": 1.5 + 0.1 * index, "bin_size": 1.0 / b} for b in (10, 30, 100)},
            }
        records.append(record)
    return {"format": PLANE_FORMAT, "units": "nats", "layer": "drop", "dropout_kind": "gaussian",
            "estimators": {"auto": "gaussian-mixture", "binning": "binning"}, "sample_counts": {"train": 100, "test": 100},
            "config": {}, "records": records}


def test_plane_json_round_trips_into_one_figure_per_estimator_in_png_and_pdf(tmp_path):
    path = write_json(tmp_path / "plane.json", _document())
    written = plot_information_plane(path, tmp_path / "figures")
    names = sorted(p.name for p in written)
    assert names == sorted(f"plane_{stem}.{fmt}" for stem in ("auto", "binning", "side_by_side") for fmt in ("png", "pdf"))
    for p in written:
        header = p.read_bytes()[:8]
        assert header == PNG_MAGIC if p.suffix == ".png" else header.startswith(b"%PDF")


def test_binning_planes_draw_every_recorded_bin_count(tmp_path):
    written = plot_binning_planes(_document(), tmp_path, formats=("png",))
    assert [p.name for p in written] == ["plane_binning_bins.png"]
    assert written[0].read_bytes()[:8] == PNG_MAGIC


def test_plane_with_one_estimator_and_only_a_training_set_still_plots(tmp_path):
    document = _document()
    for record in document["records"]:
        del record["test"]
        del record["train"]["binning"]
    document["estimators"] = {"auto": "gaussian-mixture"}
    written = plot_information_plane(document, tmp_path, formats=("png",))
    assert [p.name for p in written] == ["plane_auto.png"]


def test_plots_refuse_an_empty_plane_and_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match="no records"):
        plot_information_plane(_document(epochs=()), tmp_path)
    with pytest.raises(ValueError, match="formats"):
        plot_information_plane(_document(), tmp_path, formats=("gif",))
    document = _document()
    for record in document["records"]:
        for split in ("train", "test"):
            del record[split]["binning"]
    with pytest.raises(ValueError, match="no binning records"):
        plot_binning_planes(document, tmp_path)
    with pytest.raises(ValueError, match="records_or_path"):
        plot_information_plane(42, tmp_path)


def test_bin_sweep_draws_binning_curves_and_bin_free_estimates(tmp_path):
    rows = [{"label": "binary, binning", "bins": b, "i_xz": v, "log_n": 4.6} for b, v in ((2, 0.5), (8, 2.0), (32, 4.1))]
    rows.append({"label": "gaussian, ours", "bins": None, "i_xz": 1.7, "lower": 1.5, "upper": 1.9})
    written = plot_bin_sweep(rows, tmp_path, formats=("png",))
    assert written[0].name == "binary_binning.png" and written[0].read_bytes()[:8] == PNG_MAGIC


def test_min_epoch_leaves_out_the_early_records(tmp_path):
    written = plot_information_plane(_document(), tmp_path, formats=("png",), min_epoch=2, prefix="late")
    assert sorted(p.name for p in written) == ["late_auto.png", "late_binning.png", "late_side_by_side.png"]
    with pytest.raises(ValueError, match="no records"):
        plot_information_plane(_document(), tmp_path, formats=("png",), min_epoch=100)


# ---------------------------------------------------------------- bands, saturation, titles (issues 9 and 10)


def _banded_document() -> dict:
    """A plane with bands and saturation flags: the mixture estimate climbs to log N = log 100 and
    saturates at the last two epochs; every binning point sits at (log N, H(Y)) (all bins distinct)."""
    log_n, h_y = math.log(100), math.log(3)
    records = []
    for index, epoch in enumerate((0, 1, 2, 3)):
        xz = [2.0, 3.5, 4.5, 4.6][index]
        record = {"epoch": epoch}
        for split in ("train", "test"):
            record[split] = {
                "n": 100, "h_y": h_y,
                "auto": {"i_xz": xz, "i_zy": 0.3 + 0.2 * index, "i_xz_lower": xz - 0.4, "i_xz_upper": xz + 0.5,
                         "i_zy_lower": 0.2 + 0.2 * index, "i_zy_upper": 0.45 + 0.2 * index, "log_n": log_n,
                         "saturated": index >= 2, "i_xz_bounds": [xz - 1, xz + 1], "is_mi": True},
                "binning": {"10": {"i_xz": log_n, "i_zy": h_y, "log_n": log_n, "saturated": True, "coverage": 0.0}},
                "subsets": {"1": {"k": 1, "mean": 0.3 + 0.1 * index, "std": 0.05, "values": [0.3, 0.35]},
                            "4": {"k": 4, "mean": 1.0 + 0.2 * index, "std": 0.1, "values": [1.0, 1.1]}},
            }
        records.append(record)
    return {"format": PLANE_FORMAT, "units": "nats", "layer": "layers.2.2", "dataset": "Fashion-MNIST", "dropout_kind": "gaussian",
            "estimators": {"auto": "gaussian-mixture", "binning": "binning"}, "sample_counts": {"train": 100, "test": 100},
            "config": {"subset_draws": 2}, "records": records, "layer_units": 32}


@pytest.fixture()
def figures(monkeypatch):
    """The matplotlib figures the plot functions save, by file stem."""
    import infodrop.plane.figures as plots

    saved = {}
    original = plots.save_figure

    def capture(figure, out_dir, stem, formats):
        saved[stem] = figure
        return original(figure, out_dir, stem, formats)

    monkeypatch.setattr(plots, "save_figure", capture)
    return saved


def _legend_texts(figure) -> list[str]:
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


def test_saturated_points_are_hollow_and_the_legend_explains_the_marking(tmp_path, figures):
    plot_information_plane(_banded_document(), tmp_path, formats=("png",))
    figure = figures["plane_auto"]
    from matplotlib.collections import PathCollection

    ax = figure.axes[0]
    markers = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_offsets().shape[0]]
    hollow = [c for c in markers if len(c.get_facecolors()) == 0]
    filled = [c for c in markers if len(c.get_facecolors()) > 0]
    assert len(hollow) == 1 and len(filled) == 1
    # Epochs 2 and 3 are saturated: x = 4.5 and 4.6; epochs 0 and 1 are filled.
    assert sorted(hollow[0].get_offsets()[:, 0].tolist()) == [4.5, 4.6]
    assert sorted(filled[0].get_offsets()[:, 0].tolist()) == [2.0, 3.5]
    texts = _legend_texts(figure)
    assert any(text.startswith("hollow: saturated") for text in texts)
    assert any(text.startswith("filled: not saturated") for text in texts)
    assert any(text.startswith("band:") for text in texts)


def test_the_band_is_drawn_from_the_lower_to_the_upper_estimate(tmp_path, figures):
    from matplotlib.collections import LineCollection

    plot_information_plane(_banded_document(), tmp_path, formats=("png",))
    ax = figures["plane_auto"].axes[0]
    segments = [segment for c in ax.collections if isinstance(c, LineCollection) for segment in c.get_segments()]
    horizontal = sorted((s[0][0], s[1][0]) for s in segments if s[0][1] == s[1][1])
    vertical = sorted((s[0][1], s[1][1]) for s in segments if s[0][0] == s[1][0])
    np.testing.assert_allclose(horizontal, [(1.6, 2.5), (3.1, 4.0), (4.1, 5.0), (4.2, 5.1)])
    np.testing.assert_allclose(vertical, [(0.2, 0.45), (0.4, 0.65), (0.6, 0.85), (0.8, 1.05)])


def test_side_by_side_panels_share_their_axes_and_the_title_says_so(tmp_path, figures):
    plot_information_plane(_banded_document(), tmp_path, formats=("png",))
    figure = figures["plane_side_by_side"]
    panels = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 4
    assert len({ax.get_xlim() for ax in panels}) == 1 and len({ax.get_ylim() for ax in panels}) == 1
    assert "share their axes" in figure.get_suptitle()
    # The same data sit on the same axes in every plane figure of the file, not zoomed in one of them.
    limits = {(ax.get_xlim(), ax.get_ylim()) for stem in ("plane_auto", "plane_binning", "plane_side_by_side")
              for ax in figures[stem].axes if ax.get_label() != "<colorbar>"}
    assert len(limits) == 1


def test_titles_name_the_data_set_the_sample_size_and_the_layer(tmp_path, figures):
    plot_information_plane(_banded_document(), tmp_path, formats=("png",), title="mnist demo")
    title = figures["plane_auto"].get_suptitle()
    assert "Fashion-MNIST" in title and "N = 100 train / 100 test" in title
    assert "layer 'layers.2.2' (32 units, gaussian dropout)" in title


def test_a_binning_panel_that_collapses_to_one_point_says_why(tmp_path, figures):
    plot_information_plane(_banded_document(), tmp_path, formats=("png",))
    # The note is in the panel's title, above the data, not in a box over it.
    note = figures["plane_binning"].axes[0].get_title()
    assert "every input has a bin of its own" in note and "I(Z;Y) = H(Y)" in note
    # The mixture panel moves, so it carries no such note.
    assert "at one point" not in figures["plane_auto"].axes[0].get_title()


def test_old_plane_files_without_bands_plot_with_the_pairwise_bracket_named_as_such(tmp_path, figures):
    written = plot_information_plane(_document(), tmp_path, formats=("png",))
    assert len(written) == 3
    texts = _legend_texts(figures["plane_auto"])
    assert "pairwise bracket of the N-component mixture" in texts
    assert not any(text.startswith("hollow") for text in texts)  # no saturation recorded, none claimed


def test_subset_planes_have_one_column_per_subset_size(tmp_path, figures):
    from infodrop.plots import plot_plane_figures

    written = plot_plane_figures(_banded_document(), tmp_path, formats=("png",))
    assert "plane_subsets.png" in [p.name for p in written]
    figure = figures["plane_subsets"]
    titles = [ax.get_title() for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert titles == ["1 of 32 units — train", "4 of 32 units — train", "1 of 32 units — test", "4 of 32 units — test"]
    first = figure.axes[0]
    # The mean over subsets with +-1 sd drawn as the band; y is the whole layer's I(Z;Y) when no
    # subset value is recorded, and the axis label says so.
    assert "whole layer" in first.get_ylabel()
    with pytest.raises(ValueError, match="plane_subsets"):
        from infodrop.plots import plot_subset_planes

        plot_subset_planes(_document(), tmp_path)


def test_several_runs_share_one_plane_with_one_colour_and_legend_entry_each(tmp_path, figures):
    from infodrop.plots import plot_plane_comparison

    second = _banded_document()
    for record in second["records"]:
        for split in ("train", "test"):
            record[split]["auto"]["i_xz"] -= 1.0
    written = plot_plane_comparison([_banded_document(), second], ["beta 1", "beta 10"], tmp_path, formats=("png",))
    assert [p.name for p in written] == ["plane_comparison.png"]
    figure = figures["plane_comparison"]
    texts = _legend_texts(figure)
    assert "beta 1 (epochs 0-3)" in texts and "beta 10 (epochs 0-3)" in texts
    assert any(text.startswith("hollow: saturated") for text in texts)
    assert len({ax.get_xlim() for ax in figure.axes}) == 1
    with pytest.raises(ValueError, match="labels"):
        plot_plane_comparison([_banded_document()], ["a", "b"], tmp_path)


def test_an_infinite_side_of_a_band_is_marked_not_drawn_to_infinity(tmp_path, figures):
    import warnings

    document = _banded_document()
    document["records"][0]["train"]["auto"]["i_zy_lower"] = -math.inf  # a class with a single input
    document["records"][1]["train"]["auto"]["i_xz_upper"] = math.inf  # a unique zero pattern
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow while the axes scale themselves
        plot_information_plane(document, tmp_path, formats=("png",))
    texts = _legend_texts(figures["plane_auto"])
    assert "no finite lower estimate of I(Z;Y)" in texts and "no finite upper estimate of I(X;Z)" in texts
    assert all(np.isfinite(figures["plane_auto"].axes[0].get_xlim())) and all(np.isfinite(figures["plane_auto"].axes[0].get_ylim()))


def test_a_binning_panel_where_some_epochs_sit_at_log_n_and_h_y_counts_them(tmp_path, figures):
    document = _banded_document()
    first = document["records"][0]["train"]["binning"]["10"]
    first["i_xz"], first["i_zy"] = 3.0, 0.5  # one epoch before every input had a bin of its own
    plot_information_plane(document, tmp_path, formats=("png",))
    assert "\n3 of 4 epochs at one point" in figures["plane_binning"].axes[0].get_title()


def test_a_band_ten_times_wider_than_the_estimates_is_clipped_not_followed_by_the_x_axis(tmp_path, figures):
    document = _banded_document()
    largest = max(record["train"]["auto"]["i_xz"] for record in document["records"])
    for record in document["records"]:
        for split in ("train", "test"):
            record[split]["auto"]["i_xz_upper"] = 10 * largest  # a band ten times wider than the data
    plot_information_plane(document, tmp_path, formats=("png",))
    for stem in ("plane_auto", "plane_binning", "plane_side_by_side"):
        ax = figures[stem].axes[0]
        low, high = ax.get_xlim()
        assert high <= 1.5 * max(largest, math.log(100)), (stem, high)  # log N = log 100 is drawn too
    ax = figures["plane_auto"].axes[0]
    # Each clipped band ends in an arrowhead at the axis edge, and the legend says what it means.
    edge = [c for c in ax.collections if c.get_offsets().shape[0] and np.allclose(c.get_offsets()[:, 0], ax.get_xlim()[1])]
    assert edge and edge[0].get_offsets().shape[0] == 4
    assert any(text.startswith("band runs past the axis") for text in _legend_texts(figures["plane_auto"]))


def test_hollow_markers_appear_exactly_at_the_points_whose_record_says_saturated(tmp_path, figures):
    from matplotlib.collections import PathCollection

    document = _banded_document()
    pattern = [True, False, True, False]
    for record, flag in zip(document["records"], pattern):
        record["train"]["auto"]["saturated"] = flag
        record["train"]["binning"]["10"]["saturated"] = not flag
    plot_information_plane(document, tmp_path, formats=("png",))
    expected = {"plane_auto": [flag for flag in pattern], "plane_binning": [not flag for flag in pattern]}
    for stem, flags in expected.items():
        ax = figures[stem].axes[0]  # the training panel
        points = [(record["epoch"], record["train"]["auto" if stem == "plane_auto" else "binning"]) for record in document["records"]]
        values = [entry if stem == "plane_auto" else entry["10"] for _, entry in points]
        markers = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_offsets().shape[0]
                   and c.get_paths()[0].vertices.shape[0] > 4]  # circles, not the arrowheads
        hollow = {tuple(xy) for c in markers if len(c.get_facecolors()) == 0 for xy in c.get_offsets().tolist()}
        filled = {tuple(xy) for c in markers if len(c.get_facecolors()) > 0 for xy in c.get_offsets().tolist()}
        want_hollow = {(v["i_xz"], v["i_zy"]) for v, flag in zip(values, flags) if flag}
        want_filled = {(v["i_xz"], v["i_zy"]) for v, flag in zip(values, flags) if not flag}
        assert hollow == want_hollow and filled == want_filled, stem
    texts = _legend_texts(figures["plane_binning"])
    assert "hollow: saturated (the estimate measures N, not the network)" in texts


def test_few_epochs_get_one_colour_and_one_colour_bar_tick_each(tmp_path, figures):
    plot_information_plane(_banded_document(), tmp_path, formats=("png",))
    bar = next(ax for ax in figures["plane_auto"].axes if ax.get_label() == "<colorbar>")
    assert [round(tick) for tick in bar.get_yticks()] == [0, 1, 2, 3]
    from matplotlib.collections import PathCollection

    ax = figures["plane_auto"].axes[0]
    colours = [tuple(colour) for c in ax.collections if isinstance(c, PathCollection)
               for colour in (c.get_facecolors() if len(c.get_facecolors()) else c.get_edgecolors())]
    assert len(set(colours)) == 4


def test_log_n_and_h_y_are_labelled_with_their_values(tmp_path, figures):
    plot_information_plane(_banded_document(), tmp_path, formats=("png",))
    texts = [text.get_text().strip() for text in figures["plane_auto"].axes[0].texts]
    assert f"log N = {math.log(100):.2f}" in texts and f"H(Y) = {math.log(3):.2f}" in texts


def test_a_plane_of_one_point_gets_axes_of_nonzero_width(tmp_path, figures):
    import warnings

    document = _document(epochs=(0,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_information_plane(document, tmp_path, formats=("png",))
    low, high = figures["plane_auto"].axes[0].get_xlim()
    assert high - low > 0.1
