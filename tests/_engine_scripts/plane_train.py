"""Train a small Gaussian-dropout network with the information-plane tracker as an epoch hook;
run as a script (also under torchrun) by tests/test_plane_distributed.py.

    python plane_train.py OUT_FOLDER [--epochs N]

Under torchrun the process group is held for the whole script (as the command line does), so the
tracker shares its estimate over the ranks from the initial record on. Rank 0 then records the
final model once more in this process alone (``distributed=False``) into ``single.json``, the
reference the shared records must equal.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_problem import make_data  # noqa: E402

from infodrop.distributed import ddp_info, process_group  # noqa: E402
from infodrop.engine import Reporting, Training, fit  # noqa: E402
from infodrop.seeding import set_seed  # noqa: E402
from infodrop.nn import GaussianDropout  # noqa: E402
from infodrop.plane import InformationPlane  # noqa: E402


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.Softplus())
        self.drop = GaussianDropout(0.5)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.body(x)))


def main() -> None:
    faulthandler.dump_traceback_later(100, exit=True)  # a hung worker reports where, then exits
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    train, test = make_data(256, seed=1), make_data(128, seed=2)
    with process_group(cuda=False):
        set_seed(0)
        model = Net()
        options = dict(estimators=("auto",), noise_samples=3, subsets=(2,), subset_draws=2, device="cpu")
        plane = InformationPlane(model, train, test, output=args.out / "plane.json", **options)
        plane.record(0)  # every rank: the estimate is shared
        fit(model, train, test, Training(epochs=args.epochs, batch_size=32,
                                         make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1)),
            reporting=Reporting(epoch_hooks=(plane.as_hook(every=1),), progress=False), device="cpu")
        rank, _, world = ddp_info()
        (args.out / f"rank{rank}.json").write_text(json.dumps({"distributed": plane.distributed, "world": world,
                                                                "records": plane.document().to_json()["records"]}))
        if rank == 0:
            single = InformationPlane(model, train, test, output=args.out / "single.json", distributed=False, **options)
            single.record(args.epochs)


if __name__ == "__main__":
    main()
