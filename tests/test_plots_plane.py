"""Information-plane figures (Adilova, Geiger & Fischer, ICLR 2023, Figs. 1, 5, 6, 14)."""

from __future__ import annotations

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
