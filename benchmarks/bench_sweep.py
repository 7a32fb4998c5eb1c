"""Throughput of a CIFAR sweep: its jobs one after the other against ``jobs_per_device`` at once.

Runs ``infodrop cifar train --multirun with beta=...`` (one job per beta value) twice in a
temporary folder of synthetic prepared CIFAR files: once with ``jobs_per_device=1`` (Hydra's
basic launcher, one process) and once with ``jobs_per_device=--jobs`` (the sweep pool, a process
per job). Prints the wall-clock time of each whole command, the throughput in trained images per
second, their ratio, and the mean epoch time of a job inside each (from its metrics.jsonl): the
price each job pays for sharing the device.

    python benchmarks/bench_sweep.py --threads 1 --filter-percentage 0.1 --train 500 --test 100 --epochs 2   # CPU, small
    python benchmarks/bench_sweep.py --device cuda --train 50000 --test 10000 --epochs 2                     # GPU

Each command includes what a user waits for: Python and torch starting (once in sequence, once
per job in the pool), data loading, training, testing and checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def write_data(folder: Path, train: int, test: int) -> None:
    """Prepared-format CIFAR files of random images (the format `infodrop cifar prepare` writes)."""
    sys.path.insert(0, str(REPO / "src"))
    from infodrop.io import save_npz

    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        images = rng.normal(size=(count, 3, 32, 32)).astype(np.float32)
        save_npz(folder / f"cifar10-{split}.npz", images=images, labels=rng.integers(0, 10, count))


def run_sweep(folder: Path, betas: list[str], jobs_per_device: int, args: argparse.Namespace) -> tuple[float, list[float]]:
    """Wall seconds of the sweep command and every job's epoch seconds."""
    shutil.rmtree(folder / "models", ignore_errors=True)
    shutil.rmtree(folder / "runs", ignore_errors=True)
    settings = [f"beta={','.join(betas)}", f"jobs_per_device={jobs_per_device}", f"epochs={args.epochs}",
                f"filter_percentage={args.filter_percentage}", f"batch_size={args.batch_size}", "progress=false",
                f"checkpoint_every={args.epochs}"]
    if args.device is not None:
        settings.append(f"device={args.device}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
    command = [sys.executable, "-m", "infodrop.cli", "cifar", "train", "--multirun", "with", *settings]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    epochs = []
    for metrics in (folder / "runs" / "cifar").glob("*/metrics.jsonl"):
        epochs += [json.loads(line)["seconds"] for line in metrics.read_text().splitlines() if "seconds" in line]
    if len(epochs) != len(betas) * args.epochs:
        raise SystemExit(f"expected {len(betas) * args.epochs} epoch lines, found {len(epochs)}")
    return seconds, epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="jobs in the sweep, and jobs_per_device of the pool")
    parser.add_argument("--train", type=int, default=50_000)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--filter-percentage", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--device", default=None, help="the jobs' device entry (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of every process")
    args = parser.parse_args()
    if args.jobs < 2 or args.epochs < 1 or args.train < args.batch_size or args.test < 1:
        parser.error("need --jobs >= 2, --epochs >= 1, --train >= --batch-size, --test >= 1")

    betas = [f"{3.0 * (index + 1):g}" for index in range(args.jobs)]
    images = args.jobs * args.epochs * (args.train // args.batch_size) * args.batch_size
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.jobs} jobs x {args.epochs} epochs, {args.train} training / {args.test} test images, "
          f"filter_percentage={args.filter_percentage:g}, batch {args.batch_size}, device={args.device or 'default'}, "
          f"threads={args.threads or 'default'}, load average {load:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_data(folder / "datasets", args.train, args.test)
        rows = {}
        for label, jobs_per_device in (("sequential", 1), (f"{args.jobs} at once", args.jobs)):
            seconds, epochs = run_sweep(folder, betas, jobs_per_device, args)
            rows[label] = seconds
            print(f"{label:<12} {seconds:8.1f} s  {images / seconds:9.1f} images/s  "
                  f"epoch of a job: median {statistics.median(epochs):.2f} s", flush=True)
    sequential, pooled = rows.values()
    print(f"throughput {args.jobs} at once / sequential = {sequential / pooled:.2f}")


if __name__ == "__main__":
    main()
