"""Estimator validation on a toy problem whose mutual information is known.

Adilova, Geiger & Fischer, *Information Plane Analysis for Dropout Neural Networks* (ICLR 2023),
Section 4 and Appendix A.7: Figs. 2 and 9 (convergence), 3 and 8 (bounds on h(Z)), 4 and 10
(comparison with other estimators).

The toy problem: X ~ N(0, I_n), f(X) = 2 X + 0.5 elementwise, and Gaussian dropout
Z = f(X) * D with D ~ N(1, variance I_n) independent of X. Given X the units of Z are independent,
Z_j | X ~ N(f(X_j), variance f(X_j)^2), and unit j depends on X_j only, so

    I(X; Z) = n I_1,    I_1 = h(Z_1) - h(Z_1 | X_1),

with the one-unit quantities computed by one-dimensional quadrature (:func:`toy_truth`):

    p(z)          = int N(z; f(x), variance f(x)^2) phi(x) dx,
    h(Z_1)        = -int p(z) log p(z) dz,
    h(Z_1 | X_1)  = E[0.5 log(2 pi e variance f(X)^2)].

Commands (each writes a CSV and a PNG under ``plots_dir`` and prints a short table):

- ``convergence``: the estimates of h(Z|X) and I(X;Z) of ``infodrop.mi.gaussian_dropout_mi``
  against the number N of inputs, for several dimensions n and seeds, with the quadrature truth.
  The mixture estimate of h(Z) costs O((N * noise_samples) * N * n), so I(X;Z) is computed only up
  to ``mixture_max_samples`` inputs; beyond that only the Monte Carlo h(Z|X) is computed (as in the
  paper's Fig. 2, which shows h(Z|X) up to 150,000 samples). Every sample of Z is scored against a
  mixture that contains its own component, so the estimate of I(X;Z) cannot exceed about log N:
  it converges to n I_1 only once log N is well above n I_1 (n = 1 at N ~ 1000, not n = 10).
  The leave-one-out variant (``i_xz_loo``, own component left out) is recorded beside it; it errs
  the other way (upward), so in these runs the two bracket the truth.
- ``bounds``: the mixture estimate of h(Z) against the Gaussian (Ledoit-Wolf) upper bound and the
  Kolchinsky-Tracey pairwise bounds, against the dimension n (and N).
- ``compare``: our I(X;Z) against binning (by number of bins and by bin size), EDGE, KSG, DoE
  (Gaussian and logistic), MINE and InfoNCE, with log N, the largest value a discrete estimator
  can reach, and the truth.

Samples for the baselines (as in the authors' ``known_MI.py``): each of the N inputs x_i gets
``noise_samples`` noise draws, and a baseline sees all N * noise_samples pairs (x_i, z_ik), x_i
repeated. Binned X then takes at most N distinct values, so H(X_b) and every binning estimate are at
most log N; the samples are those of a discrete X uniform on the N inputs, for every baseline (KSG
and EDGE see exact ties in x). Our estimator draws its own noise (``noise_samples`` per input) from
the same f(x_i). All numbers are in nats.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence

import numpy as np
from scipy import integrate
from tqdm.auto import tqdm

from infodrop import mi
from infodrop.checks import check_int, check_positive, check_seed
from infodrop.io import write_text
from infodrop.experiments.toy_figures import mean_sd, plot_convergence, plot_entropy_bounds, plot_estimator_comparison

__all__ = [
    "Config",
    "NAMED_CONFIGS",
    "COMMANDS",
    "ESTIMATORS",
    "ToyTruth",
    "toy_truth",
    "sample_toy",
    "conditional_entropy_mc",
    "validate",
    "convergence",
    "bounds",
    "compare",
    "read_csv",
    "CONVERGENCE_COLUMNS",
    "BOUNDS_COLUMNS",
    "COMPARE_COLUMNS",
]

SLOPE = 2.0
OFFSET = 0.5
# f(x) = SLOPE x + OFFSET vanishes here; p(z|x) degenerates to a point mass at 0, so every
# integral over x is split at this point.
ROOT = -OFFSET / SLOPE

# Our mixture estimator, then the baselines of the registry, in its order.
ESTIMATORS = ("ours", *mi.estimator_names())

PAPER_SAMPLE_SIZES = [10, 50, 100, 500, 1000, 5000, 10000, 30000, 50000, 100000, 150000]
PAPER_DIMS = [1, 5, 10, 50, 100, 200]


@dataclass
class Config:
    """Toy estimator-validation experiment (defaults: minutes on a laptop CPU; preset ``paper``)."""

    variance: float = field(default=0.1, metadata={"help": "Gaussian dropout variance of D ~ N(1, variance) (paper: 0.1; 0.4 in App. A.7)"})
    noise_samples: int = field(default=10, metadata={"help": "noise draws per input x (paper: 10)"})
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "random seeds; error bars are the spread over seeds"})
    device: Optional[str] = field(default=None, metadata={"help": "device for our estimator: null = cuda if available else cpu"})
    chunk_size: Optional[int] = field(default=None, metadata={"help": "rows per chunk in our mixture estimator (null = its default)"})
    progress: Optional[bool] = field(default=None, metadata={"help": "progress bars: null = only when stderr is a terminal (not in a log file); true or false to force"})
    plots_dir: str = field(default="plots/toy", metadata={"help": "folder for the CSV and PNG files"})
    runs_dir: str = field(default="runs", metadata={"help": "folder for Hydra's sweep records (--multirun)"})
    jobs_per_device: int = field(default=1, metadata={"help": "--multirun: jobs run at once, each in a process of its own (1 = one after the other)"})
    # convergence (Figs. 2, 9)
    dims: List[int] = field(default_factory=lambda: [1, 5, 10], metadata={"help": "convergence: input dimensions n"})
    sample_sizes: List[int] = field(
        default_factory=lambda: [10, 30, 100, 300, 1000, 3000, 10000, 30000],
        metadata={"help": "convergence: numbers N of inputs (paper: 10 ... 150000)"},
    )
    mixture_max_samples: int = field(
        default=3000, metadata={"help": "convergence: largest N at which h(Z) and I(X;Z) are estimated (the mixture is O(N^2))"}
    )
    # bounds (Figs. 3, 8)
    bounds_dims: List[int] = field(default_factory=lambda: [1, 2, 5, 10, 20, 50], metadata={"help": "bounds: input dimensions n"})
    bounds_sample_sizes: List[int] = field(default_factory=lambda: [100, 1000], metadata={"help": "bounds: numbers N of inputs"})
    # compare (Figs. 4, 10)
    compare_dims: List[int] = field(default_factory=lambda: [1, 5, 10], metadata={"help": "compare: input dimensions n (paper: 1 5 10 50 100 200)"})
    compare_samples: int = field(default=1000, metadata={"help": "compare: number N of inputs (paper: 1000)"})
    compare_seeds: List[int] = field(default_factory=lambda: [0], metadata={"help": "compare: random seeds"})
    estimators: List[str] = field(
        default_factory=lambda: list(ESTIMATORS), metadata={"help": "compare: estimators to run, from " + " ".join(ESTIMATORS)}
    )
    bin_counts: List[int] = field(default_factory=lambda: [2, 5, 10, 15, 20, 50, 100], metadata={"help": "compare: numbers of bins for binning"})
    bin_sizes: List[float] = field(default_factory=lambda: [0.9, 0.5, 0.2, 0.1, 0.001], metadata={"help": "compare: bin sizes for binning"})
    ksg_k: int = field(default=3, metadata={"help": "compare: neighbours k of KSG"})
    neural_steps: int = field(default=500, metadata={"help": "compare: training steps of DoE, MINE and InfoNCE"})


NAMED_CONFIGS: dict[str, dict[str, Any]] = {
    "paper": {
        "sample_sizes": PAPER_SAMPLE_SIZES,
        "mixture_max_samples": 10000,
        "dims": [1, 5, 10],
        "bounds_dims": PAPER_DIMS,
        "bounds_sample_sizes": [10, 50, 100, 500, 1000, 5000, 10000],
        "compare_dims": PAPER_DIMS,
        "compare_samples": 1000,
        "neural_steps": 3000,
    },
    # Appendix A.7 (Figs. 8, 9, 10): the larger dropout noise.
    "high_noise": {"variance": 0.4},
}


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class ToyTruth:
    """Per-unit ground truth of the toy problem in nats: h(Z_1), h(Z_1|X_1) and I_1 = their difference."""

    h_z: float
    h_z_given_x: float
    i_xz: float


def _gauss(u: float) -> float:
    return math.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)


def _density_z(z: float, variance: float) -> float:
    """p(z) for one unit, by adaptive quadrature over the noise value u = z / f(x).

    Z = f D with f = f(X) ~ N(0.5, 4) and D ~ N(1, variance) independent, so by the product rule
    p(z) = int p_D(u) p_f(z / u) / |u| du, the same integral as int N(z; f, variance f^2) p_f(f) df.
    In u the kernel p_D has the fixed width sqrt(variance); in x (or f) it would have width
    sqrt(variance) |z| / 2, which adaptive quadrature misses for small variance and small |z|.
    For z != 0 the integrand vanishes at u = 0; near it, it behaves like 1/|u| down to |u| ~ |z|,
    which is what makes p(z) grow like log(1/|z|) at z = 0.
    """
    std_noise = math.sqrt(variance)

    def integrand(u: float) -> float:
        if u == 0.0:
            return 0.0
        return _gauss((u - 1.0) / std_noise) / std_noise * _gauss((z / u - OFFSET) / SLOPE) / SLOPE / abs(u)

    # p_D(u) < 1e-31 more than 12 standard deviations from its mean
    low, high = 1.0 - 12.0 * std_noise, 1.0 + 12.0 * std_noise
    pieces = [(low, 0.0), (0.0, high)] if low < 0.0 else [(low, high)]
    return sum(integrate.quad(integrand, a, b, limit=200, epsabs=1e-13, epsrel=1e-10)[0] for a, b in pieces)


@functools.lru_cache(maxsize=32)
def toy_truth(variance: float) -> ToyTruth:
    """Quadrature truth for ONE unit of the toy problem (multiply by n for X in n dimensions).

    ``variance`` is the dropout variance (> 0). h(Z_1|X_1) = 0.5 log(2 pi e variance) + E log|f(X)|,
    with E log|f(X)| integrated on either side of f = 0 (an integrable log singularity). p(z) has an
    integrable log singularity at z = 0 (inputs with f(x) near 0 pile up there), so the outer
    integral for h(Z_1) is split at z = 0. Absolute accuracy is about 1e-9 nats for variances from
    1e-4 to 4 (checked: p integrates to 1 within 1e-10). Takes one to a few seconds.
    """
    variance = check_positive(variance, "variance")

    def log_abs_f(x: float) -> float:
        return math.log(abs(SLOPE * x + OFFSET)) * _gauss(x)

    mean_log_abs_f = sum(integrate.quad(log_abs_f, low, high, limit=200)[0] for low, high in ((-np.inf, ROOT), (ROOT, np.inf)))
    h_z_given_x = 0.5 * math.log(2.0 * math.pi * math.e * variance) + mean_log_abs_f

    def neg_p_log_p(z: float) -> float:
        p = _density_z(z, variance)
        return -p * math.log(p) if p > 0.0 else 0.0

    h_z = sum(
        integrate.quad(neg_p_log_p, low, high, limit=200, epsabs=1e-10, epsrel=1e-9)[0] for low, high in ((-np.inf, 0.0), (0.0, np.inf))
    )
    return ToyTruth(h_z=h_z, h_z_given_x=h_z_given_x, i_xz=h_z - h_z_given_x)


# --------------------------------------------------------------------------- sampling and the paper's h(Z|X)


def sample_toy(
    n_samples: int, dim: int, variance: float, noise_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw the toy data.

    Returns ``x`` (N x n, the inputs), ``features`` (N x n, f(x) = 2x + 0.5), ``x_repeated``
    (N * noise_samples x n, each input repeated ``noise_samples`` times in a row) and ``z``
    (N * noise_samples x n, f(x) * D with D ~ N(1, variance)), all float64.
    """
    x = rng.standard_normal((n_samples, dim))
    features = SLOPE * x + OFFSET
    x_repeated = np.repeat(x, noise_samples, axis=0)
    noise = 1.0 + math.sqrt(variance) * rng.standard_normal(x_repeated.shape)
    z = np.repeat(features, noise_samples, axis=0) * noise
    return x, features, x_repeated, z


def conditional_entropy_mc(features: np.ndarray, variance: float) -> float:
    """Monte Carlo h(Z|X) in nats of Gaussian dropout: sum_j mean_i 0.5 log(2 pi e variance f_ij^2).

    ``features``: N x n array of f(x_i). This is the paper's estimator of h(Z|X) (Section 4); it is
    used in ``convergence`` beyond ``mixture_max_samples``, where the full estimator is too costly.
    """
    log_abs = np.log(np.abs(features))
    return float(features.shape[1] * 0.5 * math.log(2.0 * math.pi * math.e * variance) + log_abs.mean(axis=0).sum())


# --------------------------------------------------------------------------- config


def _check_list(values: Any, name: str, check: Callable[[Any, str], Any]) -> None:
    if values is None or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    for index, value in enumerate(values):
        check(value, f"{name}[{index}]")


def validate(cfg: Any) -> None:
    """Raise ValueError naming the config entry for any value the commands cannot use."""
    check_positive(cfg.variance, "variance")
    check_int(cfg.noise_samples, "noise_samples", minimum=1)
    _check_list(cfg.seeds, "seeds", check_seed)
    if cfg.chunk_size is not None:
        check_int(cfg.chunk_size, "chunk_size", minimum=1)
    if not str(cfg.plots_dir).strip():
        raise ValueError("plots_dir must name a folder, got an empty string")
    _check_list(cfg.dims, "dims", lambda v, n: check_int(v, n, minimum=1))
    _check_list(cfg.sample_sizes, "sample_sizes", lambda v, n: check_int(v, n, minimum=2))
    check_int(cfg.mixture_max_samples, "mixture_max_samples", minimum=2)
    _check_list(cfg.bounds_dims, "bounds_dims", lambda v, n: check_int(v, n, minimum=1))
    _check_list(cfg.bounds_sample_sizes, "bounds_sample_sizes", lambda v, n: check_int(v, n, minimum=2))
    _check_list(cfg.compare_dims, "compare_dims", lambda v, n: check_int(v, n, minimum=1))
    check_int(cfg.compare_samples, "compare_samples", minimum=2)
    _check_list(cfg.compare_seeds, "compare_seeds", check_seed)

    def known_estimator(value: Any, name: str) -> None:
        if value not in ESTIMATORS:
            raise ValueError(f"{name} must be one of {', '.join(ESTIMATORS)}; got {value!r}")

    _check_list(cfg.estimators, "estimators", known_estimator)
    _check_list(cfg.bin_counts, "bin_counts", lambda v, n: check_int(v, n, minimum=1))
    _check_list(cfg.bin_sizes, "bin_sizes", check_positive)
    check_int(cfg.ksg_k, "ksg_k", minimum=1)
    check_int(cfg.neural_steps, "neural_steps", minimum=1)


# --------------------------------------------------------------------------- helpers


def _rng(*keys: int) -> np.random.Generator:
    """An independent stream per (seed, dimension, N, purpose), so adding a setting changes no other."""
    return np.random.default_rng([int(k) for k in keys])


def _bars_off(cfg: Any) -> bool | None:
    """tqdm's ``disable``: None lets tqdm turn the bar off when stderr is not a terminal."""
    return None if cfg.progress is None else not cfg.progress


def _estimator_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _ours(features: np.ndarray, cfg: Any, seed: int, *, bounds: bool = False) -> Any:
    """Our estimator on f(x_i); the pairwise bounds (O(N^2 n) extra work) only when asked."""
    return mi.gaussian_dropout_mi(
        features,
        float(cfg.variance),
        noise_samples=int(cfg.noise_samples),
        seed=seed,
        chunk_size=None if cfg.chunk_size is None else int(cfg.chunk_size),
        device=cfg.device,
        bounds=bounds,
    )


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (repr(float(row[key])) if isinstance(row[key], float) else row[key]) for key in columns})
    return write_text(path, buffer.getvalue())


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read a CSV written by a toy command back into rows (numbers as int/float where they parse)."""

    def parse(value: str) -> Any:
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value

    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: parse(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _opening(cfg: Any) -> tuple[float, ToyTruth]:
    """What every toy command starts with: the checked config's variance and its one-unit truth."""
    validate(cfg)
    variance = float(cfg.variance)
    return variance, toy_truth(variance)


def _write_outputs(
    cfg: Any, command: str, rows: Sequence[dict[str, Any]], columns: Sequence[str],
    plot: Callable[[Sequence[dict[str, Any]], Path], Any],
) -> tuple[Path, Path]:
    """Write ``<command>_var<variance>.csv`` and its ``.png`` (drawn by ``plot``) under ``plots_dir``."""
    stem = f"{command}_var{float(cfg.variance):g}"
    csv_path, png_path = Path(str(cfg.plots_dir)) / f"{stem}.csv", Path(str(cfg.plots_dir)) / f"{stem}.png"
    _write_csv(csv_path, rows, columns)
    plot(rows, png_path)
    return csv_path, png_path


def _print_table(title: str, header: Sequence[str], lines: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    print(title)
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for line in lines:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths)))


def _fmt(mean: float, sd: float | None = None) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f}" if sd is None else f"{mean:.3f}±{sd:.3f}"


# --------------------------------------------------------------------------- commands

CONVERGENCE_COLUMNS = (
    "dim", "n_samples", "seed", "variance", "h_z_given_x", "h_z", "i_xz", "i_xz_stderr", "i_xz_loo",
    "h_z_given_x_truth", "h_z_truth", "i_xz_truth", "seconds",
)  # fmt: skip


def _sweep(cfg: Any, dims: Any, sample_sizes: Any, variance: float, stream: int, desc: str) -> Iterator[tuple]:
    """Every (dimension n, sample size N, seed) of a sweep, in that nesting, with a progress bar:
    yields (n, N, seed, rng, features), the N x n toy features of one noise draw sampled from
    ``rng``, the generator keyed by (seed, n, N, ``stream``); the rng goes on to seed the estimator."""
    settings = [(int(d), int(n), int(s)) for d in dims for n in sample_sizes for s in cfg.seeds]
    for dim, n_samples, seed in tqdm(settings, desc=desc, unit="run", disable=_bars_off(cfg)):
        rng = _rng(seed, dim, n_samples, stream)
        _, features, _, _ = sample_toy(n_samples, dim, variance, 1, rng)
        yield dim, n_samples, seed, rng, features


def convergence(cfg: Any) -> Path:
    """Figs. 2 and 9: estimates of h(Z|X) and I(X;Z) (nats) against N, per dimension and seed.

    Writes ``convergence_var<variance>.csv`` and ``.png`` under ``plots_dir``; returns the CSV path.
    """
    variance, truth = _opening(cfg)
    rows = []
    for dim, n_samples, seed, rng, features in _sweep(cfg, cfg.dims, cfg.sample_sizes, variance, 1, "toy convergence"):
        row = {
            "dim": dim, "n_samples": n_samples, "seed": seed, "variance": variance,
            "h_z_given_x_truth": dim * truth.h_z_given_x, "h_z_truth": dim * truth.h_z, "i_xz_truth": dim * truth.i_xz,
        }  # fmt: skip
        started = time.perf_counter()
        if n_samples <= int(cfg.mixture_max_samples):
            result = _ours(features, cfg, _estimator_seed(rng))
            row.update(
                h_z_given_x=float(result.h_z_given_x), h_z=float(result.h_z), i_xz=float(result.i_xz),
                i_xz_stderr=_number(result.i_xz_stderr), i_xz_loo=_number(result.i_xz_loo),
            )  # fmt: skip
        else:
            row.update(
                h_z_given_x=conditional_entropy_mc(features, variance), h_z=math.nan, i_xz=math.nan,
                i_xz_stderr=math.nan, i_xz_loo=math.nan,
            )  # fmt: skip
        row["seconds"] = time.perf_counter() - started
        rows.append(row)

    csv_path, png_path = _write_outputs(cfg, "convergence", rows, CONVERGENCE_COLUMNS, plot_convergence)
    lines = []
    for dim in dict.fromkeys(int(d) for d in cfg.dims):
        for n_samples in dict.fromkeys(int(n) for n in cfg.sample_sizes):
            group = [r for r in rows if r["dim"] == dim and r["n_samples"] == n_samples]
            lines.append([
                str(dim), str(n_samples),
                _fmt(*mean_sd([r["h_z_given_x"] for r in group])), _fmt(dim * truth.h_z_given_x),
                _fmt(*mean_sd([r["i_xz"] for r in group])), _fmt(*mean_sd([r["i_xz_loo"] for r in group])),
                _fmt(dim * truth.i_xz), _fmt(math.log(n_samples)),
            ])  # fmt: skip
    _print_table(
        f"toy convergence, variance {variance:g}, mean±sd over {len(cfg.seeds)} seed(s), nats",
        ["n", "N", "h(Z|X)", "truth", "I(X;Z)", "I(X;Z) loo", "truth", "log N"],
        lines,
    )
    print(f"wrote {csv_path} and {png_path}")
    return csv_path


BOUNDS_COLUMNS = (
    "dim", "n_samples", "seed", "variance", "h_z_mixture", "h_z_stderr", "h_z_gaussian_upper", "h_z_pairwise_lower",
    "h_z_pairwise_upper", "h_z_truth", "seconds",
)  # fmt: skip


def bounds(cfg: Any) -> Path:
    """Figs. 3 and 8: mixture estimate of h(Z) against its Gaussian (Ledoit-Wolf) upper bound and
    the Kolchinsky-Tracey pairwise bounds (nats), per dimension n, N and seed.

    Writes ``bounds_var<variance>.csv`` and ``.png`` under ``plots_dir``; returns the CSV path.
    """
    variance, truth = _opening(cfg)
    rows = []
    for dim, n_samples, seed, rng, features in _sweep(cfg, cfg.bounds_dims, cfg.bounds_sample_sizes, variance, 2, "toy bounds"):
        started = time.perf_counter()
        result = _ours(features, cfg, _estimator_seed(rng), bounds=True)
        lower, upper = result.h_z_bounds
        rows.append({
            "dim": dim, "n_samples": n_samples, "seed": seed, "variance": variance,
            "h_z_mixture": float(result.h_z), "h_z_stderr": _number(result.i_xz_stderr),
            "h_z_gaussian_upper": float(result.h_z_gaussian_upper),
            "h_z_pairwise_lower": float(lower), "h_z_pairwise_upper": float(upper),
            "h_z_truth": dim * truth.h_z, "seconds": time.perf_counter() - started,
        })  # fmt: skip

    csv_path, png_path = _write_outputs(cfg, "bounds", rows, BOUNDS_COLUMNS, plot_entropy_bounds)
    lines = []
    for dim in dict.fromkeys(int(d) for d in cfg.bounds_dims):
        for n_samples in dict.fromkeys(int(n) for n in cfg.bounds_sample_sizes):
            group = [r for r in rows if r["dim"] == dim and r["n_samples"] == n_samples]
            lines.append([str(dim), str(n_samples)] + [
                _fmt(mean_sd([r[key] for r in group])[0])
                for key in ("h_z_pairwise_lower", "h_z_mixture", "h_z_pairwise_upper", "h_z_gaussian_upper")
            ] + [_fmt(dim * truth.h_z)])  # fmt: skip
    _print_table(
        f"toy bounds on h(Z), variance {variance:g}, mean over {len(cfg.seeds)} seed(s), nats",
        ["n", "N", "pairwise low", "mixture", "pairwise up", "Gaussian up", "truth"],
        lines,
    )
    print(f"wrote {csv_path} and {png_path}")
    return csv_path


COMPARE_COLUMNS = ("dim", "n_samples", "seed", "variance", "estimator", "setting", "i_xz", "i_xz_truth", "log_n", "seconds")


def _baseline_runs(name: str, cfg: Any, seed: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(estimator column, setting column, options) of each run of the baseline ``name``: the
    Config entries each estimator of the registry takes."""
    if name == "binning":
        # The sweep over bins shows saturation on purpose: no warning per call.
        return ([("binning_bins", str(int(b)), {"bins": int(b), "warn_saturated": False}) for b in cfg.bin_counts]
                + [("binning_size", f"{float(s):g}", {"bin_size": float(s), "warn_saturated": False}) for s in cfg.bin_sizes])
    if name == "ksg":
        return [("ksg", f"k={int(cfg.ksg_k)}", {"k": int(cfg.ksg_k), "seed": seed})]
    if name == "edge":
        return [("edge", "", {"seed": seed})]
    neural = {"steps": int(cfg.neural_steps), "seed": seed, "device": cfg.device}
    if name in ("doe", "doe_l"):
        return [(name, "gaussian" if name == "doe" else "logistic", neural)]
    return [(name, f"steps={int(cfg.neural_steps)}", neural)]


def _baselines(name: str, x: np.ndarray, z: np.ndarray, cfg: Any, seed: int) -> list[tuple[str, str, float]]:
    """Run one baseline family of the registry (infodrop.mi.registry) on the pairs (x, z);
    returns (estimator, setting, nats) triples."""
    estimator = mi.get_estimator(name)
    return [(column, setting, estimator(x, z, **options).value) for column, setting, options in _baseline_runs(name, cfg, seed)]


def compare(cfg: Any) -> Path:
    """Figs. 4 and 10: I(X;Z) (nats) of our estimator and the baselines, per dimension n and seed.

    Writes ``compare_var<variance>.csv`` and ``.png`` under ``plots_dir``; returns the CSV path.
    """
    variance, truth = _opening(cfg)
    n_samples = int(cfg.compare_samples)
    estimators = list(dict.fromkeys(str(e) for e in cfg.estimators))
    settings = [(int(d), int(s), e) for d in cfg.compare_dims for s in cfg.compare_seeds for e in estimators]
    rows = []
    for dim, seed, name in tqdm(settings, desc="toy compare", unit="run", disable=_bars_off(cfg)):
        # the same data for every estimator of one (dim, seed)
        rng = _rng(seed, dim, n_samples, 3)
        _, features, x_repeated, z = sample_toy(n_samples, dim, variance, int(cfg.noise_samples), rng)
        seed_for_estimator = _estimator_seed(rng)
        started = time.perf_counter()
        if name == "ours":
            result = _ours(features, cfg, seed_for_estimator)
            results = [("ours", "", float(result.i_xz)), ("ours_loo", "leave-one-out", _number(result.i_xz_loo))]
        else:
            results = _baselines(name, x_repeated, z, cfg, seed_for_estimator)
        seconds = (time.perf_counter() - started) / len(results)
        for estimator, setting, value in results:
            rows.append({
                "dim": dim, "n_samples": n_samples, "seed": seed, "variance": variance, "estimator": estimator,
                "setting": setting, "i_xz": float(value), "i_xz_truth": dim * truth.i_xz, "log_n": math.log(n_samples),
                "seconds": seconds,
            })  # fmt: skip

    csv_path, png_path = _write_outputs(cfg, "compare", rows, COMPARE_COLUMNS, plot_estimator_comparison)
    dims = list(dict.fromkeys(int(d) for d in cfg.compare_dims))
    keys = list(dict.fromkeys((r["estimator"], r["setting"]) for r in rows))
    lines = []
    for estimator, setting in keys:
        line = [estimator, setting]
        for dim in dims:
            values = [r["i_xz"] for r in rows if r["dim"] == dim and r["estimator"] == estimator and r["setting"] == setting]
            line.append(_fmt(mean_sd(values)[0]))
        lines.append(line)
    lines.append(["truth", "quadrature"] + [_fmt(dim * truth.i_xz) for dim in dims])
    lines.append(["log N", f"N={n_samples}"] + [_fmt(math.log(n_samples)) for _ in dims])
    _print_table(
        f"toy compare, I(X;Z) in nats, variance {variance:g}, mean over {len(cfg.compare_seeds)} seed(s)",
        ["estimator", "setting"] + [f"n={d}" for d in dims],
        lines,
    )
    print(f"wrote {csv_path} and {png_path}")
    return csv_path


COMMANDS: dict[str, Callable[[Any], object]] = {"convergence": convergence, "bounds": bounds, "compare": compare}
