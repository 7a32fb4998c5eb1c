"""CIFAR-10 with the all-convolutional network of Achille & Soatto (TPAMI 2018, Section 8 and
Table 1), after the original ``cifar.py``; and the fullCNN study of Adilova, Geiger & Fischer
(ICLR 2023, Section 5.2, Fig. 7) as the ``fullcnn`` named config.

Commands (``infodrop cifar COMMAND [--multirun] [with key=value ... NAMED_CONFIG ...]``):

- ``prepare with source=PATH/cifar-10-batches-py``: per-image standardisation and ZCA
  whitening (the original ``process_cifar.py``), written to ``datasets/cifar10-{train,test}.npz``.
- ``train``: trains :class:`infodrop.models.AllCNN32`; checkpoints at
  ``models/cifar/<run name>.pt`` every ``checkpoint_every`` epochs, at the end and on Ctrl-C, and
  resumes from it; the run record is ``runs/cifar/<run name>/``.
- ``test``: reloads that checkpoint, recomputes the batch-norm statistics with the noise off
  (the original's "dry run") and reports the test error (percent).
- ``correlation``: Gaussian total correlation of the log of the last information-dropout
  layer's noisy output over the test set (Section 8, Fig. 5 of the TPAMI paper); needs softplus
  activations (``with softplus``), since log 0 is undefined for ReLU.
- ``plot``: per-location KL heat maps of every information-dropout layer, next to the input.
- ``print_config``: every entry, its value and its help, changed ones marked ``*``.

Loss (as the original ``build_loss``)::

    cross_entropy + beta * kl_divergence(model) / N_train + weight_decay * sum_w ||w||^2 / 2

``kl_divergence`` is the per-sample KL summed over the information-dropout layers and averaged
over the batch (the original's ``batch_average``), so beta is comparable to variational dropout's;
the weight-decay term is TensorFlow's ``l2_loss`` (half the sum of squares) over the parameters
that the original sums over (``tf.trainable_variables()``): all of them, biases, batch-norm shifts
and the log-normal prior's ``mu1``/``sigma1`` included, except the batch-norm scales, which
PyTorch has and the original's ``batch_norm`` does not. The optimiser is SGD with Nesterov momentum 0.9 and no built-in
weight decay; the learning rate is multiplied by ``lr_decay`` at each of ``lr_milestones``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

import torch

from infodrop.experiments import common
from infodrop.experiments.common import entry

__all__ = [
    "COMMANDS",
    "Config",
    "NAMED_CONFIGS",
    "build_model",
    "correlation",
    "gaussian_total_correlation",
    "load_data",
    "plot",
    "prepare",
    "test",
    "train",
    "validate",
]

EXPERIMENT = "cifar"


@dataclass
class Config:
    """Configuration of the CIFAR-10 experiment; defaults are the original ``cifar.py``'s."""

    dropout: str = entry("information", "dropout kind after each stride-2 conv: information | binary | gaussian | none")
    activations: str = entry("relu", "activation of every conv: relu | softplus")
    lognorm_prior: bool = entry(False, "log-normal prior on the activations (needs softplus); else log-uniform")
    beta: float = entry(3.0, "weight of the KL term, beta >= 0 (the information bottleneck's Lagrange multiplier)")
    max_alpha: float = entry(0.7, "largest noise scale alpha of information dropout, in (0, 1]")
    filter_percentage: float = entry(1.0, "width multiplier of the network (0.25 = the small network)")
    single_dropout: bool = entry(False, "only one dropout layer, after the third conv (ICLR 2023 fullCNN)")
    keep_prob: float = entry(0.5, "keep probability of binary dropout (dropout=binary)")
    initial_keep_prob: float = entry(0.8, "keep probability of the binary dropout on the input images")
    variance: float = entry(1.0, "noise variance of Gaussian dropout (dropout=gaussian); 1.0 = rate 0.5")
    weight_decay: float = entry(0.001, "weight_decay * sum of squared parameters / 2 is added to the loss")
    batch_size: int = entry(100, "mini-batch size (the global batch under torchrun)")
    lr: float = entry(0.05, "initial learning rate of SGD with Nesterov momentum")
    momentum: float = entry(0.9, "Nesterov momentum")
    lr_milestones: List[int] = entry([80, 120, 160], "epochs at which the learning rate is multiplied by lr_decay")
    lr_decay: float = entry(0.1, "factor applied to the learning rate at each milestone")
    epochs: int = entry(200, "number of training epochs (a longer run resumes a shorter one)", in_run_name=False)
    seed: int = entry(0, "seed of initialisation, batch order and noise")
    train_subset: int = entry(0, "train on the first N training images only (0 = all 50000)")
    test_subset: int = entry(0, "evaluate on the first N test images only (0 = all 10000)")
    correlation_mode: str = entry(
        "features",
        "correlation over units: features (original: every unit at every location) | channels (locations pooled)",
        in_run_name=False,
    )
    plot_images: int = entry(5, "number of test images whose KL heat maps `plot` draws", in_run_name=False)
    checkpoint_every: int = entry(10, "save the checkpoint every this many epochs", in_run_name=False)
    source: str = entry("", "prepare: folder cifar-10-batches-py (or its .tar.gz) of the official release", in_run_name=False)
    data_dir: str = entry("datasets", "folder of the prepared cifar10-{train,test}.npz", in_run_name=False)
    models_dir: str = entry("models", "folder of the checkpoints, models/cifar/<run name>.pt", in_run_name=False)
    runs_dir: str = entry("runs", "folder of the run records, runs/cifar/<run name>/", in_run_name=False)
    plots_dir: str = entry("plots", "folder of the figures, plots/cifar/<run name>/", in_run_name=False)
    device: Optional[str] = entry(None, "cpu, cuda, cuda:N; null = cuda when available", in_run_name=False)
    progress: bool = entry(True, "show progress bars", in_run_name=False)


NAMED_CONFIGS: dict[str, dict[str, Any]] = {
    # TPAMI 2018, Section 8: softplus units with the log-normal prior (needed by `correlation`).
    "softplus": {"activations": "softplus", "lognorm_prior": True},
    # ICLR 2023, Section 5.2 / Fig. 7: one information-dropout layer after the third conv, noise
    # allowed up to alpha = 0.95, learning rate x 0.1 after epochs 40, 80 and 120 (the paper
    # sweeps beta in {3, 20} and filter_percentage in {1.0, 0.25}).
    "fullcnn": {"single_dropout": True, "max_alpha": 0.95, "lr_milestones": [40, 80, 120]},
}


def validate(cfg: Any) -> None:
    """Refuse bad values before any work: ValueError naming the entry and the allowed values."""
    common.validate_dropout_training(cfg)
    common.check_in_range_closed(cfg.initial_keep_prob, "initial_keep_prob")
    common.check_choice(cfg.correlation_mode, "correlation_mode", ("features", "channels"))
    common.check_prior(cfg)
    common.check_filters(cfg.filter_percentage, (96, 192))


# ----------------------------------------------------------------------------- building blocks


def build_model(cfg: Any) -> torch.nn.Module:
    """AllCNN32 from the config entries (keep probabilities become drop rates)."""
    from infodrop.models import AllCNN32

    return AllCNN32(**common.allcnn_options(cfg))


def load_data(cfg: Any) -> tuple[common.Split, common.Split]:
    """The prepared train and test sets (subsets when asked), as numpy arrays.

    A missing or malformed file raises DataError naming it and the exact prepare command.
    """
    from infodrop.data import CIFAR_TEST_FILE, CIFAR_TRAIN_FILE, load_cifar_npz

    hint = common.prepare_hint(cfg, EXPERIMENT, "PATH/cifar-10-batches-py")
    folder = Path(cfg.data_dir)
    common.require_files([folder / CIFAR_TRAIN_FILE, folder / CIFAR_TEST_FILE], hint)
    train = common.take(load_cifar_npz(folder / CIFAR_TRAIN_FILE, hint=hint), cfg.train_subset, "train_subset")
    test = common.take(load_cifar_npz(folder / CIFAR_TEST_FILE, hint=hint), cfg.test_subset, "test_subset")
    return train, test


# ----------------------------------------------------------------------------- commands


def prepare(cfg: Any) -> dict[str, Path]:
    """Preprocess the official batches at ``source`` into ``data_dir``."""
    from infodrop.data import prepare_cifar

    if not cfg.source:
        raise ValueError("prepare needs the official CIFAR-10 batches: `infodrop cifar prepare with source=PATH/cifar-10-batches-py`")
    written = prepare_cifar(cfg.source, cfg.data_dir)
    for split, path in written.items():
        print(f"wrote {path} ({split})")
    return written


def train(cfg: Any) -> dict[str, Any]:
    """Train (or resume) the run named after the config; returns the engine's final metrics."""
    train_set, test_set = load_data(cfg)
    return common.train_classifier(cfg, EXPERIMENT, sys.modules[__name__], build_model(cfg), train_set, test_set)


def test(cfg: Any) -> dict[str, float]:
    """Test error (percent) of the trained run, after recomputing the batch-norm statistics."""
    train_set, test_set = load_data(cfg)
    return common.test_classifier(cfg, EXPERIMENT, sys.modules[__name__], build_model(cfg), train_set, test_set)


def plot(cfg: Any) -> list[Path]:
    """KL heat maps of every information-dropout layer for the first ``plot_images`` test images."""
    train_set, test_set = load_data(cfg)
    return common.plot_kl_maps(cfg, EXPERIMENT, sys.modules[__name__], build_model(cfg), train_set, test_set)


def gaussian_total_correlation(samples: Any) -> float:
    """Total correlation of a Gaussian with the samples' covariance, per dimension (nats).

    samples: M x d (M observations of d variables). With C the sample covariance (ddof 1) and
    D its diagonal, TC = -0.5 * log det(D^-1 C) / d = -0.5 * log det(R) / d, R the correlation
    matrix: the KL from the Gaussian to the product of its marginals, divided by d as the
    original ``normal_tc`` does. Computed in float64. Raises ValueError when C is singular
    (e.g. d >= M, or a constant variable), where the estimate is infinite.
    """
    from infodrop.checks import as_matrix

    data = as_matrix(samples, "samples", dtype=torch.float64, min_rows=2)
    count, dim = data.shape
    singular = (
        f"the covariance of the {dim} variables over {count} samples is singular, so the total "
        "correlation is infinite; use more samples than variables (with correlation_mode=features "
        "there is one variable per unit and location: try correlation_mode=channels or a smaller "
        "filter_percentage)"
    )
    if count - 1 < dim:  # a sample covariance has rank at most count - 1
        raise ValueError(singular)
    centred = data - data.mean(dim=0, keepdim=True)
    covariance = centred.T @ centred / (count - 1)
    scale = covariance.diagonal().sqrt()
    if bool((scale == 0).any()):
        raise ValueError(f"samples has {int((scale == 0).sum())} constant column(s); their correlation is undefined")
    correlation = covariance / scale[:, None] / scale[None, :]
    # Eigenvalues of R sum to dim; one below dim * float64 epsilon is rounding noise around zero,
    # where log det would be a meaningless large number instead of -inf.
    eigenvalues = torch.linalg.eigvalsh(correlation)
    if float(eigenvalues.min()) <= dim * torch.finfo(torch.float64).eps * float(eigenvalues.max()):
        raise ValueError(singular)
    return float(-0.5 * eigenvalues.log().sum() / dim)


def correlation(cfg: Any) -> float:
    """Total correlation (nats per unit) of log z of the last information-dropout layer.

    As the original ``correlation`` command: the trained network in evaluation mode (running
    batch-norm statistics), but with the information-dropout noise *on* and the input dropout on,
    over the test set; log z = log f(x) + alpha * eps is collected per test image, and
    ``gaussian_total_correlation`` is taken either over all units at all locations
    (``correlation_mode=features``, the original) or over the channels with the locations pooled
    as extra samples (``correlation_mode=channels``).
    """
    if cfg.dropout != "information" or cfg.activations != "softplus":
        raise ValueError(
            "correlation needs information dropout with softplus activations (log z is -inf where "
            f"ReLU outputs 0), but dropout={cfg.dropout}, activations={cfg.activations}; train and run "
            "it `with softplus`, e.g. `infodrop cifar correlation with softplus filter_percentage=0.25 beta=1.0`"
        )
    train_set, test_set = load_data(cfg)
    model, paths = common.load_trained(cfg, EXPERIMENT, sys.modules[__name__], build_model(cfg))
    log_z = common.collect_log_output(model, test_set, batch_size=cfg.batch_size, device=cfg.device, seed=cfg.seed)
    if cfg.correlation_mode == "features":
        samples = log_z.reshape(len(log_z), -1)
    else:
        samples = log_z.permute(0, 2, 3, 1).reshape(-1, log_z.shape[1])
    value = gaussian_total_correlation(samples)
    if common.is_main_process():
        print(f"Total correlation: {value:.6f} nats per unit ({cfg.correlation_mode}, run {paths.name})")
    common.record(paths, "correlation", {"total_correlation": value, "correlation_mode": cfg.correlation_mode,
                                         "samples": int(samples.shape[0]), "variables": int(samples.shape[1])})
    return value


COMMANDS = {
    "prepare": prepare,
    "train": train,
    "test": test,
    "correlation": correlation,
    "plot": plot,
}
