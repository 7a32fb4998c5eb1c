"""infodrop.study: a claim about training ("it compresses") is made over seeds, with a criterion
fixed in advance, and a change between epochs is tested on the shared inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infodrop.io import save_npz
from infodrop.plane.record import MixtureEstimate, PlaneDocument, PlaneRecord, SplitRecord, SubsetPoint, terms_path
from infodrop.study import (
    PAIRED_Z,
    compression_verdict,
    load_runs,
    paired_change,
    seed_summary,
    terms_key,
)

LOG_N = math.log(3000)
HALF_BAND = 0.1


def _estimate(value: float, saturated: bool = False) -> MixtureEstimate:
    return MixtureEstimate(i_xz=value, i_zy=1.0, i_xz_lower=value - HALF_BAND, i_xz_upper=value + HALF_BAND,
                           log_n=LOG_N, saturated=saturated)


def _subset(value: float) -> SubsetPoint:
    return SubsetPoint(k=1, mean=value, std=0.0, values=[value, value], lower=[value - 0.05] * 2,
                       upper=[value + 0.05] * 2, log_n=LOG_N, saturated=False)


def write_run(folder, seed: int, values: list[float], *, saturated_end: bool = False, variance: float = 4.0,
              terms: dict | None = None):
    """A plane file of one seed with the whole-layer trajectory ``values`` at epochs 0, 5, 10, ..."""
    records = []
    for index, value in enumerate(values):
        saturated = saturated_end and index == len(values) - 1
        split = SplitRecord(n=3000, auto=_estimate(value, saturated), subsets={"1": _subset(value / 4)})
        records.append(PlaneRecord(epoch=5 * index, train=split))
    document = PlaneDocument(records=records, layer="layers.2.2", dropout_kind="gaussian", variance=variance,
                             sample_counts={"train": 3000}, config={"seed": seed, "subsets": [1]})
    path = folder / f"seed{seed}" / "plane.json"
    path.parent.mkdir(parents=True)
    document.save(path)
    if terms:
        save_npz(terms_path(path), **terms)
    return path


def test_a_clear_fall_in_four_of_five_seeds_compresses(tmp_path):
    rising = [0.0, 4.0, 5.0, 5.1, 5.2]
    falling = [0.0, 4.0, 5.2, 4.6, 4.5]
    files = [write_run(tmp_path, seed, falling if seed < 4 else rising) for seed in range(5)]
    verdict = compression_verdict(files)
    assert verdict.verdict == "compresses"
    assert (verdict.seeds, verdict.compressing, verdict.untellable) == (5, 4, 0)
    # Falls 0.7 (four seeds, peak 5.2 at epoch 10, end 4.5) and 0 (peak = end): mean 0.56.
    assert verdict.mean_fall == pytest.approx((4 * 0.7 + 0.0) / 5)
    assert verdict.spread == pytest.approx(np.std([4.5] * 4 + [5.2], ddof=1))
    assert [run.verdict for run in verdict.runs] == ["compresses"] * 4 + ["does not compress"]
    assert verdict.runs[0].peak.epoch == 10 and verdict.runs[0].test == "bands"


def test_a_fall_smaller_than_the_spread_between_seeds_does_not_compress(tmp_path):
    # Every seed falls 0.3 by more than its band, but the seeds' ends differ by ~1 nat.
    files = [write_run(tmp_path, seed, [0.0, 3.0 + seed, 3.0 + seed - 0.3]) for seed in range(5)]
    verdict = compression_verdict(files)
    assert verdict.compressing == 5
    assert verdict.mean_fall == pytest.approx(0.3)
    assert verdict.spread == pytest.approx(np.std(np.arange(5.0), ddof=1))
    assert verdict.verdict == "does not compress"
    assert "within the spread" in verdict.reason


def test_saturated_ends_cannot_be_told(tmp_path):
    files = [write_run(tmp_path, seed, [0.0, 7.9, 7.0], saturated_end=seed < 3) for seed in range(5)]
    verdict = compression_verdict(files)
    assert verdict.verdict == "cannot be told"
    assert verdict.untellable == 3
    assert "saturated in 3 of 5" in verdict.reason


def test_one_seed_cannot_make_a_claim_about_training(tmp_path):
    verdict = compression_verdict([write_run(tmp_path, 0, [0.0, 5.0, 3.0])])
    assert verdict.runs[0].verdict == "compresses"
    assert verdict.verdict == "cannot be told" and "1 seed" in verdict.reason


def test_a_fall_within_the_bands_is_not_resolved(tmp_path):
    files = [write_run(tmp_path, seed, [0.0, 5.0, 4.9]) for seed in range(3)]
    verdict = compression_verdict(files)
    assert verdict.compressing == 0 and verdict.verdict == "does not compress"


def test_subset_trajectories_are_judged_on_the_mean_of_their_subsets(tmp_path):
    files = [write_run(tmp_path, seed, [0.0, 4.0, 2.0]) for seed in range(3)]
    verdict = compression_verdict(files, subset=1)
    assert verdict.verdict == "compresses"
    assert verdict.runs[0].peak.value == pytest.approx(1.0) and verdict.runs[0].end.value == pytest.approx(0.5)


def test_paired_terms_resolve_a_fall_that_the_bands_cannot(tmp_path):
    """Bands of half-width 0.1 overlap for a fall of 0.05, but the per-input terms share the
    inputs' variation, so their differences resolve it."""
    rng = np.random.default_rng(0)
    files = []
    for seed in range(3):
        shared = rng.normal(5.0, 1.0, 3000)
        terms = {terms_key(5, "train"): shared + 0.0 + rng.normal(0, 0.05, 3000),
                 terms_key(10, "train"): shared - 0.05 + rng.normal(0, 0.05, 3000)}
        files.append(write_run(tmp_path, seed, [0.0, 5.0, 4.95], terms=terms))
    verdict = compression_verdict(files)
    assert all(run.test == "paired" and run.resolved for run in verdict.runs)
    assert verdict.verdict == "compresses"


def test_the_paired_change_recovers_a_known_difference_with_honest_errors():
    """Simulation with a known difference delta: per-input terms a_i (spread 1 nat, shared by the
    two epochs) plus independent noise. The paired estimate is unbiased, its 2-s.e. interval
    covers delta at the nominal rate, and its error is far below the unpaired one."""
    rng = np.random.default_rng(1)
    n, delta, reps = 2000, -0.03, 400
    covered, estimates, unpaired = 0, [], []
    for _ in range(reps):
        inputs = rng.normal(0.0, 1.0, n)
        before = inputs + rng.normal(0.0, 0.1, n)
        after = inputs + delta + rng.normal(0.0, 0.1, n)
        change = paired_change(before, after)
        covered += abs(change.change - delta) <= PAIRED_Z * change.stderr
        estimates.append(change.change)
        unpaired.append(math.sqrt(before.var(ddof=1) / n + after.var(ddof=1) / n))
        assert change.n == n
    # Coverage 0.954 nominal; 400 reps have a binomial s.d. of 0.0105: 3 s.d. below is 0.92.
    assert covered / reps >= 0.92
    # The mean of 400 estimates has s.e. 0.1 * sqrt(2) / sqrt(n) / sqrt(400) = 1.6e-4.
    assert np.mean(estimates) == pytest.approx(delta, abs=5e-4)
    assert change.stderr < np.mean(unpaired) / 5
    assert change.resolved  # -0.03 against a s.e. of 0.0032


def test_paired_change_refuses_bad_input():
    with pytest.raises(ValueError, match="same N inputs"):
        paired_change(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN or inf"):
        paired_change(np.array([0.0, np.nan]), np.zeros(2))


def test_seed_summary_gives_the_mean_and_the_spread_between_seeds(tmp_path):
    files = [write_run(tmp_path, seed, [0.0, 4.0 + seed, 5.0]) for seed in range(3)]
    rows = seed_summary(load_runs(files), estimator="auto", split="train")
    assert [row.epoch for row in rows] == [0, 5, 10]
    assert rows[1].mean == pytest.approx(5.0) and rows[1].spread == pytest.approx(1.0)
    assert rows[1].band == pytest.approx(2 * HALF_BAND) and rows[1].seeds == 3
    everything = seed_summary(load_runs(files))
    assert {(row.estimator, row.subset) for row in everything} == {("auto", None), ("auto", 1)}


def test_load_runs_refuses_two_runs_of_one_seed_and_runs_of_other_settings(tmp_path):
    first = write_run(tmp_path / "a", 0, [0.0, 1.0])
    with pytest.raises(ValueError, match="both hold seed 0"):
        load_runs([first, write_run(tmp_path / "b", 0, [0.0, 1.0])])
    with pytest.raises(ValueError, match="another setting"):
        load_runs([first, write_run(tmp_path / "c", 1, [0.0, 1.0], variance=1.0)])
    with pytest.raises(ValueError, match="does not exist"):
        load_runs([tmp_path / "missing.json"])


def test_an_unknown_estimator_is_named(tmp_path):
    files = [write_run(tmp_path, seed, [0.0, 1.0]) for seed in range(3)]
    with pytest.raises(ValueError, match="binning:<bins>"):
        compression_verdict(files, estimator="mixture")


def _seed_summary_axes(tmp_path, runs, monkeypatch):
    """Draw the seed-summary figure of ``runs`` and return its first I(X;Z) panel."""
    from infodrop import study_figures

    drawn = {}
    save = study_figures.save_figure

    def keep(figure, *args, **kwargs):
        drawn["axis"] = figure.axes[0]
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(study_figures, "save_figure", keep)
    study_figures.plot_seed_summary({"variance=4.0": runs}, tmp_path / "out")
    return drawn["axis"]


def test_a_seed_summary_band_far_above_the_means_is_cut_at_the_top_with_an_arrowhead(tmp_path, monkeypatch):
    # Seed 0's last point has a band ten times wider than the largest estimate (an open leave-one-out edge).
    files = [write_run(tmp_path, seed, [0.0, 0.4, 0.5]) for seed in range(2)]
    document = PlaneDocument.load(files[0])
    last = document.records[-1]
    wide = MixtureEstimate(i_xz=0.5, i_zy=1.0, i_xz_lower=0.4, i_xz_upper=5.0, log_n=LOG_N, saturated=False)
    records = document.records[:-1] + [PlaneRecord(epoch=last.epoch, train=SplitRecord(n=3000, auto=wide))]
    PlaneDocument(records=records, layer=document.layer, dropout_kind="gaussian", variance=4.0,
                  sample_counts={"train": 3000}, config=document.config).save(files[0])
    axis = _seed_summary_axes(tmp_path, load_runs(files), monkeypatch)
    top = axis.get_ylim()[1]
    assert top <= 1.3 * 0.5  # the means decide the axis, not the band edge at (5.0 + 0.6) / 2
    arrows = [line for line in axis.lines if line.get_marker() == "^"]
    assert [list(line.get_xdata()) for line in arrows if len(line.get_xdata())] == [[10]]


def test_seed_summary_markers_are_hollow_exactly_where_a_seed_is_saturated(tmp_path, monkeypatch):
    files = [write_run(tmp_path, 0, [0.0, 4.0, 5.0], saturated_end=True), write_run(tmp_path, 1, [0.0, 4.0, 5.0])]
    axis = _seed_summary_axes(tmp_path, load_runs(files), monkeypatch)
    hollow = [line for line in axis.lines if line.get_markerfacecolor() == "white" and len(line.get_xdata())]
    filled = [line for line in axis.lines if line.get_marker() == "o" and line.get_markerfacecolor() != "white"
              and line.get_linestyle() == "None" and len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in hollow] == [[10]]
    assert [list(line.get_xdata()) for line in filled] == [[0, 5]]
