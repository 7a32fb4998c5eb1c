"""Benchmark of the mixture pass behind h(Z) and I(X;Z) (infodrop.mi.mixture.mixture_pass).

For N inputs, d units and S noise samples per input the pass scores M = N*S samples of Z against
all N components: M*N pairs, whose log-densities are the (M x 2d)(2d x N) product of [z^2, z]
with [-r^2/(2 variance), r/variance]: 2 * M * N * 2d = 4 M N d FLOPs, then M*N exponentials.
The workload includes the leave-one-out sums and, with --classes, the class sums of I(Z;Y).

In ONE process and alternating, so that a busy machine slows every variant alike, each repeat
times

* GEMM: torch.mm of two square float32 matrices with the same FLOP count as the pass's
  products (4 M N d): the machine's float32 GEMM rate for this thread count;
* today: backend='torch', float64, 256 rows per chunk (the path before the blocked one);
* blocked: backend='blocked', float32 (the CPU default of gaussian_dropout_mi);
* scikit-learn: GaussianMixture(covariance_type='diag').score_samples with the weights, means
  and precisions set by hand on the same Z samples: log p_N(z) only (no leave-one-out, no class
  sums, the own component from the product), timed on --sklearn-rows rows and scaled to M;
* bare logsumexp: torch.logsumexp over (BLOCK_ROWS x N) float32 blocks, scaled to M*N pairs:
  the cost of merely visiting every pair (no products);

and prints the best of the repeats: seconds, GEMM fraction of the blocked path (4 M N d / time /
GEMM rate), the ratios, and the agreement of the blocked float32 pass with the float64 one on the
same noise (h(Z) by the controlled mean, the leave-one-out estimate, I(Z;Y), the largest per-row
difference of -log p_N(z)).

    python benchmarks/bench_mixture.py                      # N = 4,000, d = 32, S = 10, one thread
    python benchmarks/bench_mixture.py --n 2000 --repeats 2 --classes 0
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from infodrop.mi.blocked_mixture import BLOCK_ROWS
from infodrop.mi.mixture import NoiseSource, controlled_mean, mixture_pass, prepare_components

# Rows per chunk of the torch path before the blocked one (DEFAULT_CHUNK_ROWS on a CPU then).
TODAY_CHUNK_ROWS = 256
CLOCK = time.perf_counter


def gemm_seconds(flops: float) -> float:
    """Seconds of one float32 torch.mm of square matrices of about ``flops`` FLOPs (2 n^3)."""
    side = max(1, round((flops / 2) ** (1 / 3)))
    a, b = torch.randn(side, side), torch.randn(side, side)
    torch.mm(a[:64, :64], b[:64, :64])  # warm the BLAS up
    start = CLOCK()
    torch.mm(a, b)
    return (CLOCK() - start) * flops / (2 * side**3)


def logsumexp_seconds(rows: int, n: int, pairs: int) -> float:
    """Seconds for a bare torch.logsumexp to visit ``pairs`` pairs, measured on (rows x n) float32
    blocks: what merely reading every pair once costs, without any product."""
    block = torch.randn(rows, n)
    torch.logsumexp(block, dim=1)
    repeats = max(1, min(50, pairs // (rows * n)))
    start = CLOCK()
    for _ in range(repeats):
        torch.logsumexp(block, dim=1)
    return (CLOCK() - start) * pairs / (repeats * rows * n)


def run_pass(comp, s, labels, dtype, backend, chunk_rows=None):
    start = CLOCK()
    result = mixture_pass(comp, s, 0, labels=labels, leave_one_out=True, dtype=dtype, backend=backend,
                          chunk_rows=chunk_rows)
    return CLOCK() - start, result


def sklearn_seconds(features: np.ndarray, variance: float, s: int, rows: int) -> tuple[float, np.ndarray]:
    """scikit-learn's score_samples on the first ``rows`` samples of Z (the same noise), scaled to
    all N * S rows; and its log-densities of those rows."""
    from sklearn.mixture import GaussianMixture

    n, d = features.shape
    model = GaussianMixture(n_components=n, covariance_type="diag")
    model.weights_ = np.full(n, 1.0 / n)
    model.means_ = features
    model.covariances_ = variance * features**2
    model.precisions_cholesky_ = 1.0 / np.sqrt(model.covariances_)
    model.precisions_ = 1.0 / model.covariances_
    model.converged_ = True
    model.n_features_in_ = d
    k = math.ceil(rows / s)
    eps = NoiseSource(n, d, s, 0, torch.device("cpu")).eps(0, k)[:rows].numpy()
    z = np.repeat(features[:k], s, axis=0)[:rows] * (1 + math.sqrt(variance) * eps)
    start = CLOCK()
    scores = model.score_samples(z)
    return (CLOCK() - start) * n * s / rows, scores


def agreement(comp, s, fast, exact) -> dict[str, float]:
    """|differences| (nats) of the float32 pass from the float64 pass on the same noise."""
    def mean(result, name):
        return controlled_mean(getattr(result, name), result.neg_log_self, comp.entropy, s).value

    out = {"h(Z)": abs(mean(fast, "neg_log_p") - mean(exact, "neg_log_p")),
           "leave-one-out h(Z)": abs(mean(fast, "neg_log_loo") - mean(exact, "neg_log_loo")),
           "max row -log p_N(z)": float((fast.neg_log_p - exact.neg_log_p).abs().max())}
    if fast.neg_log_class is not None:
        def i_zy(result):
            return controlled_mean(result.neg_log_p - result.neg_log_class, result.neg_log_self, comp.entropy, s).value
        out["I(Z;Y)"] = abs(i_zy(fast) - i_zy(exact))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="inputs N")
    parser.add_argument("--d", type=int, default=32, help="units d")
    parser.add_argument("--noise-samples", type=int, default=10, help="samples of Z per input (S)")
    parser.add_argument("--variance", type=float, default=0.1, help="Gaussian-dropout variance")
    parser.add_argument("--classes", type=int, default=10, help="labels for the class sums (0: none)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; the best is quoted")
    parser.add_argument("--sklearn-rows", type=int, default=2000, help="Z rows scored by scikit-learn")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall clock, or process CPU time (one thread on a shared machine)")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    n, d, s, variance = args.n, args.d, args.noise_samples, args.variance
    rng = np.random.default_rng(0)
    # Softplus-like positive features with unit-to-unit scale differences.
    features = np.log1p(np.exp(rng.normal(size=(n, d)))) * np.exp(rng.normal(scale=0.5, size=(1, d)))
    labels = torch.as_tensor(rng.integers(0, args.classes, n)) if args.classes else None
    comp = prepare_components(torch.tensor(features), variance)
    pairs, flops = n * s * n, 4.0 * n * s * n * d

    print(f"workload: N={n} d={d} S={s} variance={variance} classes={args.classes} pairs={pairs:.3g} "
          f"product FLOPs={flops:.3g} (4 M N d); leave-one-out and class sums included")
    print(f"machine: torch={torch.__version__} threads={torch.get_num_threads()} clock={args.clock} "
          f"load average at start={os.getloadavg()[0]:.2f} (1 min)")
    best: dict[str, float] = {}
    for repeat in range(1, args.repeats + 1):
        times = {"GEMM": gemm_seconds(flops)}
        times["today"], exact = run_pass(comp, s, labels, torch.float64, "torch", TODAY_CHUNK_ROWS)
        times["blocked"], fast = run_pass(comp, s, labels, torch.float32, "blocked")
        times["bare logsumexp"] = logsumexp_seconds(BLOCK_ROWS, n, pairs)
        times["scikit-learn"], scores = sklearn_seconds(features, variance, s, min(args.sklearn_rows, n * s))
        print(f"repeat {repeat}: " + "  ".join(f"{k} {v:.3f} s" for k, v in times.items()), flush=True)
        best = {k: min(v, best.get(k, math.inf)) for k, v in times.items()}
    rows = min(args.sklearn_rows, n * s)
    sklearn_diff = float(np.abs(-scores - exact.neg_log_p[:rows].numpy()).max())
    rate = flops / best["GEMM"]
    print(f"float32 GEMM rate (square torch.mm of {flops:.3g} FLOPs): {rate / 1e9:.1f} GFLOP/s")
    print(f"today's path (torch, float64) time: {best['today']:.3f} s  ({pairs / best['today'] / 1e6:.0f} Mpairs/s)")
    print(f"blocked path (float32) time:        {best['blocked']:.3f} s  ({pairs / best['blocked'] / 1e6:.0f} Mpairs/s)")
    print(f"scikit-learn score_samples time:    {best['scikit-learn']:.3f} s  (log p_N only; scaled from {rows} rows; "
          f"max |log p| difference from float64 ours {sklearn_diff:.1e})")
    print(f"bare torch.logsumexp, {BLOCK_ROWS} x N float32 blocks: {best['bare logsumexp']:.3f} s  "
          f"({pairs / best['bare logsumexp'] / 1e6:.0f} Mpairs/s; blocked path / bare: "
          f"{best['bare logsumexp'] / best['blocked']:.2f})")
    print(f"GEMM fraction of the blocked path:  {flops / best['blocked'] / rate:.3f}   (today's: {flops / best['today'] / rate:.3f})")
    print(f"ratio today / blocked:              {best['today'] / best['blocked']:.2f}x")
    print(f"ratio scikit-learn / blocked:       {best['scikit-learn'] / best['blocked']:.2f}x")
    for name, value in agreement(comp, s, fast, exact).items():
        print(f"|blocked float32 - float64| {name}: {value:.2e} nats")
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min); best of {args.repeats} alternating repeats")


if __name__ == "__main__":
    main()
