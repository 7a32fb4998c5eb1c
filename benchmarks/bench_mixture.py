"""Benchmark of the Monte Carlo h(Z) of the Gaussian-dropout mixture (infodrop.mi.mixture).

For N inputs, d units and S noise samples per input, h(Z) scores M = N*S samples of Z against
all N components: M*N pairs, two products costing 2 * (2 * M * N * d) FLOPs, M*N exponentials.
Per configuration the script prints

* our time (float64, the default, and float32) and pairs per second;
* scikit-learn: GaussianMixture(covariance_type='diag') with weights, means and precisions set
  by hand, score_samples on the same Z samples (timed on a subset of rows and scaled, since it
  materialises the full rows x N matrix; the subset is printed), with the largest difference of
  its log-densities from ours on that subset;
* the fraction of the machine's float64/float32 GEMM rate (square 2048^3 products measured in
  the same run) that our products' FLOPs represent;
* pairs per second of a bare torch.logsumexp over a block of the same shape as ours
  (chunk rows x N): the floor for any method that visits every pair once.

Large configurations can be timed on a fraction of the samples of Z (``--row-fraction``; still
scored against all N components) and scaled linearly; the output says when this was done.

    python benchmarks/bench_mixture.py --quick
    python benchmarks/bench_mixture.py                      # N = 10,000 and 50,000, d = 32 and 128
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from infodrop.mi.mixture import default_chunk_rows, mixture_pass, prepare_components, NoiseSource


# Wall clock by default; ``--clock cpu`` uses process CPU time, which with one thread is the time
# an idle core would take (on a shared, overloaded machine the wall clock measures the queue).
CLOCK = time.perf_counter


def _timed(fn, *, min_seconds: float = 0.5, max_repeats: int = 50) -> float:
    fn()
    start = CLOCK()
    repeats = 0
    while True:
        fn()
        repeats += 1
        elapsed = CLOCK() - start
        if elapsed >= min_seconds or repeats >= max_repeats:
            return elapsed / repeats


def gemm_rate(dtype: torch.dtype, device: torch.device, size: int = 2048) -> float:
    """FLOP/s of a square size^3 matrix product."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)

    def run():
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return 2 * size**3 / _timed(run)


def logsumexp_rate(rows: int, n: int, device: torch.device) -> float:
    """Pairs per second of torch.logsumexp over a rows x n float64 block."""
    block = torch.randn(rows, n, dtype=torch.float64, device=device)

    def run():
        torch.logsumexp(block, dim=1)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return rows * n / _timed(run)


def time_ours(comp, s, dtype, inputs, device) -> tuple[float, torch.Tensor]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = CLOCK()
    out = mixture_pass(comp, s, seed=0, leave_one_out=False, dtype=dtype, inputs=inputs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return CLOCK() - start, out.neg_log_p


def time_sklearn(features: np.ndarray, variance: float, z: np.ndarray) -> tuple[float, np.ndarray]:
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
    start = CLOCK()
    scores = model.score_samples(z)
    return CLOCK() - start, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="numbers of inputs N")
    parser.add_argument("--dims", type=int, nargs="+", default=None, help="numbers of units d")
    parser.add_argument("--noise-samples", type=int, default=10, help="samples of Z per input (S)")
    parser.add_argument("--variance", type=float, default=0.1, help="Gaussian-dropout variance")
    parser.add_argument("--quick", action="store_true", help="small defaults: N = 2,000 and 5,000")
    parser.add_argument("--row-fraction", type=float, default=None,
                        help="time ours on this fraction of the Z samples and scale (default: 1 up to "
                             "2e9 pairs, then enough for about 2e9 pairs)")
    parser.add_argument("--sklearn-rows", type=int, default=2000, help="Z rows scored by scikit-learn")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--skip-float32", action="store_true")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall clock, or process CPU time (use with --threads 1 on a shared machine)")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = args.sizes or ([2000, 5000] if args.quick else [10_000, 50_000])
    dims = args.dims or [32, 128]
    s, variance = args.noise_samples, args.variance

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"load-average(1 min)={load:.1f} clock={args.clock} S={s} variance={variance}")
    rate64 = gemm_rate(torch.float64, device)
    rate32 = gemm_rate(torch.float32, device)
    print(f"GEMM rate (2048^3): float64 {rate64 / 1e9:.1f} GFLOP/s, float32 {rate32 / 1e9:.1f} GFLOP/s")
    header = (f"{'N':>7} {'d':>4} {'pairs':>9} {'ours f64 s':>11} {'f64 Mpair/s':>11} {'%GEMM64':>8} "
              f"{'ours f32 s':>11} {'f32 Mpair/s':>11} {'%GEMM32':>8} {'sklearn s':>10} {'x slower':>8} "
              f"{'lse Mpair/s':>11} {'ours/lse':>8} {'max|diff|':>9}")
    print(header)
    notes = []
    for n in sizes:
        for d in dims:
            rng = np.random.default_rng(0)
            # Softplus-like positive features with unit-to-unit scale differences.
            features = np.log1p(np.exp(rng.normal(size=(n, d)))) * np.exp(rng.normal(scale=0.5, size=(1, d)))
            comp = prepare_components(torch.tensor(features, device=device), variance)
            pairs = n * s * n
            fraction = args.row_fraction or min(1.0, 2e9 / pairs)
            n_inputs = max(1, int(round(n * fraction)))
            scale = n / n_inputs
            if scale > 1:
                notes.append(f"N={n} d={d}: ours timed on {n_inputs} of {n} inputs' samples "
                             f"(all N components), scaled x{scale:.2f}")
            t64, ours = time_ours(comp, s, torch.float64, (0, n_inputs), device)
            t64 *= scale
            flops = 4.0 * pairs * d
            if args.skip_float32:
                t32 = float("nan")
            else:
                t32, _ = time_ours(comp, s, torch.float32, (0, n_inputs), device)
                t32 *= scale
            # scikit-learn on the first rows of the same Z samples.
            # scikit-learn holds rows x N float64 several times over: cap it near 2e7 elements.
            rows = min(args.sklearn_rows, n * s, max(s, int(2e7 // n)))
            k = math.ceil(rows / s)
            eps = NoiseSource(n, d, s, 0, device).eps(0, k)[:rows].cpu().numpy()
            z = np.repeat(features[:k], s, axis=0)[:rows] * (1 + math.sqrt(variance) * eps)
            t_sk, scores = time_sklearn(features, variance, z)
            t_sk *= (n * s) / rows
            diff = float(np.abs(-scores - ours[:rows].cpu().numpy()).max())
            notes.append(f"N={n} d={d}: scikit-learn timed on {rows} of {n * s} Z rows, scaled x{n * s / rows:.0f}")
            chunk = default_chunk_rows(n, s, device)
            lse = logsumexp_rate(chunk, n, device)
            print(f"{n:>7} {d:>4} {pairs:>9.2e} {t64:>11.2f} {pairs / t64 / 1e6:>11.1f} "
                  f"{100 * flops / t64 / rate64:>7.1f}% {t32:>11.2f} {pairs / t32 / 1e6:>11.1f} "
                  f"{100 * flops / t32 / rate32:>7.1f}% {t_sk:>10.1f} {t_sk / t64:>8.1f} "
                  f"{lse / 1e6:>11.1f} {pairs / t64 / lse:>8.2f} {diff:>9.1e}", flush=True)
    for note in notes:
        print("note:", note)
    print("columns: time for the full h(Z) pass; %GEMM = FLOPs of the two products (4 M N d) / time / "
          "GEMM rate; lse = bare torch.logsumexp over a (chunk rows x N) float64 block; "
          "max|diff| = largest |log p| difference between scikit-learn and ours (float64).")


if __name__ == "__main__":
    main()
