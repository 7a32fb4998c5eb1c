"""How well does infodrop.mi.mixture_cost predict the time of gaussian_dropout_mi?

For each N: the calibrated prediction (a short timed pass, extrapolated linearly in pairs),
then the measured wall time of the full call on the same device, and their ratio. Features:
1 + 0.5 * N(0, 1), width d, no zeros.

    python benchmarks/bench_cost_estimate.py                      # N = 2,000, 5,000, 10,000; d = 32
    python benchmarks/bench_cost_estimate.py --n 20000 50000 --bounds --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch

from infodrop.mi import gaussian_dropout_mi, mixture_cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 5000, 10000])
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--noise-samples", type=int, default=10)
    parser.add_argument("--bounds", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, d = {args.d}, S = {args.noise_samples}, bounds = {args.bounds}")
    print("| N | pairs | predicted s | measured s | measured / predicted |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n in args.n:
        cost = mixture_cost(
            n, args.d, args.noise_samples, bounds=args.bounds, device=args.device, dtype=args.dtype, calibrate=True
        )
        features = 1.0 + 0.5 * torch.randn(n, args.d, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
        if cost.device.startswith("cuda"):
            features = features.to(cost.device)
            torch.cuda.synchronize()
        start = time.perf_counter()
        gaussian_dropout_mi(
            features, 0.5, noise_samples=args.noise_samples, bounds=args.bounds, device=args.device, dtype=args.dtype
        )
        if cost.device.startswith("cuda"):
            torch.cuda.synchronize()
        measured = time.perf_counter() - start
        print(f"| {n:,} | {cost.pairs:.2e} | {cost.seconds:.2f} | {measured:.2f} | {measured / cost.seconds:.2f} |")
        print(f"  {cost}")


if __name__ == "__main__":
    main()
