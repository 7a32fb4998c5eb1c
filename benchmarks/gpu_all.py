"""Every GPU figure of issue 12 in one call of a few minutes (before and after, same device).

    python benchmarks/gpu_all.py --out results/             # on a CUDA machine: all sections
    python benchmarks/gpu_all.py --only mixture ksg          # some sections
    python benchmarks/gpu_all.py --full-million              # also the complete N = 10^6 kernel pass
    python benchmarks/gpu_all.py --tiny                      # tiny sizes: checks this script anywhere;
                                                             # without CUDA the Triton kernel runs
                                                             # interpreted and figures mean nothing

Sections, each a subprocess with its own time limit (a failing one is reported, the rest go on);
everything printed is also written to ``--out``/gpu_all.txt:

  env            GPU, driver, torch, triton
  tests          the CUDA tests of the kernel, KSG, the estimator and the fused dropout step
                 (tests/mi/test_triton_kernel.py also compiles and checks every kernel variant)
  mixture        h(Z) pass, N = 50,000, d = 32, S = 10, 10 classes: torch float64/float32
                 (before) against the Triton kernel (after): tile configurations, chunk sizes,
                 3xTF32, float64 kernel; agreement of h(Z) with float64 within the MC error
  mixture_1e6    N = 10^6, d = 32, S = 10: kernel on 1% of the samples, torch on 0.1%, scaled
                 (``--full-million``: the complete kernel pass, about a minute or two)
  ksg            N = 5,000, 50 joint dims, k = 3: KD-tree (CPU) vs blocked brute force on CUDA
                 vs plain brute force on CUDA; N = 50,000 brute force on CUDA alone
  info_step      information dropout's noise/scale/KL step: separate ops, fused, compiled
  train_step     All-CNN-32 step, batch 100: information (separate, fused, compiled) / binary,
                 filter_percentage 1.0 and 0.25, alternating
  epoch_time     steps-only time and whole epochs of All-CNN-32 (bench_epoch.py), against the
                 engine before issue 12
  sweep          4 concurrent vs 4 sequential CIFAR jobs on one device (bench_sweep.py)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

# Filled in by the branches that add these benchmarks: a list of argv lists, run like SECTIONS.
def hooks(tiny: bool, device: str) -> dict[str, list[list[str]]]:
    """The epoch-time and sweep sections (benchmarks/bench_epoch.py, bench_sweep.py). The epoch
    baseline is the engine before issue 12 (713ff47): from git where the copy has it, else from a
    folder exported beforehand with `git archive 713ff47 src | tar -x -C benchmarks/_before`."""
    before = Path("benchmarks/_before/src")
    baseline = ["--baseline-src", str(before)] if before.is_dir() else ["--baseline", "713ff47"] if Path(".git").exists() else []
    if tiny:
        return {
            "epoch_time": [[PY, "benchmarks/bench_epoch.py", "--device", device, "--filter-percentage", "0.05",
                            "--train", "200", "--test", "50", "--epochs", "2", "--steps", "2", "--warmup", "1",
                            "--variants", "loader", "device"]],
            "sweep": [[PY, "benchmarks/bench_sweep.py", "--device", device, "--jobs", "2", "--train", "100",
                       "--test", "20", "--epochs", "1", "--filter-percentage", "0.05"]],
        }
    return {
        "epoch_time": [[PY, "benchmarks/bench_epoch.py", "--device", device, *baseline, "--progress",
                        "--variants", "loader", "device", "compile", "cudagraphs", "--epochs", "3"]],
        "sweep": [[PY, "benchmarks/bench_sweep.py", "--device", device, "--train", "50000", "--test", "10000",
                   "--epochs", "2"]],
    }


def sections(tiny: bool, cuda: bool, full_million: bool) -> dict[str, tuple[list[list[str]], int]]:
    """name -> (commands, time limit in seconds for the section)."""
    device = "cuda" if cuda else "cpu"
    if tiny:
        mixture = [[PY, "benchmarks/bench_mixture_kernel.py", "--n", "120", "--d", "4", "--device", device,
                    "--repeats", "1", "--chunk-rows", "600", "--configs", "32,32,16,4", "--tf32x3", "--float64-kernel"]]
        million = [[PY, "benchmarks/bench_mixture_kernel.py", "--n", "400", "--d", "4", "--device", device,
                    "--repeats", "1", "--row-fraction", "0.05", "--torch-row-fraction", "0.01", "--skip-torch64",
                    "--classes", "0"]]
        ksg = [[PY, "benchmarks/bench_ksg.py", "--n", "400", "--joint-dims", "20", "--rounds", "1", "--device", device],
               [PY, "benchmarks/bench_ksg.py", "--n", "800", "--joint-dims", "20", "--rounds", "1", "--device", device,
                "--methods", "brute"]]
        info = [[PY, "benchmarks/bench_information_step.py", "--batch-size", "4", "--repeats", "2", "--rounds", "1",
                 "--device", device]]
        train = [[PY, "benchmarks/bench_train_step.py", "--batch-size", "4", "--steps", "1", "--rounds", "1",
                  "--warmup", "1", "--filter-percentages", "0.25", "--device", device,
                  "--information-modes", "separate", "fused", "compiled"]]
        tests = [[PY, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", "tests/mi/test_triton_kernel.py",
                  "-k", "float64 or minus_infinity"]]
    else:
        configs = ["64,64,32,4", "64,64,16,4", "128,64,32,8", "64,128,32,8", "64,64,64,4"]
        mixture = [[PY, "benchmarks/bench_mixture_kernel.py", "--n", "50000", "--d", "32", "--device", device,
                    "--chunk-rows", "4096", "32768", "--configs", *configs, "--tf32x3", "--float64-kernel"]]
        million = [[PY, "benchmarks/bench_mixture_kernel.py", "--n", "1000000", "--d", "32", "--device", device,
                    "--row-fraction", "1.0" if full_million else "0.01", "--torch-row-fraction", "0.001",
                    "--skip-torch64", "--classes", "0", "--repeats", "1", "--chunk-rows", "32768"]]
        ksg = [[PY, "benchmarks/bench_ksg.py", "--n", "5000", "--joint-dims", "50", "--rounds", "3", "--device", device],
               [PY, "benchmarks/bench_ksg.py", "--n", "50000", "--joint-dims", "50", "--rounds", "2", "--device", device,
                "--methods", "brute"]]
        info = [[PY, "benchmarks/bench_information_step.py", "--repeats", "20", "--rounds", "3", "--device", device]]
        train = [[PY, "benchmarks/bench_train_step.py", "--steps", "20", "--rounds", "3", "--device", device,
                  "--information-modes", "separate", "fused", "compiled"]]
        tests = [[PY, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", "tests/mi/test_triton_kernel.py",
                  "tests/mi/test_ksg.py", "tests/mi/test_dropout_numerics.py", "tests/nn/test_information_fused.py"]]
    env = [[PY, "-c", "import torch, platform; print('python', platform.python_version(), 'torch', torch.__version__, "
                      "'cuda', torch.version.cuda); print('device', torch.cuda.get_device_name() if torch.cuda.is_available() "
                      "else 'no CUDA');\ntry:\n import triton; print('triton', triton.__version__)\n"
                      "except ImportError: print('triton not installed')"]]
    if cuda:
        env.append(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv"])
    return {
        "env": (env, 60),
        "tests": (tests, 420),
        "mixture": (mixture, 420),
        "mixture_1e6": (million, 600 if full_million else 300),
        "ksg": (ksg, 300),
        "info_step": (info, 300),
        "train_step": (train, 420),
        "epoch_time": (hooks(tiny, device)["epoch_time"], 600),
        "sweep": (hooks(tiny, device)["sweep"], 900),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=None, help="section names (default: all)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the script, measures nothing")
    parser.add_argument("--full-million", action="store_true", help="the whole N = 10^6 kernel pass")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_all.txt (default: print only)")
    args = parser.parse_args()

    import torch  # only to ask for CUDA; each section imports what it needs in its own process

    cuda = torch.cuda.is_available()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), str(REPO), env.get("PYTHONPATH")]))
    if not cuda:
        # The kernel can only run interpreted here, and triton reads this at import.
        env["TRITON_INTERPRET"] = "1"
        if not args.tiny:
            print("note: no CUDA here; the figures below are CPU figures (use --tiny to check the script)")
    plan = sections(args.tiny, cuda, args.full_million)
    chosen = args.only or list(plan)
    unknown = [name for name in chosen if name not in plan]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {list(plan)}")
    log = None
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        log = open(args.out / "gpu_all.txt", "a", encoding="utf-8")

    def say(text: str) -> None:
        print(text, flush=True)
        if log is not None:
            log.write(text + "\n")
            log.flush()

    say(f"== gpu_all.py {time.strftime('%Y-%m-%d %H:%M:%S')} tiny={args.tiny} cuda={cuda} sections={chosen}")
    failed = []
    started = time.perf_counter()
    for name in chosen:
        commands, limit = plan[name]
        say(f"\n== {name}")
        deadline = time.perf_counter() + limit
        for command in commands:
            say("$ " + " ".join(command).replace(PY, "python"))
            section_start = time.perf_counter()
            try:
                done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                      timeout=max(1.0, deadline - time.perf_counter()))
            except subprocess.TimeoutExpired as error:
                out = (error.stdout or b"")
                say((out.decode() if isinstance(out, bytes) else out).rstrip())
                say(f"!! {name}: stopped after its {limit} s limit")
                failed.append(name)
                break
            lines = [line for line in (done.stdout + done.stderr).splitlines()
                     if "Warning" not in line and "warnings.warn" not in line and "warn_once" not in line]
            say("\n".join(lines).rstrip())
            say(f"({time.perf_counter() - section_start:.1f} s, exit {done.returncode})")
            if done.returncode != 0:
                failed.append(name)
    say(f"\n== done in {time.perf_counter() - started:.0f} s; failed sections: {failed or 'none'}")
    if log is not None:
        log.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
