"""Coverage of the band [i_xz_lower, i_xz_upper] of gaussian_dropout_mi on the toy problem.

Toy problem (Adilova et al., ICLR 2023, Section 4): X ~ N(0, I_n), f(X) = 2X + 0.5, Z = f(X) D
with D ~ N(1, variance I_n), so I(X;Z) = n * I_1 with I_1 by quadrature
(infodrop.experiments.toy.toy_truth). For each cell (n, variance) and seed, N inputs are drawn
and the estimator runs with that seed; the table gives the truth, log N, the mean point
estimate and band edges over the seeds, how often the band contains the truth, how often the
estimate is flagged ``saturated``, and the mean sensitivity (nats of estimate per nat of truth).

    python scripts/band_coverage.py                      # n = 1 2 4 8, variances 0.1 0.25, N = 1000, 10 seeds
    python scripts/band_coverage.py --csv docs/band_coverage.csv

Prints a markdown table; writes the per-run rows to the CSV (atomically).
"""

from __future__ import annotations

import argparse
import csv
import io
import time

import numpy as np
import torch

from infodrop.experiments.toy import toy_truth
from infodrop.io import write_text
from infodrop.mi import gaussian_dropout_mi
from infodrop.mi.band import xz_band
from infodrop.mi.mixture import mixture_pass, prepare_components

COLUMNS = [
    "n_units", "variance", "seed", "n_samples", "truth", "log_n", "i_xz", "i_xz_lower", "i_xz_upper",
    "covered", "saturated", "i_xz_sensitivity", "lower_estimate", "lower_stderr", "upper_estimate", "upper_stderr",
]


def run(units: list[int], variances: list[float], n_samples: int, seeds: int, noise_samples: int) -> list[dict]:
    rows = []
    for variance in variances:
        per_unit = toy_truth(variance).i_xz
        for n_units in units:
            for seed in range(seeds):
                # An input stream per (n, seed) that does not depend on the variance or the other cells.
                x = np.random.default_rng([seed, n_units, n_samples]).standard_normal((n_samples, n_units))
                result = gaussian_dropout_mi(
                    2.0 * x + 0.5, variance, noise_samples=noise_samples, seed=seed, bounds=False, device="cpu"
                )
                truth = n_units * per_unit
                # The estimates and standard errors behind the band edges (same noise, same numbers).
                band = xz_band(mixture_pass(prepare_components(torch.from_numpy(2.0 * x + 0.5), variance),
                                            noise_samples, seed), n_samples, noise_samples)
                assert abs(band.lower - result.i_xz_lower) <= 1e-9 * max(1.0, abs(band.lower))
                rows.append(dict(
                    n_units=n_units, variance=variance, seed=seed, n_samples=n_samples, truth=truth,
                    log_n=result.log_n, i_xz=result.i_xz, i_xz_lower=result.i_xz_lower,
                    i_xz_upper=result.i_xz_upper, covered=result.i_xz_lower <= truth <= result.i_xz_upper,
                    saturated=result.saturated, i_xz_sensitivity=result.i_xz_sensitivity,
                    lower_estimate=band.lower_estimate, lower_stderr=band.lower_stderr,
                    upper_estimate=band.upper_estimate, upper_stderr=band.upper_stderr,
                ))
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| n | variance | truth | log N | mean i_xz | mean lower | mean upper | band contains truth | saturated | mean sensitivity |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    cells = sorted({(r["variance"], r["n_units"]) for r in rows})
    for variance, n_units in cells:
        cell = [r for r in rows if r["variance"] == variance and r["n_units"] == n_units]
        count = len(cell)
        covered = sum(r["covered"] for r in cell)
        saturated = sum(r["saturated"] for r in cell)
        mean = lambda key: float(np.mean([r[key] for r in cell]))  # noqa: E731
        lines.append(
            f"| {n_units} | {variance:g} | {cell[0]['truth']:.3f} | {cell[0]['log_n']:.3f} | {mean('i_xz'):.3f} | "
            f"{mean('i_xz_lower'):.3f} | {mean('i_xz_upper'):.3f} | {covered}/{count} | "
            f"{saturated}/{count} | {mean('i_xz_sensitivity'):.3f} |"
        )
    lines += [
        "",
        "Standard errors: spread of the estimates over the seeds (independent inputs and noise) against the",
        "mean reported standard error.",
        "",
        "| n | variance | sd of lower estimate | mean SE (lower) | sd of upper estimate | mean SE (upper) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variance, n_units in cells:
        cell = [r for r in rows if r["variance"] == variance and r["n_units"] == n_units]
        if len(cell) < 2:
            continue
        sd = lambda key: float(np.std([r[key] for r in cell], ddof=1))  # noqa: E731
        mean = lambda key: float(np.mean([r[key] for r in cell]))  # noqa: E731
        lines.append(
            f"| {n_units} | {variance:g} | {sd('lower_estimate'):.4f} | {mean('lower_stderr'):.4f} | "
            f"{sd('upper_estimate'):.4f} | {mean('upper_stderr'):.4f} |"
        )
    total = len(rows)
    covered = sum(r["covered"] for r in rows)
    lines.append("")
    lines.append(f"All cells: the band contains the truth in {covered} of {total} runs ({covered / total:.1%}); stated >= 95.4 %.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Coverage of the i_xz band on the toy problem.")
    parser.add_argument("--units", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--variances", type=float, nargs="+", default=[0.1, 0.25])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--noise-samples", type=int, default=10)
    parser.add_argument("--csv", default="band_coverage.csv", help="per-run rows (default: band_coverage.csv)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for name in ("n_samples", "seeds", "noise_samples", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = run(args.units, args.variances, args.n_samples, args.seeds, args.noise_samples)
    elapsed = time.perf_counter() - start
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text(args.csv, buffer.getvalue())
    print(table(rows))
    print(f"\nN = {args.n_samples}, S = {args.noise_samples}, {args.seeds} seeds per cell; "
          f"{elapsed:.1f} s wall with {args.threads} thread(s); rows in {args.csv}")


if __name__ == "__main__":
    main()
