"""Estimator validation on the toy problem (Adilova, Geiger & Fischer, ICLR 2023, Section 4,
Appendix A.7): the quadrature truth, our estimator against it, and the three commands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy import integrate, special

from infodrop.experiments import toy


def _config(tmp_path: Path, **overrides):
    cfg = OmegaConf.merge(OmegaConf.structured(toy.Config), {"plots_dir": str(tmp_path / "plots"), **overrides})
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _mean_log_abs_f_series() -> float:
    """E log|2X + 0.5| in closed form: (2X + 0.5)^2 / 4 = (X + 1/4)^2 is noncentral chi-square with
    one degree of freedom and noncentrality 1/16, a Poisson(1/32) mixture of central chi-squares with
    1 + 2k degrees of freedom, and E log chi2_nu = log 2 + digamma(nu / 2)."""
    rate = (toy.OFFSET / toy.SLOPE) ** 2 / 2.0
    k = np.arange(60)
    weights = np.exp(-rate + k * np.log(rate) - special.gammaln(k + 1))
    return math.log(toy.SLOPE) + 0.5 * (math.log(2.0) + float(np.sum(weights * special.digamma(0.5 + k))))


@pytest.mark.parametrize("variance", [0.1, 0.4])
def test_quadrature_conditional_entropy_matches_noncentral_chi_square_closed_form(variance):
    truth = toy.toy_truth(variance)
    exact = 0.5 * math.log(2 * math.pi * math.e * variance) + _mean_log_abs_f_series()
    # quad's own error estimate for this log-singular integrand is ~1e-10; the series converges
    # like 1/32^k / k!, so 60 terms are exact to double precision.
    assert truth.h_z_given_x == pytest.approx(exact, abs=1e-8)


def test_quadrature_density_of_z_integrates_to_one():
    # The log singularity of p(z) at z = 0 is where a careless quadrature loses mass.
    mass = sum(integrate.quad(toy._density_z, low, high, args=(0.4,), limit=200)[0] for low, high in ((-np.inf, 0.0), (0.0, np.inf)))
    assert mass == pytest.approx(1.0, abs=1e-7)


def test_quadrature_output_entropy_tends_to_entropy_of_f_as_variance_vanishes():
    """Without noise Z = f(X) ~ N(0.5, 4), whose entropy is 0.5 log(2 pi e 4). The kernel of p(z)
    is narrowest here, where an integral over x instead of over the noise loses mass near z = 0."""
    variance = 1e-4
    entropy_of_f = 0.5 * math.log(2 * math.pi * math.e * toy.SLOPE**2)
    # The noise moves h(Z) by O(variance): treating f (D - 1) as additive noise of power
    # variance * E f^2 = 4.25e-4, de Bruijn's identity gives 0.5 * 4.25e-4 * J = 5.3e-5 nats with
    # J = 1/4 the Fisher information of N(0.5, 4); 1e-3 leaves room for higher orders.
    assert abs(toy.toy_truth(variance).h_z - entropy_of_f) < 1e-3


def test_quadrature_output_entropy_matches_independent_monte_carlo_mixture():
    """h(Z_1) by quadrature against -mean log p_hat(z_k), p_hat the kernel average over M centres
    drawn independently of the K test points (the noisier variance 0.4, where p has more mass near 0)."""
    variance = 0.4
    rng = np.random.default_rng(123)
    centres = toy.SLOPE * rng.standard_normal(3000) + toy.OFFSET
    samples = (toy.SLOPE * rng.standard_normal(8000) + toy.OFFSET) * (1 + math.sqrt(variance) * rng.standard_normal(8000))
    scale = math.sqrt(variance) * np.abs(centres)
    log_p, relative_variance = [], []
    for chunk in np.array_split(samples, 16):
        log_kernel = -0.5 * ((chunk[:, None] - centres[None]) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)
        log_p.append(special.logsumexp(log_kernel, axis=1) - math.log(centres.size))
        kernel = np.exp(log_kernel)
        relative_variance.append(kernel.var(axis=1) / kernel.mean(axis=1) ** 2)
    log_p = np.concatenate(log_p)
    estimate = -log_p.mean()
    standard_error = log_p.std(ddof=1) / math.sqrt(log_p.size)
    # p_hat is unbiased for p, so by Jensen -log p_hat is biased upward by about Var/(2 M p^2)
    # (delta method), estimated from the same kernel values.
    jensen_bias = float(np.concatenate(relative_variance).mean()) / (2 * centres.size)
    truth = toy.toy_truth(variance).h_z
    assert abs(estimate - jensen_bias - truth) < 4 * standard_error + jensen_bias


def test_conditional_entropy_helper_equals_estimator_closed_form():
    from infodrop.mi import gaussian_dropout_mi

    _, features, _, _ = toy.sample_toy(200, 3, 0.1, 1, np.random.default_rng(0))
    result = gaussian_dropout_mi(features, 0.1, noise_samples=2, seed=0, bounds=False)
    assert toy.conditional_entropy_mc(features, 0.1) == pytest.approx(result.h_z_given_x, abs=1e-9)


def test_our_estimate_of_one_unit_matches_quadrature_truth():
    from infodrop.mi import gaussian_dropout_mi

    _, features, _, _ = toy.sample_toy(1000, 1, 0.1, 1, np.random.default_rng(7))
    result = gaussian_dropout_mi(features, 0.1, noise_samples=10, seed=7, bounds=False)
    # Over 20 independent data sets (N = 1000, 10 noise draws) the estimate had sd 0.030 nats and
    # mean 0.008 below the truth (1.791 nats); 4 sd = 0.12 nats.
    assert result.i_xz == pytest.approx(toy.toy_truth(0.1).i_xz, abs=0.12)


def _read(path: Path, columns) -> list[dict]:
    assert path.exists() and path.stat().st_size > 0
    rows = toy.read_csv(path)
    assert rows and list(rows[0]) == list(columns)
    return rows


@pytest.mark.end_to_end
def test_convergence_command_writes_csv_and_png(tmp_path, capsys):
    cfg = _config(tmp_path, dims=[1, 2], sample_sizes=[20, 60, 200], seeds=[0, 1], mixture_max_samples=60)
    csv_path = toy.convergence(cfg)
    rows = _read(csv_path, toy.CONVERGENCE_COLUMNS)
    assert len(rows) == 2 * 3 * 2
    assert csv_path.with_suffix(".png").stat().st_size > 0
    # I(X;Z) only up to mixture_max_samples; h(Z|X) everywhere
    assert all(math.isnan(r["i_xz"]) == (r["n_samples"] > 60) for r in rows)
    assert all(math.isfinite(r["h_z_given_x"]) for r in rows)
    truth = toy.toy_truth(0.1)
    assert all(r["i_xz_truth"] == pytest.approx(r["dim"] * truth.i_xz) for r in rows)
    assert "wrote" in capsys.readouterr().out


@pytest.mark.end_to_end
def test_bounds_command_orders_pairwise_bounds_around_the_mixture_estimate(tmp_path):
    cfg = _config(tmp_path, bounds_dims=[1, 3], bounds_sample_sizes=[30, 80], seeds=[0])
    rows = _read(toy.bounds(cfg), toy.BOUNDS_COLUMNS)
    assert len(rows) == 4
    assert (tmp_path / "plots" / "bounds_var0.1.png").stat().st_size > 0
    for row in rows:
        # Kolchinsky & Tracey: the Bhattacharyya and KL pairwise bounds bracket the entropy of the
        # mixture, of which h_z_mixture is a Monte Carlo estimate with standard error h_z_stderr.
        slack = 4 * row["h_z_stderr"]
        assert row["h_z_pairwise_lower"] - slack <= row["h_z_mixture"] <= row["h_z_pairwise_upper"] + slack


@pytest.mark.end_to_end
def test_compare_command_runs_every_estimator(tmp_path):
    cfg = _config(tmp_path, compare_dims=[2], compare_samples=40, noise_samples=3, neural_steps=3,
                  bin_counts=[2, 10], bin_sizes=[0.5, 0.1], variance=0.4)  # fmt: skip
    rows = _read(toy.compare(cfg), toy.COMPARE_COLUMNS)
    assert (tmp_path / "plots" / "compare_var0.4.png").stat().st_size > 0
    names = {r["estimator"] for r in rows}
    assert names == {"ours", "ours_loo", "binning_bins", "binning_size", "edge", "ksg", "doe", "doe_l", "mine", "infonce"}
    assert all(r["log_n"] == pytest.approx(math.log(40)) for r in rows)
    # binned X of N distinct inputs takes at most N values, so binning never exceeds log N
    assert all(r["i_xz"] <= math.log(40) + 1e-9 for r in rows if r["estimator"].startswith("binning"))


@pytest.mark.parametrize(
    "entry, value",
    [("variance", 0.0), ("variance", -0.4), ("noise_samples", 0), ("sample_sizes", [10, 1]), ("dims", [0]),
     ("compare_samples", 1), ("estimators", ["ours", "magic"]), ("bin_sizes", [0.0]), ("seeds", []),
     ("bounds_dims", [2, -1]), ("neural_steps", 0)],
)  # fmt: skip
def test_invalid_config_raises_value_error_naming_the_entry(tmp_path, entry, value):
    cfg = _config(tmp_path, **{entry: value})
    with pytest.raises(ValueError, match=entry):
        toy.validate(cfg)


def test_paper_preset_is_valid_and_reaches_150000_samples(tmp_path):
    cfg = _config(tmp_path, **toy.NAMED_CONFIGS["paper"])
    toy.validate(cfg)
    assert max(cfg.sample_sizes) == 150000 and list(cfg.compare_dims) == [1, 5, 10, 50, 100, 200]


@pytest.mark.end_to_end
def test_cli_runs_toy_convergence(tmp_path):
    from infodrop.cli import main

    plots = tmp_path / "cli"
    status = main(["toy", "convergence", "with", f"plots_dir={plots}", "dims=[1]", "sample_sizes=[20,40]", "seeds=[0]", "variance=0.4"])
    assert status == 0
    assert (plots / "convergence_var0.4.csv").stat().st_size > 0 and (plots / "convergence_var0.4.png").exists()
