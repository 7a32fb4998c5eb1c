"""The information plane of an All-CNN classifier's first dropout layer, recorded while the
classifier recipe trains it: the fullCNN study of Adilova, Geiger & Fischer (ICLR 2023,
Section 5, Fig. 7), ``infodrop cifar train with fullcnn softplus ...``.

The same tracker as the plane recipe (:class:`infodrop.plane.InformationPlane`) rides on the
engine's epoch hook: it records at the initialisation (epoch 0), at the first epoch it sees, every
``plane_every`` epochs and at the last, into ``runs/<experiment>/<run>/plane.json`` (and
``plane.csv``); the figures go to ``plots/<experiment>/<run>/``. At the tracked layer Z it records

- information dropout: I(X;Z) <= E_x KL(p(z|x) || prior), the variational bound that training
  penalises, summed over every unit and location of the layer (nats; an MI bound for the
  log-normal prior, i.e. ``softplus``; with the log-uniform prior the KL is known only up to a
  constant and is recorded as not an MI), and I(Z;Y) >= H(Y) - cross-entropy of the MC-dropout
  predictions;
- Gaussian dropout: the mixture estimator over the ``plane_samples`` inputs;
- binning (``estimators`` includes 'binning'): the plug-in estimate on the binned noisy Z.

Config entries read: ``plane_every`` (0 = no plane), ``plane_samples``, ``estimators``, ``bins``,
``noise_samples``, ``mc_draws``, ``plane_bounds``, ``plot_formats``, ``batch_size``, ``seed``,
``device``, ``epochs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from infodrop.checks import check_int
from infodrop.distributed import is_main_process
from infodrop.experiments.config import check_subset
from infodrop.experiments.datasets import Split
from infodrop.experiments.naming import RunPaths
from infodrop.experiments.plane_recipe import configured_plane
from infodrop.io import checkpoint_exists
from infodrop.plane import PlaneDocument, saturation_summary
from infodrop.plots import plot_plane_figures

__all__ = ["ESTIMATORS", "PLOT_FORMATS", "draw", "start", "validate"]

ESTIMATORS = ("auto", "binning")
PLOT_FORMATS = ("png", "pdf", "svg")


def validate(cfg: Any) -> None:
    """Refuse plane entries the tracker cannot use: ValueError naming the entry and the fix."""
    check_int(cfg.plane_every, "plane_every", minimum=0)
    check_subset(cfg.plane_samples, "plane_samples")
    if 0 < cfg.plane_samples < 2:
        raise ValueError(f"plane_samples must be 0 (all) or at least 2, got {cfg.plane_samples}")
    check_int(cfg.noise_samples, "noise_samples", minimum=1)
    check_int(cfg.mc_draws, "mc_draws", minimum=1)
    if not cfg.estimators or any(name not in ESTIMATORS for name in cfg.estimators):
        raise ValueError(f"estimators must be a non-empty subset of {list(ESTIMATORS)}, got {list(cfg.estimators)}")
    if "binning" in cfg.estimators and not cfg.bins:
        raise ValueError("bins is empty but estimators include binning; give bin counts, e.g. bins=[10,30,100]")
    for index, count in enumerate(cfg.bins):
        check_int(count, f"bins[{index}]", minimum=1)
    if not cfg.plot_formats or any(fmt not in PLOT_FORMATS for fmt in cfg.plot_formats):
        raise ValueError(f"plot_formats must be a non-empty subset of {list(PLOT_FORMATS)}, got {list(cfg.plot_formats)}")


def start(cfg: Any, model: nn.Module, train: Split, test: Split, paths: RunPaths, *,
          dataset: str = "cifar10") -> Callable[[int, nn.Module], dict | None]:
    """Set up the tracker on ``model``'s first continuous-dropout layer, record the initialisation
    (unless the run resumes from its checkpoint, whose earlier points the file keeps) and return
    the engine epoch hook that records the rest."""
    plane_file = paths.run_dir / "plane.json"
    resuming = checkpoint_exists(paths.model_file)  # the latest checkpoint, or the previous one
    plane = configured_plane(cfg, model, train, test, plane_file, resuming=resuming, dataset=dataset,
                             batch_size=cfg.batch_size)
    if is_main_process():
        print(f"plane at layer {plane.layer_name!r} ({plane.kind} dropout) on {plane.sample_counts} inputs -> {plane_file}")
    # The initialisation: the start of the trajectory. Every rank records when the ranks share the
    # mixture estimate (under torchrun), else rank 0 alone, as the epoch hooks do.
    if not resuming and (is_main_process() or plane.distributed):
        plane.record(0)
    return plane.as_hook(every=cfg.plane_every, last=cfg.epochs)


def draw(cfg: Any, paths: RunPaths, experiment: str) -> list[Path]:
    """The plane figures of the run, then the end-of-run summary with the saturation counts in
    words (rank 0; other ranks draw nothing)."""
    if not is_main_process():
        return []
    plane_file = paths.run_dir / "plane.json"
    figures = plot_plane_figures(plane_file, paths.plots_dir, formats=tuple(cfg.plot_formats),
                                 title=f"run {paths.name}")
    document = PlaneDocument.load(plane_file)
    lines = [f"plane: {plane_file} ({len(document.records)} records, nats)",
             "saturation (pressed against log N, the point measures N, not the network):"]
    lines += [f"  {line}" for line in saturation_summary(document)]
    lines += ["figures:"] + [f"  {path}" for path in figures if str(path).endswith(".png")]
    print("\n".join(lines))
    return figures
