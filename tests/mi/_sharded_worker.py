"""Run under torchrun with 2 CPU processes (gloo): each rank estimates with distributed=True
and writes every field to rank<R>.json; rank 0 also writes the single-process result."""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from infodrop.mi import gaussian_dropout_mi

PROBLEMS = {
    # one zero pattern, labels from the first unit; N odd and above one noise block (512)
    "toy": lambda rng: (2 * rng.normal(size=(1101, 3)) + 0.5, None),
    # ReLU features: several zero patterns, three classes
    "relu": lambda rng: (np.maximum(rng.normal(size=(701, 3)) + 0.3, 0.0), rng.integers(0, 3, size=701)),
}


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank = dist.get_rank()
    results = {}
    for name, make in PROBLEMS.items():
        features, labels = make(np.random.default_rng(5))
        if labels is None:
            labels = (features[:, 0] > 0.5).astype(int)
        options = dict(labels=labels, noise_samples=3, seed=11, chunk_size=96, device="cpu")
        sharded = gaussian_dropout_mi(features, 0.2, distributed=True, **options)
        results[name] = {"sharded": sharded.to_dict()}
        if rank == 0:
            results[name]["single"] = gaussian_dropout_mi(features, 0.2, **options).to_dict()
    # The per-input terms are an array: written as a list, so they are compared like every field.
    (out / f"rank{rank}.json").write_text(json.dumps(results, default=lambda value: value.tolist()))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
