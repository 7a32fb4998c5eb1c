"""Entry groups that several experiments' ``Config`` share, each written once.

A ``Config`` is a dataclass built from these groups and its own entries::

    @dataclass
    class Config(*in_order(AllCNNNetwork, StepSGD, Subsets, Machine, RunFiles)):
        plot_images: int = entry(...)                                  # own entries come last
        beta: float = new_default(AllCNNNetwork, "beta", 0.5)          # a group entry, another default

The order of the fields matters: run names list the changed entries in field order
(:mod:`infodrop.experiments.naming`), so each experiment lists its groups such that the entries
that enter the run name keep the order of the files it wrote before (tests/experiments/test_run_names.py).
A group's entry given another default by :func:`new_default` keeps the group's place, help and
run-name rule.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, List, Optional

from infodrop.experiments.config import entry

__all__ = [
    "AllCNNNetwork",
    "CosineSGD",
    "Machine",
    "Plane",
    "RunFiles",
    "StepSGD",
    "Subsets",
    "UnitSubsetPlane",
    "in_order",
    "new_default",
]


def in_order(*groups: type) -> tuple[type, ...]:
    """The bases of a ``Config`` whose fields are the groups' entries in the order given.

    A dataclass takes the fields of its bases last base first (then its own); this lets a
    ``Config`` list its groups in reading order."""
    return tuple(reversed(groups))


def new_default(group: type, name: str, default: Any) -> Any:
    """The entry ``name`` of ``group`` with another default; its help and run-name rule are kept.

    Declared in a ``Config`` body, the field keeps the group's place in the field order."""
    specs = {spec.name: spec for spec in dataclasses.fields(group)}
    if name not in specs:
        raise ValueError(f"{group.__name__} has no entry {name!r}; use one of: {', '.join(specs)}")
    metadata = specs[name].metadata
    return entry(default, metadata["help"], in_run_name=metadata["in_run_name"], added=metadata["added"])


@dataclass
class Machine:
    """Where and how a run trains: the device, progress bars, compilation, jobs per device."""

    device: Optional[str] = entry(None, "cpu, cuda, cuda:N; null = cuda when available", in_run_name=False)
    progress: Optional[bool] = entry(None, "progress bars: null = only when stderr is a terminal (not in a log file); true or false to force", in_run_name=False)
    compile: bool = entry(False, "torch.compile the network for training (opt-in; pays on GPUs, not on CPUs, see benchmarks/README.md)", in_run_name=False)
    jobs_per_device: int = entry(1, "--multirun: jobs trained at once on the device, each in a process of its own (1 = one after the other)", in_run_name=False)


@dataclass
class RunFiles:
    """Where a run's files go (relative to the working directory) and how often its checkpoint is saved."""

    checkpoint_every: int = entry(10, "save the checkpoint every this many epochs", in_run_name=False)
    models_dir: str = entry("models", "folder of the checkpoints, models/<experiment>/<run name>.pt", in_run_name=False)
    runs_dir: str = entry("runs", "folder of the run records and plane files, runs/<experiment>/<run name>/", in_run_name=False)
    plots_dir: str = entry("plots", "folder of the figures, plots/<experiment>/<run name>/", in_run_name=False)


@dataclass
class Subsets:
    """Training and evaluation on the first N images of each split."""

    train_subset: int = entry(0, "train on the first N training images only (0 = all)")
    test_subset: int = entry(0, "evaluate on the first N test images only (0 = all)")


@dataclass
class AllCNNNetwork:
    """The All-CNN networks of the TPAMI 2018 experiments (cifar, cluttered); defaults are cifar's."""

    dropout: str = entry("information", "dropout kind after each stride-2 conv: information | binary | gaussian | none")
    activations: str = entry("relu", "activation of every conv: relu | softplus")
    lognorm_prior: bool = entry(False, "log-normal prior on the activations (needs softplus); else log-uniform")
    beta: float = entry(3.0, "weight of the KL term, beta >= 0 (the information bottleneck's Lagrange multiplier)")
    max_alpha: float = entry(0.7, "largest noise scale alpha of information dropout, in (0, 1]")
    filter_percentage: float = entry(1.0, "width multiplier of the network (0.25 = the small network)")
    single_dropout: bool = entry(False, "only one dropout layer, after the third conv (ICLR 2023 fullCNN)")
    keep_prob: float = entry(0.5, "keep probability of binary dropout (dropout=binary)")
    initial_keep_prob: float = entry(0.8, "keep probability of the binary dropout on the input images (1.0 = none)")
    variance: float = entry(1.0, "noise variance of Gaussian dropout (dropout=gaussian); 1.0 = rate 0.5")
    plot_images: int = entry(5, "number of test images whose KL heat maps `plot` draws", in_run_name=False)


@dataclass
class StepSGD:
    """SGD with Nesterov momentum and a learning rate dropped at fixed milestones (the TPAMI 2018
    code); defaults are cifar's. ``epochs`` stays out of the run name: a longer run continues a
    shorter one's checkpoint."""

    weight_decay: float = entry(0.001, "weight_decay * sum of squared parameters / 2 is added to the loss")
    batch_size: int = entry(100, "mini-batch size per process (under torchrun the global batch is batch_size x processes)")
    lr: float = entry(0.05, "initial learning rate of SGD with Nesterov momentum")
    momentum: float = entry(0.9, "Nesterov momentum")
    lr_milestones: List[int] = entry([80, 120, 160], "epochs at which the learning rate is multiplied by lr_decay")
    lr_decay: float = entry(0.1, "factor applied to the learning rate at each milestone")
    epochs: int = entry(200, "number of training epochs (a longer run resumes a shorter one)", in_run_name=False)
    seed: int = entry(0, "seed of initialisation, batch order and noise")


@dataclass
class CosineSGD:
    """SGD with momentum and a learning rate annealed by a cosine schedule over all the epochs
    (the ICLR 2023 code); defaults are mnist's."""

    epochs: int = entry(200, "training epochs (reference code: 200)", in_run_name=False)
    batch_size: int = entry(256, "mini-batch size (reference code: 256 for MNIST, 64 for CIFAR-10)")
    lr: float = entry(0.1, "SGD learning rate, annealed by a cosine schedule over the epochs")
    momentum: float = entry(0.9, "SGD momentum")
    weight_decay: float = entry(1e-3, "SGD weight decay")
    seed: int = entry(0, "random seed (initialisation, batches, augmentation, noise)")


@dataclass
class Plane:
    """When and how the information plane of a training run is recorded; defaults are mnist's."""

    plane_every: int = entry(2, "record the information plane every k epochs, at the first and the last (0 = off)", in_run_name=False)
    plane_samples: int = entry(5000, "inputs per split for the plane estimates (0 = all, e.g. the 60,000 of Fashion-MNIST; the mixture costs O(N^2): the cost line says how long)", in_run_name=False)
    noise_samples: int = entry(10, "noise draws per input in the Gaussian mixture estimator", in_run_name=False)
    mc_draws: int = entry(1, "MC-dropout samples of Z per input for binning and MC predictions", in_run_name=False)
    plane_bounds: bool = entry(True, "pairwise bracket of the mixture estimate (O(N^2 d) elementwise: slow on a CPU for large N)", in_run_name=False)
    bins: List[int] = entry([10, 30, 100], "bin counts of the binning planes", in_run_name=False)
    estimators: List[str] = entry(["auto", "binning"], "plane estimators: auto (mixture for Gaussian dropout / variational KL) and binning", in_run_name=False)
    plot_formats: List[str] = entry(["png", "pdf"], "file formats of the figures (png, pdf, svg)", in_run_name=False)


@dataclass
class UnitSubsetPlane(Plane):
    """The plane entries and the planes of random subsets of the layer's units."""

    plane_subsets: List[int] = entry([], "sizes k of random unit subsets whose planes are recorded too, e.g. [1,4] (Gaussian dropout; each size costs subset_draws mixture estimates)", in_run_name=False)
    subset_draws: int = entry(8, "random unit subsets per size in plane_subsets", in_run_name=False)
