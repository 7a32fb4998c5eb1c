"""CIFAR-10 with the all-convolutional network of Achille & Soatto (TPAMI 2018, Section 8 and
Table 1), after the original ``cifar.py``; and the fullCNN study of Adilova, Geiger & Fischer
(ICLR 2023, Section 5.2, Fig. 7) as the ``fullcnn`` named config.

Commands (``infodrop cifar COMMAND [--multirun] [with key=value ... NAMED_CONFIG ...]``):

- ``prepare with source=PATH/cifar-10-batches-py``: per-image standardisation and ZCA
  whitening (the original ``process_cifar.py``), written to ``datasets/cifar10-{train,test}.npz``.
- ``train``, ``test``, ``correlation``, ``plot``: the classifier recipe
  (:mod:`infodrop.experiments.classifier_recipe`) with :class:`infodrop.models.AllCNN32`.
  ``train`` checkpoints at
  ``models/cifar/<run name>.pt`` every ``checkpoint_every`` epochs, at the end and on Ctrl-C, and
  resumes from it; the run record is ``runs/cifar/<run name>/``. With ``plane_every`` > 0 (the
  ``fullcnn`` preset sets 1) it also records the information plane of the first dropout layer
  into ``runs/cifar/<run name>/plane.json`` and draws it (:func:`infodrop.experiments.plane_recipe.start_plane`):
  for information dropout the variational bound E_x KL(p(z|x) || prior) on I(X;Z) (an MI bound
  with the log-normal prior, ``softplus``) and H(Y) - cross-entropy <= I(Z;Y), binning beside them.
- ``test``: reloads that checkpoint, recomputes the batch-norm statistics with the noise off
  (the original's "dry run") and reports the test error (percent).
- ``correlation``: Gaussian total correlation of the log of the last information-dropout
  layer's noisy output over the test set (Section 8, Fig. 5 of the TPAMI paper); needs softplus
  activations (``with softplus``), since log 0 is undefined for ReLU.
- ``plot``: per-location KL heat maps of every information-dropout layer, next to the input.
- ``print_config``: every entry, its value and its help, changed ones marked ``*``.

Loss (as the original ``build_loss``; :func:`infodrop.losses.information_loss`)::

    cross_entropy + beta * kl_divergence(model) / N_train + weight_decay * sum_w ||w||^2 / 2

``kl_divergence`` is the per-sample KL summed over the information-dropout layers and averaged
over the batch (the original's ``batch_average``), so beta is comparable to variational dropout's;
the weight-decay term is TensorFlow's ``l2_loss`` (half the sum of squares) over the parameters
that the original sums over (``tf.trainable_variables()``): all of them, biases, batch-norm shifts
and the log-normal prior's ``mu1``/``sigma1`` included, except the batch-norm scales, which
PyTorch has and the original's ``batch_norm`` does not. The optimiser is SGD with Nesterov
momentum 0.9 and no built-in weight decay; the learning rate is multiplied by ``lr_decay`` at
each of ``lr_milestones``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from infodrop.data import CIFAR_TEST_FILE, CIFAR_TRAIN_FILE, load_cifar_npz, prepare_cifar
from infodrop.data.npzfiles import read_npz
from infodrop.experiments import classifier_recipe
from infodrop.experiments.classifier_recipe import ClassifierExperiment
from infodrop.experiments.config import check_choice, entry
from infodrop.experiments.datasets import Split, prepare_hint, require_files, take
from infodrop.experiments.entries import AllCNNNetwork, Machine, Plane, RunFiles, StepSGD, Subsets, in_order, new_default
from infodrop.models import AllCNN32

__all__ = [
    "COMMANDS",
    "Config",
    "EXPERIMENT",
    "NAMED_CONFIGS",
    "build_model",
    "correlation",
    "load_data",
    "plot",
    "prepare",
    "test",
    "train",
    "validate",
]


@dataclass
class Config(*in_order(AllCNNNetwork, StepSGD, Subsets, Machine, RunFiles, Plane)):
    """Configuration of the CIFAR-10 experiment; defaults are the original ``cifar.py``'s."""

    correlation_mode: str = entry(
        "features",
        "correlation over units: features (original: every unit at every location) | channels (locations pooled)",
        in_run_name=False,
    )
    source: str = entry("", "prepare: folder cifar-10-batches-py (or its .tar.gz) of the official release", in_run_name=False)
    data_dir: str = entry("datasets", "folder of the prepared cifar10-{train,test}.npz", in_run_name=False)
    plane_every: int = new_default(Plane, "plane_every", 0)
    plane_samples: int = new_default(Plane, "plane_samples", 1000)
    plane_bounds: bool = new_default(Plane, "plane_bounds", False)
    plane_bn_refresh: bool = entry(False, "plane: re-estimate the batch-norm statistics on the plane's training inputs with the dropout noise on (the plane reads the noisy Z) before each record (restored after; training is unchanged)", in_run_name=False)


NAMED_CONFIGS: dict[str, dict[str, Any]] = {
    # TPAMI 2018, Section 8: softplus units with the log-normal prior (needed by `correlation`).
    "softplus": {"activations": "softplus", "lognorm_prior": True},
    # ICLR 2023, Section 5.2 / Fig. 7: one information-dropout layer after the third conv, noise
    # allowed up to alpha = 0.95, learning rate x 0.1 after epochs 40, 80 and 120 (the paper
    # sweeps beta in {3, 20} and filter_percentage in {1.0, 0.25}); the plane of the dropout layer
    # is recorded every epoch, as Fig. 7 plots it.
    "fullcnn": {"single_dropout": True, "max_alpha": 0.95, "lr_milestones": [40, 80, 120], "plane_every": 1},
}


def load_data(cfg: Any) -> tuple[Split, Split]:
    """The prepared train and test sets (subsets when asked), as numpy arrays.

    A missing or malformed file raises DataError naming it and the exact prepare command.
    """
    hint = prepare_hint(cfg, "cifar", "PATH/cifar-10-batches-py")
    folder = Path(cfg.data_dir)
    require_files([folder / CIFAR_TRAIN_FILE, folder / CIFAR_TEST_FILE], hint)
    train = take(load_cifar_npz(folder / CIFAR_TRAIN_FILE, hint=hint), cfg.train_subset, "train_subset")
    test = take(load_cifar_npz(folder / CIFAR_TEST_FILE, hint=hint), cfg.test_subset, "test_subset")
    return train, test


def unwhitened_test_images(cfg: Any, count: int) -> np.ndarray | None:
    """The first ``count`` test images as pixels (uint8 N x 3 x 32 x 32) from the ``raw`` array that
    ``prepare`` keeps, or None for files prepared before it did (or the original authors')."""
    arrays = read_npz(Path(cfg.data_dir) / CIFAR_TEST_FILE, None)
    return arrays["raw"][:count] if "raw" in arrays else None


EXPERIMENT = ClassifierExperiment(name="cifar", config=Config, network=AllCNN32, load_data=load_data, records_plane=True,
                                  unwhitened_test_images=unwhitened_test_images)


def build_model(cfg: Any) -> nn.Module:
    """AllCNN32 from the config entries (keep probabilities become drop rates)."""
    return classifier_recipe.build_model(cfg, EXPERIMENT)


def validate(cfg: Any) -> None:
    """Refuse bad values before any work: ValueError naming the entry and the allowed values."""
    classifier_recipe.validate(cfg, EXPERIMENT)
    check_choice(cfg.correlation_mode, "correlation_mode", ("features", "channels"))


# ----------------------------------------------------------------------------- commands


def prepare(cfg: Any) -> dict[str, Path]:
    """Preprocess the official batches at ``source`` into ``data_dir``."""
    if not cfg.source:
        raise ValueError("prepare needs the official CIFAR-10 batches: `infodrop cifar prepare with source=PATH/cifar-10-batches-py`")
    written = prepare_cifar(cfg.source, cfg.data_dir)
    for split, path in written.items():
        print(f"wrote {path} ({split})")
    return written


COMMANDS = {"prepare": prepare, **classifier_recipe.commands(EXPERIMENT, ("train", "test", "correlation", "plot"))}
train, test, correlation, plot = (COMMANDS[command] for command in ("train", "test", "correlation", "plot"))
