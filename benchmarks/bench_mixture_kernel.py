"""The fused Triton kernel of the mixture's h(Z) pass against the torch path, same run.

For N inputs, d units, S noise samples (M = N*S samples of Z against all N components) times
``infodrop.mi.mixture.mixture_pass`` with

* backend='torch', float64 (the default estimator) and float32: the tiled path (before);
* backend='triton', float32 IEEE, for each kernel configuration of ``--configs`` (after), and
  optionally the 'tf32x3' dot and the float64 kernel;

and reports seconds (scaled to all M rows when timed on a fraction), pairs per second, the
largest per-row difference of -log p_N(z) from the float64 torch path on the timed rows and,
when all rows are scored, h(Z) from both with its Monte Carlo standard error.

    python benchmarks/bench_mixture_kernel.py --n 50000 --d 32 --device cuda
    python benchmarks/bench_mixture_kernel.py --n 1000000 --d 32 --device cuda --row-fraction 0.01
    TRITON_INTERPRET=1 python benchmarks/bench_mixture_kernel.py --n 300 --d 4 --device cpu   # checks the script
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from infodrop.mi.mixture import controlled_mean, mixture_pass, prepare_components
from infodrop.mi.triton_mixture import KernelConfig, default_config, triton_status


def parse_config(text: str) -> KernelConfig:
    """'64,64,32,4' -> block_m, block_n, block_k, num_warps (optional 5th: num_stages)."""
    values = [int(v) for v in text.split(",")]
    if len(values) not in (4, 5):
        raise argparse.ArgumentTypeError(f"a config is block_m,block_n,block_k,num_warps[,num_stages], got {text!r}")
    return KernelConfig(*values)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(comp, s, inputs, device, dtype, backend, chunk_rows, labels=None, kernel_options=None):
    _sync(device)
    start = time.perf_counter()
    result = mixture_pass(comp, s, seed=0, chunk_rows=chunk_rows, labels=labels, leave_one_out=True,
                          dtype=dtype, inputs=inputs, backend=backend, kernel_options=kernel_options)
    _sync(device)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--noise-samples", type=int, default=10)
    parser.add_argument("--variance", type=float, default=0.1)
    parser.add_argument("--classes", type=int, default=10, help="labels for the class sums of I(Z;Y) (0: none)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--row-fraction", type=float, default=1.0, help="time on this fraction of the inputs' samples and scale")
    parser.add_argument("--torch-row-fraction", type=float, default=None, help="a smaller fraction for the torch path")
    parser.add_argument("--chunk-rows", type=int, nargs="+", default=[4096], help="rows of Z per chunk (kernel)")
    parser.add_argument("--configs", type=parse_config, nargs="*", default=None,
                        help="kernel configs block_m,block_n,block_k,num_warps; default: the library's default")
    parser.add_argument("--tf32x3", action="store_true", help="also time the 3xTF32 dot (float32 kernel)")
    parser.add_argument("--float64-kernel", action="store_true", help="also time the float64 kernel")
    parser.add_argument("--skip-torch64", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    device = torch.device(args.device)
    available, reason = triton_status(device)
    n, d, s = args.n, args.d, args.noise_samples
    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}) "
          f"torch={torch.__version__} N={n} d={d} S={s} variance={args.variance} classes={args.classes} "
          f"triton: {'available' if available else reason}")
    rng = np.random.default_rng(0)
    features = np.log1p(np.exp(rng.normal(size=(n, d)))) * np.exp(rng.normal(scale=0.5, size=(1, d)))
    comp = prepare_components(torch.tensor(features, device=device), args.variance)
    labels = torch.as_tensor(rng.integers(0, args.classes, n), device=device) if args.classes else None
    pairs = n * s * n

    def inputs_for(fraction):
        count = max(1, int(round(n * fraction)))
        return (0, count), n / count

    rows = {}

    def timed(name, dtype, backend, fraction, chunk_rows, config=None, precision="ieee"):
        inputs, scale = inputs_for(fraction)
        options = {"config": config, "precision": precision} if backend == "triton" else None
        if backend == "triton":  # the first call compiles the kernel: not timed
            run(comp, s, (0, 1), device, dtype, backend, chunk_rows, labels, options)
        best, result = math.inf, None
        for _ in range(args.repeats):
            seconds, result = run(comp, s, inputs, device, dtype, backend, chunk_rows, labels, options)
            best = min(best, seconds)
        total = best * scale
        rows[name] = (total, result, inputs)
        note = f" (timed on {inputs[1]} of {n} inputs, x{scale:.0f})" if scale > 1 else ""
        print(f"  {name:<44} {total:9.3f} s  {pairs / total / 1e9:8.2f} Gpair/s{note}", flush=True)

    torch_fraction = args.torch_row_fraction or args.row_fraction
    print("before: the tiled torch path")
    if not args.skip_torch64:
        timed("torch float64", torch.float64, "torch", torch_fraction, None)
    timed("torch float32", torch.float32, "torch", torch_fraction, None)
    if available:
        print("after: the fused Triton kernel")
        configs = args.configs or [default_config(2 * d, torch.float32)]
        for chunk_rows in args.chunk_rows:
            for config in configs:
                timed(f"triton float32 ieee {config.block_m}x{config.block_n}x{config.block_k} "
                      f"w{config.num_warps} chunk {chunk_rows}", torch.float32, "triton", args.row_fraction,
                      chunk_rows, config)
        if args.tf32x3:
            timed(f"triton float32 tf32x3 chunk {args.chunk_rows[0]}", torch.float32, "triton", args.row_fraction,
                  args.chunk_rows[0], configs[0], "tf32x3")
        if args.float64_kernel:
            timed(f"triton float64 chunk {args.chunk_rows[0]}", torch.float64, "triton", args.row_fraction,
                  args.chunk_rows[0], default_config(2 * d, torch.float64))

    reference_name = "torch float64" if "torch float64" in rows else "torch float32"
    _, reference, ref_inputs = rows[reference_name]
    print(f"agreement with {reference_name} on the rows both scored:")
    for name, (_, result, inputs) in rows.items():
        if name == reference_name:
            continue
        common = min(inputs[1], ref_inputs[1]) * s
        line = f"  {name:<44}"
        # (Not neg_log_class_loo: where a class sum lies far below the row's largest term the torch
        # path returns its exp floor, the kernel the sum; tests/mi/test_triton_kernel.py checks
        # it against the direct float64 sum.)
        for field in ("neg_log_p", "neg_log_loo", "neg_log_class"):
            ours, theirs = getattr(result, field), getattr(reference, field)
            if ours is None:
                continue
            diff = (ours[:common] - theirs[:common]).abs()
            diff = diff[torch.isfinite(diff)]
            line += f"  max|d {field}| {float(diff.max()):.1e}"
        if inputs == ref_inputs == (0, n):
            h_ours = controlled_mean(result.neg_log_p, result.neg_log_self, comp.entropy, s)
            h_ref = controlled_mean(reference.neg_log_p, reference.neg_log_self, comp.entropy, s)
            line += f"  |d h(Z)| {abs(h_ours.value - h_ref.value):.1e} nats (MC stderr {h_ref.stderr_mc:.1e})"
        print(line)


if __name__ == "__main__":
    main()
