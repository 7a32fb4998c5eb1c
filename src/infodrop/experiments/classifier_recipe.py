"""The classifier recipe: train, test, plot and correlation of the All-CNN experiments of Achille &
Soatto (TPAMI 2018, Section 8), after the original ``cifar.py`` and ``cluttered.py``.

An experiment hands a :class:`ClassifierExperiment` (its name, ``Config``, network class and data
loader) to these commands:

- :func:`train`: the network trained with the information-dropout loss (:mod:`infodrop.losses`),
  SGD with Nesterov momentum and a step schedule, checkpointed at ``models/<experiment>/<run>.pt``
  (every ``checkpoint_every`` epochs, at the end and on Ctrl-C) and resumed from it; a longer run
  continues a shorter one, since the schedule is fixed by its milestones. For an experiment that
  records planes (``records_plane``) and ``plane_every`` > 0, the information plane of the first
  dropout layer is recorded along the way (the plane recipe's path: :func:`infodrop.experiments.plane_recipe.start_plane`).
- :func:`test`: the checkpoint reloaded, batch-norm statistics recomputed with the noise off
  (the original's "dry run"), the test error.
- :func:`plot`: per-location KL heat maps of every information-dropout layer.
- :func:`correlation`: the Gaussian total correlation of log z of the last information-dropout
  layer (Section 8, Fig. 5).

The config entries the recipe reads: ``dropout, activations, lognorm_prior, beta, max_alpha,
filter_percentage, single_dropout, keep_prob, initial_keep_prob, variance, weight_decay,
batch_size, lr, momentum, lr_milestones, lr_decay, epochs, seed, train_subset, test_subset,
plot_images, checkpoint_every, models_dir, runs_dir, plots_dir, device, progress, compile`` (and
``correlation_mode`` for ``correlation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from infodrop.checks import check_in_range, check_int, check_positive, check_seed, resolve_device
from infodrop.data import as_tensor_dataset
from infodrop.distributed import is_main_process
from infodrop.engine import Checkpointing, Reporting, Training, fit
from infodrop.evaluation import evaluate, recompute_batchnorm
from infodrop.experiments import plane_recipe
from infodrop.experiments.config import check_batch_size, check_keep_prob, check_milestones, check_model, check_subset, to_plain
from infodrop.experiments.datasets import Split
from infodrop.experiments.naming import RunPaths, model_config, run_paths
from infodrop.experiments.resuming import check_continuation
from infodrop.experiments.run_files import holding_run, load_weights
from infodrop.io import append_jsonl, checkpoint_exists, save_npz, write_json
from infodrop.losses import information_loss
from infodrop.mi import gaussian_total_correlation
from infodrop.nn import InformationDropout, set_mc
from infodrop.plots import plot_kl_maps
from infodrop.runs import Run

__all__ = [
    "ClassifierExperiment",
    "SGDNesterov",
    "StepSchedule",
    "allcnn_options",
    "build_model",
    "collect_log_output",
    "correlation",
    "load_trained",
    "plot",
    "record",
    "test",
    "train",
    "validate",
]


@dataclass(frozen=True)
class ClassifierExperiment:
    """What the classifier recipe needs to know about one experiment."""

    name: str  # the experiment's folder under models/, runs/ and plots/
    config: type  # its Config dataclass (run names)
    network: type[nn.Module]  # AllCNN32 or AllCNN96, built from allcnn_options(cfg)
    load_data: Callable[[Any], tuple[Split, Split]]  # cfg -> (train, test), numpy
    records_plane: bool = False  # its Config has the plane entries (infodrop.experiments.plane_recipe.plane_settings)
    # (cfg, count) -> the first ``count`` test images before whitening (N x C x H x W), or None
    # where the data hold none; the KL heat maps show them beside the whitened input.
    unwhitened_test_images: Callable[[Any, int], Any] | None = None


def allcnn_options(cfg: Any) -> dict[str, Any]:
    """Keyword arguments of AllCNN32 / AllCNN96 from an experiment's entries (keep probabilities,
    as the original names them, become drop rates)."""
    return dict(
        dropout=cfg.dropout,
        filter_percentage=cfg.filter_percentage,
        activations=cfg.activations,
        lognorm_prior=cfg.lognorm_prior,
        max_alpha=cfg.max_alpha,
        variance=cfg.variance,
        dropout_rate=1.0 - cfg.keep_prob,
        input_dropout=1.0 - cfg.initial_keep_prob,
        single_dropout=cfg.single_dropout,
    )


def build_model(cfg: Any, experiment: ClassifierExperiment) -> nn.Module:
    """The experiment's network with the config's entries."""
    return experiment.network(**allcnn_options(cfg))


def validate(cfg: Any, experiment: ClassifierExperiment) -> None:
    """Refuse bad values before any work: ValueError naming the entry and the allowed values.

    The network's entries (dropout kind, activations, prior, widths, noise) are checked by the
    network's constructor; the rest here.
    """
    check_positive(cfg.beta, "beta", allow_zero=True)
    check_positive(cfg.weight_decay, "weight_decay", allow_zero=True)
    check_positive(cfg.lr, "lr")
    check_in_range(cfg.lr_decay, "lr_decay", 0.0, 1.0)
    check_in_range(cfg.momentum, "momentum", 0.0, 1.0, low_open=False, high_open=True)
    check_keep_prob(cfg.keep_prob, "keep_prob")
    check_keep_prob(cfg.initial_keep_prob, "initial_keep_prob")
    check_milestones(cfg.lr_milestones, "lr_milestones")
    for name in ("epochs", "checkpoint_every", "plot_images"):
        check_int(cfg[name], name, minimum=1)
    check_seed(cfg.seed, "seed")
    check_subset(cfg.train_subset, "train_subset")
    check_batch_size(cfg.batch_size, cfg.train_subset)
    check_subset(cfg.test_subset, "test_subset")
    if experiment.records_plane:
        plane_recipe.check_plane_entries(cfg, batch_size=cfg.batch_size, every_minimum=0)
    check_model(lambda: build_model(cfg, experiment))


class SGDNesterov:
    """``make_optimizer`` for the engine: SGD with Nesterov momentum and no built-in weight decay
    (the weight decay is a loss term). Accepts a module or an iterable of parameters."""

    def __init__(self, lr: float, momentum: float):
        self.lr, self.momentum = lr, momentum

    def __call__(self, model_or_parameters: Any) -> torch.optim.Optimizer:
        parameters = model_or_parameters.parameters() if isinstance(model_or_parameters, nn.Module) else model_or_parameters
        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, nesterov=self.momentum > 0)


class StepSchedule:
    """``make_scheduler`` for the engine: learning rate times ``decay`` at each milestone epoch
    (the original: epoch i < drop1 uses lr, i < drop2 uses lr * 0.1, ...); stepped once per epoch."""

    def __init__(self, milestones: Sequence[int], decay: float):
        self.milestones, self.decay = list(milestones), decay

    def __call__(self, optimizer: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=self.milestones, gamma=self.decay)


def record(paths: RunPaths, command: str, results: dict[str, Any]) -> None:
    """Add a command's results to the run record: a line in ``metrics.jsonl`` and ``<command>.json``."""
    if not is_main_process():
        return
    line = {"command": command, **results}
    # A new line even after a cut-off last one (which is dropped with a warning naming the file).
    append_jsonl(paths.run_dir / "metrics.jsonl", line)
    write_json(paths.run_dir / f"{command}.json", line)


# ----------------------------------------------------------------------------- commands


def train(cfg: Any, experiment: ClassifierExperiment) -> dict[str, Any]:
    """Train (or resume) the run named after the config, recording the information plane when the
    experiment does and ``plane_every`` > 0; returns the engine's final metrics.

    A longer run continues the checkpoint of a shorter one (the step schedule does not depend on
    ``epochs``); a checkpoint past ``epochs`` is refused (:mod:`infodrop.experiments.resuming`).
    A finished run trains nothing and prints its result line again."""
    paths = run_paths(cfg, experiment.config, experiment.name)
    with holding_run(paths, experiment.name):
        check_continuation(paths.model_file, cfg.epochs, schedule="step")
        return _train(cfg, experiment, paths)


def _train(cfg: Any, experiment: ClassifierExperiment, paths: RunPaths) -> dict[str, Any]:
    train_split, test_split = experiment.load_data(cfg)
    # The initial weights come from the run's seed, not from whatever an earlier job of the same
    # process (a sweep) left in torch's generator: a job trains the same model alone or in a sweep.
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, experiment)
    train_set, test_set = as_tensor_dataset(*train_split), as_tensor_dataset(*test_split)
    if is_main_process():
        print(f"run {paths.name}: {len(train_set)} training and {len(test_set)} test images; checkpoint {paths.model_file}")
    plane = experiment.records_plane and cfg.plane_every > 0
    hooks = (plane_recipe.start_plane(cfg, model, train_split, test_split, paths, dataset="cifar10", batch_size=cfg.batch_size),) if plane else ()
    result = fit(
        model,
        train_set,
        test_set,
        Training(
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            make_optimizer=SGDNesterov(cfg.lr, cfg.momentum),
            make_scheduler=StepSchedule(cfg.lr_milestones, cfg.lr_decay),
            loss=information_loss(beta=cfg.beta, train_size=len(train_set), weight_decay=cfg.weight_decay),
            seed=cfg.seed,
            compile=cfg.compile,
        ),
        # Only the entries that define the run go into the checkpoint, so that resuming with
        # more epochs, another device or other folders is allowed and anything else is refused.
        checkpointing=Checkpointing(path=paths.model_file, every=cfg.checkpoint_every, config=model_config(cfg, experiment.config)),
        reporting=Reporting(run=Run(paths.run_dir, config=to_plain(cfg)), epoch_hooks=hooks, progress=cfg.progress),
        device=cfg.device,
    )
    if plane:
        plane_recipe.draw_plane(cfg, paths)
    if is_main_process() and "test_error" in result:
        print(
            f"run {paths.name}: test error {100 * result['test_error']:.2f}% after epoch {result['epoch']} "
            f"(batch-norm statistics of training; `infodrop {experiment.name} test` re-estimates them); record in {paths.run_dir}"
        )
    return result


def load_trained(cfg: Any, experiment: ClassifierExperiment) -> tuple[nn.Module, RunPaths]:
    """The network of the run named after ``cfg``, with its checkpoint's weights (the previous checkpoint,
    with a warning, when the latest is damaged or missing, as for train), on the config's device."""
    paths = run_paths(cfg, experiment.config, experiment.name)
    if not checkpoint_exists(paths.model_file):
        raise ValueError(
            f"{paths.model_file}: no trained model for run {paths.name}; train it first with "
            f"`infodrop {experiment.name} train` and the same settings"
        )
    model = build_model(cfg, experiment)
    # previous=True: a damaged latest checkpoint falls back to <name>.prev.pt with a warning, as train does.
    load_weights(model, paths.model_file, source=f"run {experiment.name}/{paths.name}", previous=True)
    return model.to(resolve_device(cfg.device)), paths


def test(cfg: Any, experiment: ClassifierExperiment) -> dict[str, float]:
    """Test error of the trained run, after recomputing the batch-norm statistics with the noise off."""
    with holding_run(run_paths(cfg, experiment.config, experiment.name), experiment.name):
        return _test(cfg, experiment)


def _test(cfg: Any, experiment: ClassifierExperiment) -> dict[str, float]:
    train_split, test_split = experiment.load_data(cfg)
    model, paths = load_trained(cfg, experiment)
    train_set, test_set = as_tensor_dataset(*train_split), as_tensor_dataset(*test_split)
    recompute_batchnorm(model, train_set, batch_size=cfg.batch_size, device=cfg.device)
    metrics = {key: float(value) for key, value in evaluate(model, test_set, batch_size=cfg.batch_size, device=cfg.device).items()}
    if is_main_process():
        print(f"Test error: {100 * metrics['error']:.2f}% (loss {metrics['loss']:.4f}) of run {paths.name} on {len(test_set)} images")
    record(paths, "test", {f"test_{key}": value for key, value in metrics.items()})
    return metrics


def plot(cfg: Any, experiment: ClassifierExperiment) -> list[Path]:
    """KL heat maps of every information-dropout layer for the first ``plot_images`` test images:
    ``plots/<experiment>/<run>/kl_<j>.png``, from the noiseless forward pass after the batch-norm
    statistics are recomputed as for ``test``."""
    if cfg.dropout != "information":
        raise ValueError(f"plot draws the KL maps of information dropout, but dropout={cfg.dropout}; use dropout=information")
    with holding_run(run_paths(cfg, experiment.config, experiment.name), experiment.name):
        return _plot(cfg, experiment)


def _plot(cfg: Any, experiment: ClassifierExperiment) -> list[Path]:
    train_split, test_split = experiment.load_data(cfg)
    model, paths = load_trained(cfg, experiment)
    recompute_batchnorm(model, as_tensor_dataset(*train_split), batch_size=cfg.batch_size, device=cfg.device)
    if not is_main_process():
        return []
    count = min(cfg.plot_images, len(test_split[0]))
    images = torch.as_tensor(np.asarray(test_split[0][:count], dtype=np.float32))
    layers = [module for module in model.modules() if isinstance(module, InformationDropout)]
    model.eval()
    with torch.no_grad():
        model(images.to(resolve_device(cfg.device)))
    maps = [layer.kl_map.float().cpu().numpy() for layer in layers]
    labels = np.asarray(test_split[1][:count])
    raw = experiment.unwhitened_test_images(cfg, count) if experiment.unwhitened_test_images else None
    # The arrays behind the figures, so that they can be redrawn (scripts/redraw_docs_figures.py)
    # without the checkpoint: the input, the labels and one KL map per layer (nats).
    paths.plots_dir.mkdir(parents=True, exist_ok=True)
    save_npz(paths.plots_dir / "kl_maps.npz", images=images.numpy(), labels=labels,
             **({"raw_images": raw} if raw is not None else {}),
             **{f"kl_{index}": kl_map for index, kl_map in enumerate(maps)})
    written = plot_kl_maps(images.numpy(), labels, maps, paths.plots_dir, raw_images=raw)
    print(f"wrote {len(written)} heat-map figure(s) to {paths.plots_dir}")
    return written


def collect_log_output(model: nn.Module, images: Any, *, batch_size: int, device: Any, seed: int) -> torch.Tensor:
    """log z of the last InformationDropout layer over ``images``, noise on, batch norm frozen.

    Returns a float32 CPU tensor N x C x H x W. The model runs in evaluation mode (running
    batch-norm statistics) with every dropout's noise switched on, as the original's correlation
    command feeds ``sigma0=1`` and the input keep probability with ``is_training=False``.
    """
    layers = [m for m in model.modules() if isinstance(m, InformationDropout)]
    if not layers:
        raise ValueError("the model has no information-dropout layer; use dropout=information")
    device = resolve_device(device)
    outputs: list[torch.Tensor] = []
    handle = layers[-1].register_forward_hook(lambda _module, _inputs, output: outputs.append(output.detach().float().cpu()))
    model.eval()
    set_mc(model, True)
    for sub in model.modules():
        if isinstance(sub, nn.Dropout):
            sub.train()
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.no_grad():
            inputs = torch.as_tensor(np.asarray(images, dtype=np.float32))
            for start in range(0, len(inputs), batch_size):
                model(inputs[start : start + batch_size].to(device))
    finally:
        handle.remove()
        set_mc(model, False)
        model.eval()
        torch.random.set_rng_state(generator_state)
    output = torch.cat(outputs)
    if bool((output <= 0).any()):
        raise ValueError(
            f"{int((output <= 0).sum())} outputs of the last information-dropout layer are <= 0, so their log is "
            "undefined; correlation needs softplus activations (`with softplus`)"
        )
    return output.log()


def correlation(cfg: Any, experiment: ClassifierExperiment) -> float:
    """Total correlation (nats per unit) of log z of the last information-dropout layer.

    As the original ``correlation`` command: the trained network in evaluation mode (running
    batch-norm statistics), but with the information-dropout noise *on* and the input dropout on,
    over the test set; log z = log f(x) + alpha * eps is collected per test image, and
    :func:`infodrop.mi.gaussian_total_correlation` is taken either over all units at all
    locations (``correlation_mode=features``, the original) or over the channels with the
    locations pooled as extra samples (``correlation_mode=channels``).
    """
    if cfg.dropout != "information" or cfg.activations != "softplus":
        raise ValueError(
            "correlation needs information dropout with softplus activations (log z is -inf where "
            f"ReLU outputs 0), but dropout={cfg.dropout}, activations={cfg.activations}; train and run "
            f"it `with softplus`, e.g. `infodrop {experiment.name} correlation with softplus filter_percentage=0.25 beta=1.0`"
        )
    with holding_run(run_paths(cfg, experiment.config, experiment.name), experiment.name):
        return _correlation(cfg, experiment)


def _correlation(cfg: Any, experiment: ClassifierExperiment) -> float:
    _, test_split = experiment.load_data(cfg)
    model, paths = load_trained(cfg, experiment)
    log_z = collect_log_output(model, test_split[0], batch_size=cfg.batch_size, device=cfg.device, seed=cfg.seed)
    if cfg.correlation_mode == "features":
        samples = log_z.reshape(len(log_z), -1)
    else:
        samples = log_z.permute(0, 2, 3, 1).reshape(-1, log_z.shape[1])
    try:
        value = gaussian_total_correlation(samples)
    except ValueError as error:
        raise ValueError(
            f"{error} (with correlation_mode=features there is one variable per unit and location: try "
            "correlation_mode=channels or a smaller filter_percentage)"
        ) from None
    if is_main_process():
        print(f"Total correlation: {value:.6f} nats per unit ({cfg.correlation_mode}, run {paths.name})")
    record(paths, "correlation", {"total_correlation": value, "correlation_mode": cfg.correlation_mode,
                                  "samples": int(samples.shape[0]), "variables": int(samples.shape[1])})
    return value


def commands(experiment: ClassifierExperiment, names: Sequence[str]) -> dict[str, Callable[[Any], Any]]:
    """The recipe's commands ``names`` (of train, test, correlation, plot) for ``experiment``, each a
    function of the config alone, in that order. Each keeps the recipe's docstring, whose first
    paragraph ``infodrop EXPERIMENT COMMAND --help`` prints."""
    recipes: dict[str, Callable[[Any, ClassifierExperiment], Any]] = {
        "train": train, "test": test, "correlation": correlation, "plot": plot}
    bound = {}
    for name in names:
        def command(cfg: Any, recipe: Callable[[Any, ClassifierExperiment], Any] = recipes[name]) -> Any:
            return recipe(cfg, experiment)

        command.__name__ = command.__qualname__ = name
        command.__doc__ = recipes[name].__doc__
        bound[name] = command
    return bound
