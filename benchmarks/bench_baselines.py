"""Time the baseline MI estimators of infodrop.mi at N = 10,000 samples, d = 10 dimensions.

    python benchmarks/bench_baselines.py [--n 10000] [--d 10] [--repeats 3] [--neural]

Data: X ~ N(0, I_d), Y = X + N(0, I_d), so I(X; Y) = (d/2) log 2 nats (3.47 at d = 10); labels are
10 classes of the first coordinate of Y. Each row is the best of ``--repeats`` wall-clock runs
(time.perf_counter). KSG is compared with scikit-learn's ``mutual_info_regression``, which runs
the same algorithm (KSG estimator 1) but only between ONE feature and a 1-D target; the
comparable rows are therefore the 1-D pair and the d separate per-feature MIs.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch
from sklearn.feature_selection import mutual_info_regression

from infodrop.mi import binning_mi, doe_mi, edge_mi, infonce_mi, ksg_mi, mine_mi


def best_time(function, repeats: int) -> tuple[float, object]:
    best, value = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--neural", action="store_true", help="also time DoE, MINE, InfoNCE (200 steps)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.d))
    y = x + rng.standard_normal((args.n, args.d))
    labels = np.digitize(y[:, 0], np.quantile(y[:, 0], np.linspace(0.1, 0.9, 9)))
    true_mi = 0.5 * args.d * math.log(2.0)

    rows: list[tuple[str, str, float, str]] = []

    def run(name: str, data: str, function, reference: str = "") -> float:
        seconds, value = best_time(function, args.repeats)
        value = np.sum(value) if isinstance(value, np.ndarray) else value
        rows.append((name, data, seconds, f"{float(value):8.3f}" + (f"  {reference}" if reference else "")))
        return seconds

    d = args.d
    run("binning_mi(bins=30)", f"{d}-D x, {d}-D y", lambda: binning_mi(x, y, bins=30), f"(true {true_mi:.3f})")
    run("binning_mi(bins=30)", f"{d}-D x, labels", lambda: binning_mi(x, labels, bins=30))
    run("ksg_mi(k=3)", f"{d}-D x, {d}-D y", lambda: ksg_mi(x, y), f"(true {true_mi:.3f})")
    run("ksg_mi(k=3, workers=-1)", f"{d}-D x, {d}-D y", lambda: ksg_mi(x, y, workers=-1), f"(true {true_mi:.3f})")
    run("ksg_mi(k=3)", f"{d}-D x, labels", lambda: ksg_mi(x, labels))
    ours_1d = run("ksg_mi(k=3)", "1-D x, 1-D y", lambda: ksg_mi(x[:, 0], y[:, 0]), f"(true {0.5 * math.log(2):.3f})")
    sk_1d = run(
        "sklearn mutual_info_regression",
        "1-D x, 1-D y",
        lambda: mutual_info_regression(x[:, :1], y[:, 0], n_neighbors=3, random_state=0),
    )
    ours_each = run(
        f"ksg_mi, {d} x 1-D",
        f"x_i vs y_0, i < {d}",
        lambda: np.array([ksg_mi(x[:, i], y[:, 0]) for i in range(d)]),
        "(sum)",
    )
    sk_each = run(
        "sklearn mutual_info_regression",
        f"x_i vs y_0, i < {d}",
        lambda: mutual_info_regression(x, y[:, 0], n_neighbors=3, random_state=0),
        "(sum; clipped at 0)",
    )
    run("edge_mi (T=10)", f"{d}-D x, {d}-D y", lambda: edge_mi(x, y), f"(true {true_mi:.3f})")
    run("edge_mi (T=10)", f"{d}-D x, labels", lambda: edge_mi(x, labels))
    run("edge_mi (T=10)", "1-D x, 1-D y", lambda: edge_mi(x[:, 0], y[:, 0]), f"(true {0.5 * math.log(2):.3f})")
    if args.neural:
        common = dict(steps=200, batch_size=128, hidden=64, device="cpu")
        run("doe_mi (200 steps)", f"{d}-D x, {d}-D y", lambda: doe_mi(x, y, **common), f"(true {true_mi:.3f})")
        run("mine_mi (200 steps)", f"{d}-D x, {d}-D y", lambda: mine_mi(x, y, **common), f"(true {true_mi:.3f})")
        run(
            "infonce_mi (200 steps, separable)",
            f"{d}-D x, {d}-D y",
            lambda: infonce_mi(x, y, critic="separable", **common),
            f"(true {true_mi:.3f}; cap log 128 = {math.log(128):.2f})",
        )

    print(f"N = {args.n}, d = {d}; best of {args.repeats}; torch threads {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'estimator':36s} {'data':22s} {'seconds':>9s}  estimate (nats)")
    for name, data, seconds, value in rows:
        print(f"{name:36s} {data:22s} {seconds:9.3f}  {value}")
    print(f"KSG 1-D: ours / sklearn time = {ours_1d / sk_1d:.2f}; per-feature: {ours_each / sk_each:.2f}")


if __name__ == "__main__":
    main()
