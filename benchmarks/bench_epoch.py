"""Time a whole training epoch of All-CNN-32 against the bare training steps it contains, in the
same process, for the engine of this checkout (DataLoader, data on the device, compiled) and,
for a before/after comparison, the engine of another git revision.

Each variant runs in a fresh Python process that

1. times ``--steps`` consecutive training steps (forward, loss, backward, SGD step) on one batch
   already on the device, after ``--warmup`` untimed ones: the *steps-only* time of an epoch is
   that per-step time times the number of training batches;
2. trains ``--epochs`` epochs with ``infodrop.engine.fit`` (shuffled batches, the loss parts
   summed, the test set evaluated with the noise off): the *epoch* time is the time between the
   calls of an epoch hook, i.e. an epoch's training steps, evaluation and bookkeeping (the first
   epoch also includes fit's start: model and data to the device, compilation).

Both by the wall clock, or with ``--clock cpu`` (CPU device only) by the process's CPU time,
which on a shared machine is what one idle core would take.

Their ratio is what an epoch costs beyond its steps (batch assembly, copies, waits for the
device, evaluation). The data are synthetic CIFAR-shaped images (3 x 32 x 32, 10 classes); the
loss is the original's cross-entropy + beta * KL / N_train with beta = 3.

    python benchmarks/bench_epoch.py --threads 1 --filter-percentage 0.25 --train 2000 --test 500   # a small CPU run
    python benchmarks/bench_epoch.py --device cuda --baseline main --variants loader device compile  # the GPU figures
    python benchmarks/bench_epoch.py --json out.json ...                                              # also write the rows

Variants of this checkout: ``loader`` (data_on_device=False: the DataLoader), ``device``
(data_on_device=True), ``auto`` (the default rule), ``compile`` (data on the device and
compile=True), ``cudagraphs`` (compile='reduce-overhead'). ``--baseline REF`` adds the engine of
git revision REF (its ``src/`` exported to a temporary folder; REF must have the grouped
``fit(model, train, test, Training(...))`` API, i.e. be 713ff47 or later), with its defaults;
``--baseline-src DIR`` does the same with a ``src/`` folder exported beforehand (for a copy of the
repository without its ``.git``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "loader": {"data_on_device": False},
    "device": {"data_on_device": True},
    "auto": {},
    "compile": {"data_on_device": True, "compile": True},
    "cudagraphs": {"data_on_device": True, "compile": "reduce-overhead"},
}
KL_WEIGHT = 3.0 / 50_000  # beta / N_train of the original cifar.py


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter-percentage", type=float, default=1.0)
    parser.add_argument("--dropout", default="information", choices=("information", "gaussian", "binary", "none"))
    parser.add_argument("--train", type=int, default=50_000, help="training images (CIFAR-10: 50,000)")
    parser.add_argument("--test", type=int, default=10_000, help="test images (CIFAR-10: 10,000)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3, help="the first includes warm-up; the others give the median")
    parser.add_argument("--steps", type=int, default=20, help="timed steps for the steps-only time")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu = process CPU time, steadier on a shared machine (CPU device only)")
    parser.add_argument("--progress", action="store_true", help="show the engine's progress bar (on stderr, discarded)")
    parser.add_argument("--variants", nargs="+", default=["loader", "device"], choices=sorted(VARIANTS))
    parser.add_argument("--baseline", default=None, metavar="REF", help="also time the engine of this git revision")
    parser.add_argument("--baseline-src", type=Path, default=None, metavar="DIR",
                        help="also time the infodrop package in DIR (a src/ folder exported beforehand, e.g. "
                             "`git archive 713ff47 src | tar -x -C /tmp/before`: DIR=/tmp/before/src), for a copy without .git")
    parser.add_argument("--json", type=Path, default=None, help="write the rows to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # a variant's JSON options: run it here
    return parser


# --------------------------------------------------------------------------- one variant, in its own process


def _worker(args: argparse.Namespace, options: dict) -> dict:
    import dataclasses

    import torch
    import torch.nn.functional as F
    from torch.utils.data import TensorDataset

    from infodrop.checks import resolve_device
    from infodrop.engine import Reporting, Training, fit
    from infodrop.runtime import keep_freed_memory
    from infodrop.seeding import set_seed
    from infodrop.models import AllCNN32
    from infodrop.nn import kl_divergence

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as fit does, so that the steps-only time has the allocator setting of the epochs
    device = resolve_device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        raise SystemExit("--clock cpu measures host CPU time; use --clock wall on a GPU")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    fields = {field.name for field in dataclasses.fields(Training)}
    missing = [name for name in options if name not in fields]
    if missing:
        raise SystemExit(f"this engine's Training has no {missing}; drop that variant for this revision")

    def loss(model, logits, targets):
        cross_entropy = F.cross_entropy(logits, targets)
        kl = kl_divergence(model)
        return cross_entropy + KL_WEIGHT * kl, {"cross_entropy": cross_entropy.detach(), "kl": kl.detach()}

    def make_optimizer(model):
        return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def new_model():
        set_seed(0)
        return AllCNN32(dropout=args.dropout, filter_percentage=args.filter_percentage)

    generator = torch.Generator().manual_seed(1)
    train = TensorDataset(torch.randn(args.train, 3, 32, 32, generator=generator), torch.randint(0, 10, (args.train,), generator=generator))
    test = TensorDataset(torch.randn(args.test, 3, 32, 32, generator=generator), torch.randint(0, 10, (args.test,), generator=generator))

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # 1. Steps only: the same model, loss and optimiser; one batch already on the device.
    model = new_model().to(device).train()
    optimizer = make_optimizer(model)
    compiled = options.get("compile", False)
    net = torch.compile(model, mode=None if compiled is True else compiled) if compiled else model
    images = train.tensors[0][: args.batch_size].to(device)
    labels = train.tensors[1][: args.batch_size].to(device)

    def step():
        value, _ = loss(model, net(images), labels)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()

    started = clock()
    for _ in range(args.warmup):
        step()
    synchronize()
    warmup_seconds = clock() - started
    started = clock()
    for _ in range(args.steps):
        step()
    synchronize()
    per_step = (clock() - started) / args.steps
    del model, optimizer, net, images, labels

    # 2. Whole epochs through the engine.
    batches = args.train // args.batch_size  # drop_last=True
    marks = []

    def mark(epoch, model):  # the engine has synchronised: it has read the epoch's sums
        marks.append(clock())

    training = Training(epochs=args.epochs, batch_size=args.batch_size, make_optimizer=make_optimizer, loss=loss, seed=0, **options)
    model = new_model()
    marks.append(clock())
    fit(model, train, test, training, reporting=Reporting(epoch_hooks=[mark], progress=args.progress), device=device)
    seconds = [after - before for before, after in zip(marks, marks[1:])]
    rest = seconds[1:] or seconds
    epoch = statistics.median(rest)
    return {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "clock": args.clock,
        "torch": torch.__version__,
        "step_ms": 1000 * per_step,
        "warmup_s": warmup_seconds,
        "steps_only_s": per_step * batches,
        "first_epoch_s": seconds[0],
        "epoch_s": epoch,
        "epochs_s": seconds,
        "ratio": epoch / (per_step * batches),
    }


# --------------------------------------------------------------------------- the parent: one process per variant


def _export(ref: str, folder: Path) -> tuple[Path, str]:
    """``src/`` of git revision ``ref`` in ``folder``; returns its path and the short commit."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], capture_output=True, text=True)
    if commit.returncode != 0:
        raise SystemExit(f"--baseline {ref}: not a git revision of {REPO} ({commit.stderr.strip()})")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src", commit.stdout.strip()


def _run_variant(argv: list[str], src: Path, options: dict, threads: int | None) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--worker", json.dumps(options)]
    process = subprocess.run(command, env=env, capture_output=True, text=True)
    if process.returncode != 0:
        raise SystemExit(f"variant {options} failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.train < args.batch_size or args.batch_size < 2 or args.epochs < 1 or args.steps < 1 or args.test < 1:
        raise SystemExit("need --train >= --batch-size >= 2, --test >= 1, --epochs >= 1, --steps >= 1")
    if args.worker is not None:
        print(json.dumps(_worker(args, json.loads(args.worker))))
        return

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        plan = []
        if args.baseline is not None:
            src, commit = _export(args.baseline, Path(folder))
            plan.append((f"{args.baseline} ({commit})", src, {}))
        if args.baseline_src is not None:
            if not (args.baseline_src / "infodrop" / "engine.py").is_file():
                raise SystemExit(f"--baseline-src {args.baseline_src}: no infodrop/engine.py there; pass the exported src/ folder")
            plan.append((f"before ({args.baseline_src})", args.baseline_src.resolve(), {}))
        plan += [(name, REPO / "src", VARIANTS[name]) for name in args.variants]
        for name, src, options in plan:
            row = {"variant": name, **_run_variant(argv, src, options, args.threads)}
            rows.append(row)
            print(
                f"{name:<22} step {row['step_ms']:8.2f} ms  steps-only {row['steps_only_s']:8.2f} s  "
                f"epoch {row['epoch_s']:8.2f} s (first {row['first_epoch_s']:.2f})  epoch/steps {row['ratio']:5.2f}  "
                f"200 epochs {200 * row['epoch_s'] / 60:7.1f} min",
                flush=True,
            )
    head = rows[0]
    print(f"device={head['device']} clock={args.clock} threads={head['threads']} torch={head['torch']} filter_percentage={args.filter_percentage:g} "
          f"dropout={args.dropout} train={args.train} test={args.test} batch={args.batch_size} epochs={args.epochs} "
          f"progress={args.progress}")
    if args.json is not None:
        settings = {key: value for key, value in vars(args).items() if key not in ("json", "worker")}
        args.json.write_text(json.dumps({"settings": settings, "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
