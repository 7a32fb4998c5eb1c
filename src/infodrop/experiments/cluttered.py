"""Cluttered MNIST with the all-convolutional network of Achille & Soatto (TPAMI 2018,
Section 8, Fig. 3), after the original ``cluttered.py``: information dropout learns to ignore the
clutter, which the per-location KL heat maps show.

Commands (``infodrop cluttered COMMAND [--multirun] [with key=value ... NAMED_CONFIG ...]``):

- ``prepare with source=PATH/IDX_FOLDER``: generates the 96 x 96 dataset from MNIST (or
  Fashion-MNIST) IDX files with :func:`infodrop.data.prepare_cluttered` (DeepMind's
  ``mnist-cluttered`` rules), writing ``datasets/cluttered-{train,valid,test}.npz``. The
  generator entries (``canvas``, ``distractors``, ``distractor_size``, ``train_count``,
  ``valid_count``, ``test_count``, ``generator_seed``, ``combine``) only affect ``prepare``.
- ``train``, ``test``, ``plot``, ``print_config``: the classifier recipe
  (:mod:`infodrop.experiments.classifier_recipe`) as for :mod:`infodrop.experiments.cifar`,
  with :class:`infodrop.models.AllCNN96`; ``plot`` writes the KL heat maps of the four
  information-dropout layers for the first ``plot_images`` test images to
  ``plots/cluttered/<run name>/kl_<j>.png``.

Defaults are the original's: batch 128, SGD with Nesterov momentum 0.9, learning rate 0.01
times 0.1 at epochs 30 and 60, 80 epochs, beta 0.5, max_alpha 1.0, no weight decay, no input
dropout. The loss is that of :mod:`infodrop.experiments.cifar` (cross-entropy +
beta * KL / N_train + weight_decay * sum ||w||^2 / 2). As in the original, training uses the
train split and evaluation the test split; the valid split is written for other uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List

from torch import nn

from infodrop.checks import check_int, check_seed
from infodrop.data import CLUTTERED_FILES, load_cluttered_npz, prepare_cluttered
from infodrop.experiments import classifier_recipe
from infodrop.experiments.classifier_recipe import ClassifierExperiment
from infodrop.experiments.config import check_choice, entry
from infodrop.experiments.datasets import Split, prepare_hint, require_files, take
from infodrop.experiments.entries import AllCNNNetwork, Machine, RunFiles, StepSGD, Subsets, in_order, new_default
from infodrop.models import AllCNN96

__all__ = ["COMMANDS", "Config", "EXPERIMENT", "NAMED_CONFIGS", "build_model", "load_data", "plot", "prepare", "test", "train", "validate"]


@dataclass
class Config(*in_order(AllCNNNetwork, StepSGD, Subsets, Machine, RunFiles)):
    """Configuration of the Cluttered MNIST experiment; defaults are the original ``cluttered.py``'s."""

    beta: float = new_default(AllCNNNetwork, "beta", 0.5)  # the original advises beta <= 0.5
    max_alpha: float = new_default(AllCNNNetwork, "max_alpha", 1.0)
    initial_keep_prob: float = new_default(AllCNNNetwork, "initial_keep_prob", 1.0)  # no input dropout, as the original
    weight_decay: float = new_default(StepSGD, "weight_decay", 0.0)
    batch_size: int = new_default(StepSGD, "batch_size", 128)
    lr: float = new_default(StepSGD, "lr", 0.01)
    lr_milestones: List[int] = new_default(StepSGD, "lr_milestones", [30, 60])
    epochs: int = new_default(StepSGD, "epochs", 80)
    source: str = entry("", "prepare: folder of MNIST-format IDX files (train/t10k images and labels)", in_run_name=False)
    canvas: int = entry(96, "prepare: side of the square canvas, pixels", in_run_name=False)
    distractors: int = entry(8, "prepare: number of distractor crops per image", in_run_name=False)
    distractor_size: int = entry(8, "prepare: side of each distractor crop, pixels", in_run_name=False)
    train_count: int = entry(50000, "prepare: number of training images to generate", in_run_name=False)
    valid_count: int = entry(10000, "prepare: number of validation images to generate", in_run_name=False)
    test_count: int = entry(10000, "prepare: number of test images to generate", in_run_name=False)
    generator_seed: int = entry(0, "prepare: seed of the generator", in_run_name=False)
    combine: str = entry("max", "prepare: how patches overlap: max | add (the Lua generator: add, clip at 1)", in_run_name=False)
    data_dir: str = entry("datasets", "folder of the prepared cluttered-{train,valid,test}.npz", in_run_name=False)


NAMED_CONFIGS: dict[str, dict[str, Any]] = {
    "softplus": {"activations": "softplus", "lognorm_prior": True},
}

def load_data(cfg: Any) -> tuple[Split, Split]:
    """The prepared train and test sets (subsets when asked), as numpy arrays in [0, 1]."""
    hint = prepare_hint(cfg, "cluttered", "PATH/TO/MNIST_IDX_FOLDER")
    folder = Path(cfg.data_dir)
    files = [folder / CLUTTERED_FILES["train"], folder / CLUTTERED_FILES["test"]]
    require_files(files, hint)
    train = take(load_cluttered_npz(files[0], hint=hint), cfg.train_subset, "train_subset")
    test = take(load_cluttered_npz(files[1], hint=hint), cfg.test_subset, "test_subset")
    return train, test


EXPERIMENT = ClassifierExperiment(name="cluttered", config=Config, network=AllCNN96, load_data=load_data)


def build_model(cfg: Any) -> nn.Module:
    """AllCNN96 from the config entries (keep probabilities become drop rates)."""
    return classifier_recipe.build_model(cfg, EXPERIMENT)


def validate(cfg: Any) -> None:
    """Refuse bad values before any work: ValueError naming the entry and the allowed values."""
    classifier_recipe.validate(cfg, EXPERIMENT)
    check_choice(cfg.combine, "combine", ("max", "add"))
    for name in ("canvas", "distractor_size", "train_count", "valid_count", "test_count"):
        check_int(cfg[name], name, minimum=1)
    check_int(cfg.distractors, "distractors", minimum=0)
    check_seed(cfg.generator_seed, "generator_seed")
    if cfg.distractor_size > cfg.canvas:
        raise ValueError(f"distractor_size={cfg.distractor_size} exceeds canvas={cfg.canvas}; use distractor_size <= canvas")


_GENERATOR_ENTRIES = ("train_count", "valid_count", "test_count", "canvas", "distractors", "distractor_size", "combine")


# ----------------------------------------------------------------------------- commands


def prepare(cfg: Any) -> dict[str, Path]:
    """Generate Cluttered MNIST from the IDX files at ``source`` into ``data_dir``."""
    if not cfg.source:
        raise ValueError("prepare needs MNIST IDX files: `infodrop cluttered prepare with source=PATH/TO/MNIST_IDX_FOLDER`")
    # The generator's arguments carry the entries' names, except the seed (generator_seed here).
    options = {name: cfg[name] for name in _GENERATOR_ENTRIES}
    written = prepare_cluttered(cfg.source, cfg.data_dir, seed=cfg.generator_seed, **options)
    for split, path in written.items():
        print(f"wrote {path} ({split})")
    return written


COMMANDS = {"prepare": prepare, **classifier_recipe.commands(EXPERIMENT, ("train", "test", "plot"))}
train, test, plot = (COMMANDS[command] for command in ("train", "test", "plot"))
