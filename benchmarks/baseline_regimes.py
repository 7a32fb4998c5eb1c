"""Where the baseline estimators EDGE and DoE are within 20 % of the truth.

Problems whose mutual information is known in closed form (nats), at k + k joint dimensions:

- ``pairs``: X ~ N(0, I_k), Y_i = rho X_i + sqrt(1 - rho^2) E_i: k independent correlated pairs,
  the coordinates of Y independent of each other. I = -(k/2) log(1 - rho^2).
- ``dense``: all 2k coordinates of (X, Y) standard normal with correlation c between any two
  (the "multinormal dense" tasks of the BMI benchmark, Czyz et al. 2023): the coordinates of Y
  are correlated with each other. I = (log det S_xx + log det S_yy - log det S) / 2, with
  det of an m x m equicorrelation matrix = (1 - c)^(m-1) (1 + (m-1) c).
- ``one-pair``: only X_1 and Y_1 correlated (rho), the other coordinates independent noise.
  I = -(1/2) log(1 - rho^2).
- ``labels``: Y uniform on {0, 1}, X = (2Y - 1) delta e_1 + N(0, I_k). I = log 2 - E[h_b(P(Y=1|X))]
  with P(Y=1|x) = sigmoid(2 delta x_1), by one-dimensional quadrature.

Prints one markdown row per problem: truth, mean and standard deviation of each estimator over
the seeds, its relative error, and whether |mean - truth| <= 20 % of the truth. Run:

    OMP_NUM_THREADS=1 python benchmarks/baseline_regimes.py [--n 10000] [--seeds 3] [--dims 1 2 3 5 10]

Defaults of the estimators throughout (``edge_mi(x, y, seed=s)``, ``doe_mi(x, y, seed=s)``).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch
from scipy import integrate

from infodrop.mi import doe_mi, edge_mi


def equicorrelation_logdet(size: int, c: float) -> float:
    return (size - 1) * math.log(1 - c) + math.log(1 + (size - 1) * c)


def sample(structure: str, k: int, strength: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    if structure == "pairs":
        x = rng.standard_normal((n, k))
        y = strength * x + math.sqrt(1 - strength**2) * rng.standard_normal((n, k))
        return x, y, -0.5 * k * math.log(1 - strength**2)
    if structure == "one-pair":
        x = rng.standard_normal((n, k))
        y = rng.standard_normal((n, k))
        y[:, 0] = strength * x[:, 0] + math.sqrt(1 - strength**2) * y[:, 0]
        return x, y, -0.5 * math.log(1 - strength**2)
    if structure == "dense":
        size = 2 * k
        covariance = np.full((size, size), strength) + (1 - strength) * np.eye(size)
        joint = rng.multivariate_normal(np.zeros(size), covariance, size=n, method="cholesky")
        truth = 0.5 * (2 * equicorrelation_logdet(k, strength) - equicorrelation_logdet(size, strength))
        return joint[:, :k], joint[:, k:], truth
    if structure == "labels":
        y = rng.integers(0, 2, n)
        x = rng.standard_normal((n, k))
        x[:, 0] += (2 * y - 1) * strength
        return x, y, labels_truth(strength)
    raise ValueError(structure)


def labels_truth(delta: float) -> float:
    def integrand(t: float) -> float:
        # density of X_1 (mixture of N(+-delta, 1)) times the binary entropy of the posterior
        density = 0.5 * (math.exp(-0.5 * (t - delta) ** 2) + math.exp(-0.5 * (t + delta) ** 2)) / math.sqrt(2 * math.pi)
        p = 1.0 / (1.0 + math.exp(-2 * delta * t))
        entropy = 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))
        return density * entropy

    value, _ = integrate.quad(integrand, -delta - 12, delta + 12, limit=200)
    return math.log(2) - value


PROBLEMS = [("pairs", 0.5), ("pairs", 0.9), ("one-pair", 0.9), ("dense", 0.5), ("dense", 0.2), ("labels", 1.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 2, 3, 5, 10])
    parser.add_argument("--estimators", nargs="+", default=["edge", "doe", "doe_l"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the regime warnings are what this script measures
    estimators = {
        "edge": lambda x, y, s: edge_mi(x, y, seed=s),
        "doe": lambda x, y, s: doe_mi(x, y, seed=s, device="cpu"),
        "doe_l": lambda x, y, s: doe_mi(x, y, parametrization="logistic", seed=s, device="cpu"),
    }
    names = [name for name in args.estimators if name in estimators]
    print(f"N = {args.n}, {args.seeds} seeds, torch {torch.__version__}, one thread")
    header = "| problem | k+k | truth |" + "".join(f" {name} mean (sd) | rel. err. |" for name in names)
    print(header)
    print("|" + " --- |" * (3 + 2 * len(names)))
    for structure, strength in PROBLEMS:
        for k in args.dims:
            row = []
            truth = None
            started = time.perf_counter()
            for name in names:
                values = []
                for seed in range(args.seeds):
                    rng = np.random.default_rng([seed, k, int(1000 * strength), len(structure)])
                    x, y, truth = sample(structure, k, strength, args.n, rng)
                    values.append(estimators[name](x, y, seed))
                mean, sd = float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                relative = (mean - truth) / truth
                mark = "" if abs(relative) <= 0.2 else " **"
                row.append(f" {mean:.3f} ({sd:.3f}) | {100 * relative:+.0f} %{mark} |")
            dims = f"{k}+{'labels' if structure == 'labels' else k}"
            label = f"{structure} {'rho' if structure in ('pairs', 'one-pair') else 'delta' if structure == 'labels' else 'c'}={strength:g}"
            print(f"| {label} | {dims} | {truth:.3f} |" + "".join(row) + f" <!-- {time.perf_counter() - started:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
