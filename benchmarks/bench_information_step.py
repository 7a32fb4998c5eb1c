"""Information dropout's noise, scale and KL alone, forward and backward, at All-CNN-32's shapes.

The layer's own step (after its two convolutions): alpha = 0.001 + 0.7 sigmoid(g), z = f exp(alpha
eps), the log-uniform KL summed per sample and over channels, then the backward of
sum(w * z) + mean(KL). Three ways, alternating within each round so that load changes hit all:

* separate: the separate torch operations (autograd records each);
* fused: infodrop.nn.information_fused.InformationDropoutFunction (the layer's default);
* compiled: torch.compile of the same composite (compiled before timing; ``--no-compile`` skips it).

Shapes: batch x 96 x 16 x 16 and batch x 192 x 8 x 8, All-CNN-32's two information-dropout layers
at filter_percentage 1.0 (``--filter-percentage`` scales the channels).

    python benchmarks/bench_information_step.py --threads 1 --clock cpu
    python benchmarks/bench_information_step.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from infodrop.runtime import keep_freed_memory
from infodrop.nn.information_fused import composite_step, information_dropout_step

CLOCK = time.perf_counter


def separate(features, logits, generator):
    eps = torch.randn(features.shape, generator=generator, dtype=features.dtype, device=features.device)
    output, kl, _, _ = composite_step(features, logits, eps, 0.7, 1.0, None, None)
    return output, kl


def fused(features, logits, generator, compiled=False):
    step = information_dropout_step(features, logits, max_alpha=0.7, generator=generator, compiled=compiled)
    return step.output, step.kl


def one_step(method, features, logits, weights, generator):
    output, kl = method(features, logits, generator)
    ((weights * output).sum() + kl.mean()).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--filter-percentage", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per method and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = {"separate": separate, "fused": fused}
    if not args.no_compile:
        methods["compiled"] = lambda f, g, gen: fused(f, g, gen, compiled=True)
    # As infodrop.engine.fit and bench_train_step.py do (INFODROP_MALLOC=default: glibc's settings).
    tuned = keep_freed_memory()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device={device} threads={torch.get_num_threads()} clock={args.clock} batch={args.batch_size} "
          f"repeats={args.repeats}x{args.rounds} torch={torch.__version__} load-average(1 min)={load:.1f} "
          f"freed-memory-kept={tuned}")
    generator = torch.Generator(device=device).manual_seed(0)
    shapes = [(args.batch_size, int(96 * args.filter_percentage), 16, 16),
              (args.batch_size, int(192 * args.filter_percentage), 8, 8)]
    tensors = []
    for shape in shapes:
        features = torch.randn(shape, generator=generator, device=device).relu_().requires_grad_()
        logits = torch.randn(shape, generator=generator, device=device).requires_grad_()
        tensors.append((features, logits, torch.randn(shape, generator=generator, device=device)))
    times = {name: [] for name in methods}
    for name, method in methods.items():  # warm-up (and compilation)
        start = time.perf_counter()
        for features, logits, weights in tensors:
            one_step(method, features, logits, weights, generator)
        print(f"warm-up {name}: {time.perf_counter() - start:.1f} s")
    for _ in range(args.rounds):
        for name, method in methods.items():
            for _ in range(args.repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = CLOCK()
                for features, logits, weights in tensors:
                    features.grad = logits.grad = None
                    one_step(method, features, logits, weights, generator)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times[name].append(CLOCK() - start)
    medians = {name: 1000 * statistics.median(t) for name, t in times.items()}
    for name in methods:
        print(f"{name:<9} {medians[name]:8.2f} ms per step of both layers (median of {len(times[name])}; "
              f"range {1000 * min(times[name]):.2f}-{1000 * max(times[name]):.2f})")
    for name in methods:
        if name != "separate":
            print(f"{name} / separate = {medians[name] / medians['separate']:.2f}")


if __name__ == "__main__":
    main()
