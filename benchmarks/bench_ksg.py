"""KSG in high dimension: KD-tree against blocked brute force (infodrop.mi.ksg_mi).

Times ``ksg_mi(method='tree')``, ``ksg_mi(method='brute')`` and, as the yardstick, a plain
brute force written here: the whole N x N max-norm distance matrices of x and y at once, the
(k+1)-th smallest joint distance per row, and the two marginal counts (what anyone would write
first; memory O(N^2)). The three alternate within each round, so a change in the machine's load
hits all of them; each prints its median and the estimates must agree.

Data: X ~ N(0, I_d), Y = 0.7 X + 0.7 N(0, I_d), d = joint dimensions / 2 each.

    python benchmarks/bench_ksg.py                                   # N = 5,000, 50 joint dims, k = 3
    python benchmarks/bench_ksg.py --threads 1 --clock cpu           # one idle core's time
    python benchmarks/bench_ksg.py --device cuda                     # brute force on the GPU
    python benchmarks/bench_ksg.py --crossover --threads 1 --clock cpu   # where the KD-tree loses
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np
import torch
from scipy.special import digamma

from infodrop.mi import ksg_mi
from infodrop.mi.ksg import _tree_loses

CLOCK = time.perf_counter


def plain_brute_force_ksg(x: np.ndarray, y: np.ndarray, k: int, device: torch.device) -> float:
    """KSG estimator 1 with the full N x N distance matrices (max-norm), standardised like ksg_mi."""
    x = torch.from_numpy(x / x.std(axis=0)).to(device)
    y = torch.from_numpy(y / y.std(axis=0)).to(device)
    d_x = torch.cdist(x, x, p=math.inf)
    d_y = torch.cdist(y, y, p=math.inf)
    eps = torch.topk(torch.maximum(d_x, d_y), k + 1, dim=1, largest=False).values[:, -1]
    below = torch.nextafter(eps, torch.zeros_like(eps))[:, None]
    n_x = ((d_x <= below).sum(1) - 1).cpu().numpy()
    n_y = ((d_y <= below).sum(1) - 1).cpu().numpy()
    n = len(x)
    return float(digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_y + 1)))


def _data(n: int, joint_dims: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = joint_dims // 2
    x = rng.standard_normal((n, d))
    return x, 0.7 * x + 0.7 * rng.standard_normal((n, joint_dims - d))


def _timed(function, device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = CLOCK()
    value = function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return CLOCK() - start, value


def compare(n: int, joint_dims: int, k: int, rounds: int, device: torch.device, methods: list[str]) -> None:
    x, y = _data(n, joint_dims)
    every = {
        "tree": ("tree (scipy KD-tree, CPU)", lambda: ksg_mi(x, y, k=k, method="tree")),
        "brute": (f"brute (blocked, {device.type})", lambda: ksg_mi(x, y, k=k, method="brute", device=device)),
        "plain": (f"plain brute force ({device.type})", lambda: plain_brute_force_ksg(x, y, k, device)),
    }
    runs = dict(every[method] for method in methods)
    for function in runs.values():  # warm-up (CUDA context, allocator, caches)
        if device.type == "cuda":
            function()
    times = {name: [] for name in runs}
    values = {}
    for _ in range(rounds):
        for name, function in runs.items():
            seconds, values[name] = _timed(function, device)
            times[name].append(seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"N={n} joint dims={joint_dims} k={k} rounds={rounds}")
    for name in runs:
        print(f"  {name:<30} {medians[name]:8.3f} s (median; range {min(times[name]):.3f}-{max(times[name]):.3f})"
              f"  estimate {values[name]:.9f}")
    named = {method: medians[every[method][0]] for method in methods}
    ratios = []
    if "tree" in named and "brute" in named:
        ratios.append(f"tree / brute = {named['tree'] / named['brute']:.2f}")
    if "plain" in named and "brute" in named:
        ratios.append(f"brute / plain = {named['brute'] / named['plain']:.2f}")
    spread = max(values.values()) - min(values.values())
    print(f"  {'   '.join(ratios)}   largest estimate difference {spread:.1e} nats")


def crossover(sizes: list[int], dims: list[int], k: int, device: torch.device) -> None:
    """tree / brute time ratio over a grid (one round each); > 1 where the tree loses."""
    print(f"{'N':>7} {'joint dims':>10} {'tree s':>8} {'brute s':>8} {'tree/brute':>10} {'auto picks':>10}")
    for n in sizes:
        for joint_dims in dims:
            x, y = _data(n, joint_dims)
            tree, _ = _timed(lambda: ksg_mi(x, y, k=k, method="tree"), device)
            brute, _ = _timed(lambda: ksg_mi(x, y, k=k, method="brute", device=device), device)
            pick = "brute" if _tree_loses(n, joint_dims) else "tree"
            print(f"{n:>7} {joint_dims:>10} {tree:>8.3f} {brute:>8.3f} {tree / brute:>10.2f} {pick:>10}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--joint-dims", type=int, default=50, help="d_x + d_y")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu = process CPU time (with --threads 1: one idle core's time); CPU device only")
    parser.add_argument("--methods", nargs="+", choices=("tree", "brute", "plain"), default=["tree", "brute", "plain"],
                        help="plain holds three N x N float64 matrices: leave it out for large N")
    parser.add_argument("--crossover", action="store_true", help="tree/brute ratio over a grid of N and dimensions")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 6, 8, 10, 12, 16, 20])
    args = parser.parse_args()
    global CLOCK
    device = torch.device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu measures host CPU time; use --clock wall on a GPU")
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device={device} threads={torch.get_num_threads()} clock={args.clock} torch={torch.__version__} "
          f"load-average(1 min)={load:.1f}")
    if args.crossover:
        crossover(args.sizes, args.dims, args.k, device)
    else:
        compare(args.n, args.joint_dims, args.k, args.rounds, device, args.methods)


if __name__ == "__main__":
    main()
