"""Time one training step (forward + backward + SGD step) of AllCNN32 with information dropout
against the same network with binary dropout, in the same process, on random CIFAR-sized data.

The information-dropout network computes an extra 3x3 convolution (the alpha branch) at each
stride-2 layer, the log-normal noise and the KL term; the ratio says what that costs.
``--information-modes`` times the information-dropout network once per way of computing the
noise, scale and KL (``separate``: the separate torch operations; ``fused``: the default fused
autograd step; ``compiled``: torch.compile of the step, compiled during the warm-up), all in
the same alternation with the binary network.

    python benchmarks/bench_train_step.py                      # batch 100, fp 1.0 and 0.25
    python benchmarks/bench_train_step.py --threads 1 --clock cpu   # steadier on a shared CPU
    python benchmarks/bench_train_step.py --steps 20 --device cuda
    python benchmarks/bench_train_step.py --information-modes separate fused compiled   # before/after the fusion
    INFODROP_MALLOC=default python benchmarks/bench_train_step.py   # glibc's default allocator settings
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from infodrop.checks import resolve_device
from infodrop.runtime import keep_freed_memory
from infodrop.models import AllCNN32
from infodrop.nn import InformationDropout, kl_divergence

INFORMATION_MODES = {"separate": (False, False), "fused": (True, False), "compiled": (False, True)}


def set_information_mode(model, mode):
    fused, compiled = INFORMATION_MODES[mode]
    for module in model.modules():
        if isinstance(module, InformationDropout):
            module.fused, module.compile = fused, compiled


def training_step(model, optimizer, images, labels, kl_weight):
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(images), labels) + kl_weight * kl_divergence(model)
    loss.backward()
    optimizer.step()
    return loss


def time_steps(model, optimizer, images, labels, kl_weight, steps, device, clock):
    """Per-step seconds of ``steps`` consecutive steps, by ``clock`` (perf_counter or process_time)."""
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = clock()
        training_step(model, optimizer, images, labels, kl_weight)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(clock() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model and round")
    parser.add_argument("--rounds", type=int, default=2, help="the two models alternate this many times")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--filter-percentages", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu = process CPU time, steadier on a shared machine (CPU device only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--information-modes", nargs="+", choices=tuple(INFORMATION_MODES), default=["fused"],
                        help="ways of computing information dropout's noise, scale and KL to time")
    args = parser.parse_args(argv)
    if args.batch_size < 2 or args.steps < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("need --batch-size >= 2 (batch norm), --steps >= 1, --rounds >= 1, --warmup >= 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu measures host CPU time; use --clock wall on a GPU")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    # As infodrop.engine.fit does; INFODROP_MALLOC=default measures glibc's own behaviour.
    tuned = keep_freed_memory()
    print(f"device={device} threads={torch.get_num_threads()} clock={args.clock} batch={args.batch_size} "
          f"steps={args.steps}x{args.rounds} warmup={args.warmup} torch={torch.__version__} freed-memory-kept={tuned}")

    # beta / N_train as in the original cifar.py (beta 3, 50,000 training images).
    kl_weight = 3.0 / 50_000
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.randn(args.batch_size, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (args.batch_size,), generator=generator).to(device)

    variants = [(f"information/{mode}" if len(args.information_modes) > 1 else "information", "information", mode)
                for mode in args.information_modes] + [("binary", "binary", None)]
    for filter_percentage in args.filter_percentages:
        runs = {}
        for name, dropout, mode in variants:
            torch.manual_seed(args.seed)
            model = AllCNN32(dropout=dropout, filter_percentage=filter_percentage).to(device).train()
            if mode is not None:
                set_information_mode(model, mode)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
            for _ in range(args.warmup):
                training_step(model, optimizer, images, labels, kl_weight)
            runs[name] = (model, optimizer, [])
        for _ in range(args.rounds):
            for name, (model, optimizer, times) in runs.items():
                times.extend(time_steps(model, optimizer, images, labels, kl_weight, args.steps, device, clock))
        medians = {name: 1000 * statistics.median(times) for name, (_, _, times) in runs.items()}
        for name, (_, _, times) in runs.items():
            spread = 1000 * (max(times) - min(times))
            print(f"filter_percentage={filter_percentage:g} dropout={name:<20} "
                  f"{medians[name]:9.1f} ms/step (median of {len(times)}, range {spread:.1f} ms)")
        for name, _, mode in variants[:-1]:
            print(f"filter_percentage={filter_percentage:g} {name}/binary = {medians[name] / medians['binary']:.3f}")


if __name__ == "__main__":
    main()
