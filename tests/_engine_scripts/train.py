"""Train the tiny problem; run as a script (also under torchrun) by the engine tests.

    python train.py OUT_FOLDER [--epochs N] [--every K] [--kill-at-save S]

``--kill-at-save S`` makes the S-th checkpoint write SIGKILL this process half-way through
writing the temp file, as a crash or an OOM killer would.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_problem import TinyNet, make_data, sgd, step_lr  # noqa: E402

from infodrop.distributed import ddp_info  # noqa: E402
from infodrop.engine import Checkpointing, Reporting, Training, fit  # noqa: E402
from infodrop.runs import Run  # noqa: E402
from infodrop.seeding import set_seed  # noqa: E402


def main() -> None:
    faulthandler.dump_traceback_later(50, exit=True)  # a hung worker reports where, then exits
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--kill-at-save", type=int, default=0)
    args = parser.parse_args()

    if args.kill_at_save:
        # Checkpoints are serialised in memory, then written to a temp file with Path.write_bytes.
        real_write = Path.write_bytes
        calls = {"n": 0}

        def dying_write(target, data):
            if target.name.startswith(".checkpoint.pt.") and target.name.endswith(".tmp"):
                calls["n"] += 1
                if calls["n"] == args.kill_at_save:
                    data = bytes(data)
                    with open(target, "wb") as handle:
                        handle.write(data[: len(data) // 2])
                        handle.flush()
                        os.fsync(handle.fileno())
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_write(target, data)

        Path.write_bytes = dying_write

    set_seed(0)
    model = TinyNet()
    run = Run(args.out / "run", config={"width": 8})
    metrics = fit(
        model,
        make_data(256, seed=1),
        make_data(128, seed=2),
        Training(epochs=args.epochs, batch_size=32, make_optimizer=sgd, make_scheduler=step_lr),
        checkpointing=Checkpointing(path=args.out / "checkpoint.pt", every=args.every, config={"width": 8}),
        reporting=Reporting(run=run, progress=False),
        device="cpu",  # gloo processes, also on a machine with fewer GPUs than processes
    )
    rank = ddp_info()[0]
    # Every rank reports what it ended with, so the test can check the ranks agree.
    checksum = sum(float(tensor.double().sum()) for tensor in model.state_dict().values())
    (args.out / f"rank{rank}.json").write_text(json.dumps({"metrics": metrics, "checksum": checksum}))


if __name__ == "__main__":
    main()
