"""Shared machinery of the experiments: configuration, presets, run names and the Hydra runner.

Configuration
    Each experiment's ``Config`` dataclass is registered in Hydra's ``ConfigStore`` and composed
    strictly (OmegaConf struct mode, typed fields): an unknown entry or a value of the wrong
    type is refused with a one-line :class:`ConfigError` that names the entry. Presets
    (``NAMED_CONFIGS``) are expanded into ordinary overrides *before* the explicit ones, so an
    explicit ``key=value`` always wins, as with sacred's named configs.

One path for single runs and sweeps
    Every command, single or ``--multirun``, goes through Hydra's own ``Hydra.run`` /
    ``Hydra.multirun`` (what ``@hydra.main`` calls), with these defaults placed first so that
    the user can still override them::

        hydra/job_logging=none hydra/hydra_logging=none hydra.output_subdir=null
        hydra.job.chdir=False hydra.run.dir=.
        hydra.sweep.dir=<runs_dir>/<experiment>/multirun/<date_time> hydra.sweep.subdir=.

    A single run therefore writes nothing of Hydra's; a sweep writes only the sweep record
    ``multirun.yaml`` under ``runs/<experiment>/multirun/``. Before any job starts, every job
    of a sweep is composed and validated, so a bad value in the fifth job of a sweep is
    refused before the first one trains.

    Sweeps use Hydra's BasicSweeper and BasicLauncher (one job after the other, locally):
    ``infodrop cifar train --multirun with beta=0.5,1,3``. To send the jobs to a SLURM cluster,
    install the launcher plugin (``pip install hydra-submitit-launcher``) and add
    ``hydra/launcher=submitit_slurm`` (plus its settings, e.g.
    ``hydra.launcher.partition=gpu hydra.launcher.gpus_per_node=1``) after ``with``.

    A command that refuses its input (a ``ValueError``: missing data, a checkpoint of another
    config, ...) makes the job return a :class:`JobFailure` instead of raising, so Hydra prints
    no trace and the CLI prints one line; ``INFODROP_TRACEBACK=1`` re-raises it instead.

    Under ``torchrun`` every rank runs the same jobs in the same order; one process group is
    held for the whole command (see :class:`_DistributedSession`), the engine trains with DDP,
    and only rank 0 prints and writes.

Run names
    A run is named after the entries whose values differ from the defaults, in the order of
    the ``Config`` fields, e.g. ``dropout=binary,filter_percentage=0.25`` (``default`` when none
    differs), like the original code's sacred names. Entries that cannot change the trained
    model (folders, ``epochs``, progress bars, the device, plot and prepare settings) are marked
    ``in_run_name=False`` and left out. ``epochs`` is left out on purpose: the learning-rate
    schedule is fixed by its milestones, so a run trained for more epochs continues the
    checkpoint of a shorter one instead of starting over. Artefacts of a run live at
    ``models/<experiment>/<name>.pt``, ``runs/<experiment>/<name>/`` and
    ``plots/<experiment>/<name>/`` (the experiment folder keeps ``cifar`` and ``cluttered``
    defaults apart).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from infodrop.checks import check_in_range, check_int, check_positive

__all__ = [
    "allcnn_options",
    "check_choice",
    "check_filters",
    "check_in_range_closed",
    "check_milestones",
    "check_prior",
    "check_subset",
    "collect_log_output",
    "command_names",
    "compose",
    "ConfigError",
    "entry",
    "format_config",
    "information_loss",
    "is_main_process",
    "load_trained",
    "model_config",
    "open_struct_off",
    "override_value",
    "plot_kl_maps",
    "prepare_hint",
    "preset_overrides",
    "print_config",
    "record",
    "require_files",
    "run_command",
    "run_name",
    "run_paths",
    "RunPaths",
    "SGDNesterov",
    "StepSchedule",
    "take",
    "test_classifier",
    "to_plain",
    "train_classifier",
    "validate_dropout_training",
    "weight_decay_parameters",
]


class ConfigError(ValueError):
    """A configuration or command-line mistake; the CLI prints its one-line message and exits 2."""


# ----------------------------------------------------------------------------- config fields


def entry(default: Any, help: str, *, in_run_name: bool = True) -> Any:
    """A ``Config`` field with its one-line help; ``in_run_name=False`` keeps it out of run names."""
    metadata = {"help": help, "in_run_name": in_run_name}
    if isinstance(default, (list, dict)):
        return field(default_factory=functools.partial(copy.deepcopy, default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _fields(module: ModuleType) -> list[dataclasses.Field]:
    return list(dataclasses.fields(module.Config))


def _defaults(module: ModuleType) -> dict[str, Any]:
    return dataclasses.asdict(module.Config())


def to_plain(cfg: Any) -> dict[str, Any]:
    """The composed config as a plain dict (lists and scalars only), for logs and checkpoints."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    return dict(cfg)


# ----------------------------------------------------------------------------- validation helpers


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError naming the entry."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; use one of: {', '.join(map(str, choices))}")
    return value


def check_subset(value: Any, name: str) -> int:
    """Subset sizes: 0 means the whole split, otherwise a positive number of samples."""
    return check_int(value, name, minimum=0)


def check_milestones(value: Sequence[int], name: str) -> list[int]:
    """Learning-rate milestones: increasing epochs >= 1 (an empty list means a constant rate)."""
    epochs = [check_int(v, f"{name}[{i}]", minimum=1) for i, v in enumerate(value)]
    if any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise ValueError(f"{name} must be strictly increasing epochs, got {epochs}")
    return epochs


def validate_dropout_training(cfg: Any) -> None:
    """Checks shared by the information-dropout experiments (cifar, cluttered).

    Each failure raises ValueError naming the entry and the allowed values.
    """
    check_choice(cfg.dropout, "dropout", ("information", "binary", "gaussian", "none"))
    check_choice(cfg.activations, "activations", ("relu", "softplus"))
    check_positive(cfg.beta, "beta", allow_zero=True)
    check_in_range(cfg.max_alpha, "max_alpha", 0.0, 1.0)
    check_positive(cfg.filter_percentage, "filter_percentage")
    check_positive(cfg.weight_decay, "weight_decay", allow_zero=True)
    check_positive(cfg.lr, "lr")
    check_in_range(cfg.lr_decay, "lr_decay", 0.0, 1.0)
    check_in_range(cfg.momentum, "momentum", 0.0, 1.0, low_open=False, high_open=True)
    check_in_range(cfg.keep_prob, "keep_prob", 0.0, 1.0)
    check_milestones(cfg.lr_milestones, "lr_milestones")
    check_int(cfg.batch_size, "batch_size", minimum=1)
    check_int(cfg.epochs, "epochs", minimum=1)
    check_int(cfg.checkpoint_every, "checkpoint_every", minimum=1)
    check_int(cfg.seed, "seed", minimum=0)
    check_subset(cfg.train_subset, "train_subset")
    check_subset(cfg.test_subset, "test_subset")
    check_int(cfg.plot_images, "plot_images", minimum=1)


# ----------------------------------------------------------------------------- command-line pieces


def override_value(value: Any) -> str:
    """Write a Python value in Hydra's override grammar (``true``, ``[40,80]``, ``null``, ``'a b'``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_./\-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def preset_overrides(module: ModuleType, preset: str, experiment: str = "") -> list[str]:
    """The overrides that the named config ``preset`` stands for, e.g. ``softplus`` ->
    ``['activations=softplus', 'lognorm_prior=true']``."""
    presets = getattr(module, "NAMED_CONFIGS", {})
    if preset not in presets:
        valid = ", ".join(presets) or "(none)"
        where = f" of {experiment}" if experiment else ""
        raise ConfigError(f"unknown named config {preset!r}{where}; valid named configs: {valid}")
    return [f"{key}={override_value(value)}" for key, value in presets[preset].items()]


def _parse_overrides(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    try:
        return parser.parse_overrides(list(overrides))
    except HydraException as error:
        raise ConfigError(_one_line(error)) from None


def _check_keys(module: ModuleType, experiment: str, parsed: Iterable[Any]) -> None:
    names = [f.name for f in _fields(module)]
    for override in parsed:
        if override.is_hydra_override():
            continue
        text = override.input_line or override.key_or_group
        if "/" in override.key_or_group or override.package is not None:
            raise ConfigError(f"{text!r}: {experiment} has no config groups; set entries as key=value")
        if override.is_delete() or override.is_add() or override.is_force_add():
            raise ConfigError(f"{text!r}: entries cannot be added or removed; set them as key=value")
        key = override.key_or_group
        if key.split(".")[0] not in names or "." in key:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown config entry {key!r} for {experiment}{hint}; "
                f"see `infodrop {experiment} print_config` for the valid entries"
            )


def _one_line(error: BaseException) -> str:
    """Compress a Hydra/OmegaConf error into one line naming the offending entry."""
    from omegaconf.errors import OmegaConfBaseException

    chain = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        if isinstance(item, OmegaConfBaseException) and getattr(item, "full_key", None):
            message = str(getattr(item, "msg", "") or str(item)).splitlines()[0]
            outer = str(chain[0]).splitlines()[0]
            return f"bad value for config entry {item.full_key!r}: {message} ({outer})"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = lines[0] if lines else type(error).__name__
    if "hydra/launcher" in message:
        message += "; Hydra launcher plugins are separate packages, e.g. pip install hydra-submitit-launcher"
    elif "Ambiguous value" in message:
        message += "; to sweep over several values add --multirun before `with`"
    return message


# ----------------------------------------------------------------------------- Hydra session


def _config_name(experiment: str) -> str:
    return f"infodrop_{experiment}"


def _hydra_defaults(module: ModuleType, experiment: str, stamp: str = "${now:%Y-%m-%d_%H-%M-%S}") -> list[str]:
    runs = "${runs_dir}" if "runs_dir" in [spec.name for spec in _fields(module)] else "runs"
    return [
        "hydra/job_logging=none",
        "hydra/hydra_logging=none",
        "hydra.output_subdir=null",
        "hydra.job.chdir=False",
        "hydra.run.dir=.",
        f"hydra.sweep.dir={runs}/{experiment}/multirun/{stamp}",
        "hydra.sweep.subdir=.",
    ]


class _DistributedSession:
    """Under ``torchrun`` (``RANK`` set), hold one process group for all the jobs of the command
    (:func:`infodrop.distributed.process_group`: ``fit`` then finds it and leaves it alone, so a
    sweep does not re-create it per job), and agree on one sweep-folder time stamp across the ranks.

    ``devices``: the ``device`` entries of the jobs. NCCL (one GPU per process) is used when they
    ask for CUDA (or leave it to the machine, ``None``, and it has CUDA); else gloo, so that
    ``device=cpu`` runs on a GPU machine too.
    """

    def __init__(self, devices: Any = (None,)) -> None:
        self.devices = set(devices)
        self.stamp = "${now:%Y-%m-%d_%H-%M-%S}"

    def _wants_cuda(self) -> bool:
        import torch

        if not torch.cuda.is_available():
            return False
        return all(device is None or str(device).startswith("cuda") for device in self.devices)

    def __enter__(self) -> "_DistributedSession":
        import datetime

        import torch.distributed as dist

        from infodrop.distributed import is_distributed, process_group, training_device

        self._group = None
        if not is_distributed():
            return self
        cuda = self._wants_cuda()
        if cuda:
            training_device(None)  # GPU LOCAL_RANK, checked, made current before NCCL starts
        self._group = process_group(cuda=cuda)
        self._group.__enter__()
        stamp = [datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")]
        dist.broadcast_object_list(stamp, src=0)
        self.stamp = stamp[0]
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._group is not None:
            self._group.__exit__(*exc_info)


class _HydraSession:
    """Registers the experiment's config and owns Hydra's global state for one CLI call."""

    def __init__(self, experiment: str, module: ModuleType):
        from hydra.core.config_store import ConfigStore

        self.experiment = experiment
        self.module = module
        self.config_name = _config_name(experiment)
        ConfigStore.instance().store(name=self.config_name, node=module.Config)

    def __enter__(self) -> "_HydraSession":
        from hydra._internal.hydra import Hydra
        from hydra._internal.utils import create_config_search_path
        from hydra.core.global_hydra import GlobalHydra

        from hydra import version

        version.setbase("1.3")  # what @hydra.main(version_base="1.3") would set
        # compose() may be called from inside a running job (a command composing a variant):
        # keep that job's Hydra and put it back on exit.
        state = GlobalHydra.instance()
        self.previous = state.hydra if state.is_initialized() else None
        state.clear()
        self.hydra = Hydra.create_main_hydra2(
            task_name=self.experiment, config_search_path=create_config_search_path(None)
        )
        return self

    def __exit__(self, *exc_info: Any) -> None:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()
        if self.previous is not None:
            GlobalHydra.instance().initialize(self.previous)

    def compose_job(self, overrides: Sequence[str]) -> DictConfig:
        """One job's config without the ``hydra`` node, validated and read-only."""
        from hydra.errors import HydraException
        from hydra.types import RunMode
        from omegaconf.errors import OmegaConfBaseException

        try:
            cfg = self.hydra.compose_config(self.config_name, list(overrides), run_mode=RunMode.RUN)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            raise ConfigError(_one_line(error)) from None
        with open_struct_off(cfg):
            del cfg["hydra"]
        OmegaConf.set_readonly(cfg, True)
        _validate(self.module, cfg)
        return cfg


class open_struct_off:
    """Context manager: lift struct and read-only flags of ``cfg`` for an edit."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def __enter__(self) -> DictConfig:
        self.flags = (OmegaConf.is_struct(self.cfg), OmegaConf.is_readonly(self.cfg))
        OmegaConf.set_readonly(self.cfg, False)
        OmegaConf.set_struct(self.cfg, False)
        return self.cfg

    def __exit__(self, *exc_info: Any) -> None:
        OmegaConf.set_struct(self.cfg, self.flags[0])
        OmegaConf.set_readonly(self.cfg, self.flags[1])


def _validate(module: ModuleType, cfg: DictConfig) -> None:
    try:
        module.validate(cfg)
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(f"bad config value: {error}") from None


def _job_overrides(parsed: Sequence[Any], multirun: bool) -> list[list[str]]:
    """Expand sweep overrides into one override list per job (Hydra's BasicSweeper rules)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.errors import HydraException

    if not multirun:
        return [[override.input_line for override in parsed]]
    try:
        return BasicSweeper.split_arguments(list(parsed), None)[0]
    except HydraException as error:
        raise ConfigError(_one_line(error)) from None


def _resolve(experiment: str, module: ModuleType | None) -> ModuleType:
    if module is not None:
        return module
    from infodrop.experiments import available_experiments, load_experiment

    found = load_experiment(experiment)
    if found is None:
        raise ConfigError(
            f"unknown experiment {experiment!r}; valid experiments: {', '.join(available_experiments())}"
        )
    return found


def compose(experiment: str, overrides: Sequence[str] = (), *, module: ModuleType | None = None) -> DictConfig:
    """Compose one experiment's config from Hydra overrides, strictly, and validate it.

    ``compose("cifar", ["softplus", "beta=0.5"])`` returns a read-only ``DictConfig`` of
    ``cifar.Config``; a word without ``=`` is a named config, expanded where it stands (so put
    presets first for explicit settings to win, as on the command line). Raises :class:`ConfigError` for an unknown entry, a wrong
    type or a value that ``validate`` refuses.
    """
    module = _resolve(experiment, module)
    expanded: list[str] = []
    for word in overrides:
        expanded += preset_overrides(module, word, experiment) if "=" not in word else [word]
    overrides = expanded
    parsed = _parse_overrides(overrides)
    _check_keys(module, experiment, parsed)
    with _HydraSession(experiment, module) as session:
        return session.compose_job(_hydra_defaults(module, experiment) + list(overrides))


@dataclass
class JobFailure:
    """Returned (not raised) by a job whose command refused its input, so Hydra prints no trace."""

    message: str


def _job(cfg: DictConfig, *, experiment: str, command: str) -> Any:
    # Module-level and picklable: remote launchers (submitit) ship this function to the nodes.
    module = _resolve(experiment, None)
    OmegaConf.set_readonly(cfg, True)
    try:
        _validate(module, cfg)
        if command == "print_config":
            return print_config(cfg, module=module, experiment=experiment)
        return module.COMMANDS[command](cfg)
    except ValueError as error:  # includes ConfigError and infodrop.data.DataError
        import os

        if os.environ.get("INFODROP_TRACEBACK"):  # for debugging: the full stack trace instead
            raise
        return JobFailure(str(error))


def command_names(module: ModuleType) -> list[str]:
    """The commands of an experiment: its ``COMMANDS`` plus the generic ``print_config``."""
    return list(getattr(module, "COMMANDS", {})) + ["print_config"]


def run_command(
    experiment: str,
    command: str,
    overrides: Sequence[str] = (),
    *,
    multirun: bool = False,
    module: ModuleType | None = None,
) -> list[Any]:
    """Run ``command`` of ``experiment`` through Hydra once, or once per sweep point.

    Every job is composed and validated before the first one starts. Returns the commands'
    return values, one per job. Raises :class:`ConfigError` (one line) for mistakes in the
    command line and for a job that refused its input (missing data files, for instance).
    """
    module = _resolve(experiment, module)
    if command not in command_names(module):
        raise ConfigError(
            f"unknown command {command!r} for {experiment}; valid commands: {', '.join(command_names(module))}"
        )
    parsed = _parse_overrides(overrides)
    _check_keys(module, experiment, parsed)
    task = functools.partial(_job, experiment=experiment, command=command)
    with _HydraSession(experiment, module) as session:
        devices = set()
        for job in _job_overrides(_parse_overrides(_hydra_defaults(module, experiment) + list(overrides)), multirun):
            devices.add(session.compose_job(job).get("device"))
        with _DistributedSession(devices) as distributed:
            all_overrides = _hydra_defaults(module, experiment, distributed.stamp) + list(overrides)
            returns = _launch(session, task, all_overrides, multirun)
    results = []
    for ret in returns:
        value = ret.return_value
        if isinstance(value, JobFailure):
            shown = [item for item in ret.overrides or [] if not item.startswith("hydra")]
            prefix = f"job {' '.join(shown)}: " if multirun and shown else ""
            raise ConfigError(prefix + value.message)
        results.append(value)
    return results


def _launch(session: _HydraSession, task: Callable[..., Any], all_overrides: list[str], multirun: bool) -> list[Any]:
    """Hydra's own run / multirun (what ``@hydra.main`` does); returns the JobReturns."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        if multirun:
            return [ret for batch in session.hydra.multirun(session.config_name, task, all_overrides) for ret in batch]
        return [session.hydra.run(session.config_name, task, all_overrides)]
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(_one_line(error)) from None


# ----------------------------------------------------------------------------- names and folders


def _name_value(value: Any) -> str:
    if isinstance(value, (list, tuple, ListConfig)):
        return "-".join(_name_value(v) for v in value) or "none"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def run_name(cfg: Any, module: ModuleType) -> str:
    """``key=value`` pairs of the model-relevant entries that differ from the defaults.

    Joined by commas in ``Config`` field order; characters other than letters, digits and
    ``._=,-`` become ``_``; ``default`` when nothing differs. A name longer than 200
    characters is cut and completed with a hash of the full name so it stays unique.
    """
    defaults = _defaults(module)
    parts = []
    for spec in _fields(module):
        if not spec.metadata.get("in_run_name", True):
            continue
        value = cfg[spec.name]
        if isinstance(value, ListConfig):
            value = list(value)
        if value != defaults[spec.name]:
            parts.append(f"{spec.name}={_name_value(value)}")
    if not parts:
        return "default"
    name = re.sub(r"[^A-Za-z0-9._=,\-]", "_", ",".join(parts))
    if len(name) > 200:
        import hashlib

        name = name[:180] + "-" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


def model_config(cfg: Any, module: ModuleType) -> dict[str, Any]:
    """The entries that define the trained model (those that enter the run name), as plain values."""
    plain = to_plain(cfg)
    return {spec.name: plain[spec.name] for spec in _fields(module) if spec.metadata.get("in_run_name", True)}


@dataclass(frozen=True)
class RunPaths:
    """Where a run's artefacts live, all relative to the working directory by default."""

    name: str
    model_file: Path
    run_dir: Path
    plots_dir: Path


def run_paths(cfg: Any, module: ModuleType, experiment: str) -> RunPaths:
    """``models/<experiment>/<name>.pt``, ``runs/<experiment>/<name>/``, ``plots/<experiment>/<name>/``."""
    name = run_name(cfg, module)
    return RunPaths(
        name=name,
        model_file=Path(cfg.models_dir) / experiment / f"{name}.pt",
        run_dir=Path(cfg.runs_dir) / experiment / name,
        plots_dir=Path(cfg.plots_dir) / experiment / name,
    )


# ----------------------------------------------------------------------------- print_config


def format_config(cfg: Any, module: ModuleType, experiment: str = "") -> str:
    """Every entry with its value and one-line help; ``*`` marks values changed from the defaults."""
    defaults = _defaults(module)
    specs = _fields(module)
    rows = []
    for spec in specs:
        value = cfg[spec.name]
        if isinstance(value, ListConfig):
            value = list(value)
        mark = "*" if value != defaults[spec.name] else " "
        shown = override_value(value) if not isinstance(value, str) else repr(value)
        rows.append((mark, f"{spec.name} = {shown}", spec.metadata.get("help", "")))
    width = max(len(text) for _, text, _ in rows)
    title = f"Configuration of {experiment}" if experiment else "Configuration"
    lines = [f"{title} (* = changed from the default):"]
    lines += [f"{mark} {text.ljust(width)}  # {help}" for mark, text, help in rows]
    presets = getattr(module, "NAMED_CONFIGS", {})
    if presets:
        lines.append("Named configs (bare words after `with`):")
        for preset, values in presets.items():
            settings = " ".join(f"{k}={override_value(v)}" for k, v in values.items())
            lines.append(f"  {preset}: {settings}")
    lines.append(f"Run name: {run_name(cfg, module)}")
    return "\n".join(lines)


def print_config(cfg: Any, *, module: ModuleType, experiment: str = "") -> str:
    """Print :func:`format_config` to stdout and return the text."""
    text = format_config(cfg, module, experiment)
    print(text)
    sys.stdout.flush()
    return text


# ----------------------------------------------------------------------------- more validation


def check_in_range_closed(value: Any, name: str) -> float:
    """Probabilities that may be 1 but not 0, e.g. keep probabilities: (0, 1]."""
    return check_in_range(value, name, 0.0, 1.0)


def check_prior(cfg: Any) -> None:
    """The log-normal prior needs positive activations: refuse ``lognorm_prior`` with ReLU."""
    if cfg.lognorm_prior and cfg.activations != "softplus":
        raise ValueError(
            f"lognorm_prior=True needs activations=softplus (log f(x) must exist), got activations={cfg.activations}; "
            "use the `softplus` named config or lognorm_prior=false"
        )


def check_filters(filter_percentage: float, base_widths: Sequence[int]) -> None:
    """Every block keeps at least one filter: int(width * filter_percentage) >= 1."""
    smallest = min(base_widths)
    if int(smallest * filter_percentage) < 1:
        raise ValueError(
            f"filter_percentage={filter_percentage} leaves no filter in the {smallest}-filter block; "
            f"use filter_percentage >= {1.0 / smallest:.4f}"
        )


# ----------------------------------------------------------------------------- data helpers

Split = tuple  # (images float32 N x C x H x W, labels int64 N), numpy


def require_files(paths: Iterable[Path], hint: str) -> None:
    """Raise DataError naming the first missing file and the command that makes it."""
    from infodrop.data import DataError

    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"{path}: file not found; {hint}")


def take(split: tuple[Any, Any], count: int, name: str) -> tuple[Any, Any]:
    """The first ``count`` samples of a split (all of them for 0); more than there are is an error."""
    images, labels = split[0], split[1]
    if count == 0:
        return images, labels
    if count > len(images):
        raise ValueError(f"{name}={count} but the file has only {len(images)} samples; use {name} <= {len(images)} or 0 for all")
    return images[:count], labels[:count]


# ----------------------------------------------------------------------------- training pieces


def information_loss(*, beta: float, train_size: int, weight_decay: float) -> Callable[..., Any]:
    """The original ``build_loss`` as an engine loss ``loss(model, logits, targets) -> (loss, parts)``.

    loss = CE + beta * kl_divergence(model) / train_size + weight_decay * sum_p ||p||^2 / 2, with
    CE the batch-mean cross-entropy (nats), ``kl_divergence`` the batch-mean per-sample KL summed
    over the information-dropout layers (nats), and the last term TensorFlow's ``l2_loss`` summed
    over the parameters the original has as trainable variables: every parameter except the
    batch-norm scales (TensorFlow's ``batch_norm`` has no scale by default, PyTorch's has one;
    decaying it would add a regulariser the original lacks). Batch-norm shifts, biases and the
    log-normal prior's ``mu1``/``sigma1`` are included, as in the original. ``parts`` holds detached 0-dim tensors: ``cross_entropy``, ``kl``
    (per sample, before the division by ``train_size``) and, with weight decay, ``l2`` (the half
    sum of squares, before the factor ``weight_decay``).
    """
    import torch
    from torch.nn import functional

    from infodrop.nn import kl_divergence

    beta = check_positive(beta, "beta", allow_zero=True)
    weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
    train_size = check_int(train_size, "train_size", minimum=1)

    decayed: dict[int, list[Any]] = {}

    def loss(model: Any, logits: Any, targets: Any) -> tuple[Any, dict[str, float]]:
        cross_entropy = functional.cross_entropy(logits, targets)
        kl = kl_divergence(model)
        total = cross_entropy + beta * kl / train_size
        # Detached tensors, not floats: a float() per batch would synchronise with the GPU.
        parts = {"cross_entropy": cross_entropy.detach(), "kl": kl.detach()}
        if weight_decay > 0:
            if id(model) not in decayed:
                decayed[id(model)] = weight_decay_parameters(model)
            half_squares = torch.stack([p.pow(2).sum() for p in decayed[id(model)]]).sum() / 2
            total = total + weight_decay * half_squares
            parts["l2"] = half_squares.detach()
        return total, parts

    return loss


def weight_decay_parameters(model: Any) -> list[Any]:
    """The trainable parameters of ``model`` except batch-norm scales (see :func:`information_loss`)."""
    from torch import nn

    scales = {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._NormBase) and module.weight is not None
    }
    return [p for p in model.parameters() if p.requires_grad and id(p) not in scales]


class SGDNesterov:
    """``make_optimizer`` for the engine: SGD with Nesterov momentum and no built-in weight decay
    (the weight decay is a loss term). Accepts a module or an iterable of parameters."""

    def __init__(self, lr: float, momentum: float):
        self.lr, self.momentum = lr, momentum

    def __call__(self, model_or_parameters: Any) -> Any:
        import torch

        parameters = model_or_parameters.parameters() if isinstance(model_or_parameters, torch.nn.Module) else model_or_parameters
        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, nesterov=self.momentum > 0)


class StepSchedule:
    """``make_scheduler`` for the engine: learning rate times ``decay`` at each milestone epoch
    (the original: epoch i < drop1 uses lr, i < drop2 uses lr * 0.1, ...); stepped once per epoch."""

    def __init__(self, milestones: Sequence[int], decay: float):
        self.milestones, self.decay = list(milestones), decay

    def __call__(self, optimizer: Any) -> Any:
        import torch

        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=self.milestones, gamma=self.decay)


def is_main_process() -> bool:
    """Rank 0 of a ``torchrun`` launch, or the only process: the one that prints and writes."""
    from infodrop.distributed import is_main_process as main

    return main()


def record(paths: RunPaths, command: str, results: dict[str, Any]) -> None:
    """Add a command's results to the run record: a line in ``metrics.jsonl`` and ``<command>.json``."""
    import json

    from infodrop.io import append_line, write_json

    if not is_main_process():
        return
    line = {"command": command, **results}
    append_line(paths.run_dir / "metrics.jsonl", json.dumps(line))
    write_json(paths.run_dir / f"{command}.json", line)


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


def prepare_hint(cfg: Any, experiment: str, source: str) -> str:
    """The sentence that tells which ``prepare`` command writes the data files ``cfg`` reads."""
    extra = "" if cfg.data_dir == "datasets" else f" data_dir={cfg.data_dir}"
    return f"run `infodrop {experiment} prepare with source={source}{extra}` first"


def train_classifier(cfg: Any, experiment: str, module: ModuleType, model: Any, train: Split, test: Split) -> dict[str, Any]:
    """Train ``model`` with the information-dropout loss, checkpointing under the run's name."""
    from infodrop.data import as_tensor_dataset
    from infodrop.engine import Checkpointing, Reporting, Run, Training, fit

    paths = run_paths(cfg, module, experiment)
    train_set, test_set = as_tensor_dataset(*train), as_tensor_dataset(*test)
    if is_main_process():
        print(f"run {paths.name}: {len(train_set)} training and {len(test_set)} test images; checkpoint {paths.model_file}")
    run = Run(paths.run_dir, config=to_plain(cfg))
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
        ),
        # Only the entries that define the run go into the checkpoint, so that resuming with
        # more epochs, another device or other folders is allowed and anything else is refused.
        checkpointing=Checkpointing(path=paths.model_file, every=cfg.checkpoint_every, config=model_config(cfg, module)),
        reporting=Reporting(run=run, progress=cfg.progress),
        device=cfg.device,
    )
    if is_main_process() and "test_error" in result:
        print(
            f"run {paths.name}: test error {100 * result['test_error']:.2f}% after epoch {result['epoch']} "
            f"(batch-norm statistics of training; `infodrop {experiment} test` re-estimates them); record in {paths.run_dir}"
        )
    return result


def load_trained(cfg: Any, experiment: str, module: ModuleType, model: Any) -> tuple[Any, RunPaths]:
    """Load the checkpoint of the run named after ``cfg`` into ``model`` (on the config's device)."""
    from infodrop.checks import resolve_device
    from infodrop.engine import load_checkpoint

    paths = run_paths(cfg, module, experiment)
    if not paths.model_file.is_file():
        raise ValueError(
            f"{paths.model_file}: no trained model for run {paths.name}; train it first with "
            f"`infodrop {experiment} train` and the same settings"
        )
    state = load_checkpoint(paths.model_file)
    if "model" not in state:
        raise ValueError(f"{paths.model_file} holds no 'model' entry; it was not written by `infodrop {experiment} train`")
    model.load_state_dict(state["model"])
    return model.to(resolve_device(cfg.device)), paths


def test_classifier(cfg: Any, experiment: str, module: ModuleType, model: Any, train: Split, test: Split) -> dict[str, float]:
    """Reload the run, recompute batch-norm statistics without noise, report the test error."""
    from infodrop.data import as_tensor_dataset
    from infodrop.engine import evaluate, recompute_batchnorm

    model, paths = load_trained(cfg, experiment, module, model)
    train_set, test_set = as_tensor_dataset(*train), as_tensor_dataset(*test)
    recompute_batchnorm(model, train_set, batch_size=cfg.batch_size, device=cfg.device)
    metrics = {key: float(value) for key, value in evaluate(model, test_set, batch_size=cfg.batch_size, device=cfg.device).items()}
    if is_main_process():
        print(f"Test error: {100 * metrics['error']:.2f}% (loss {metrics['loss']:.4f}) of run {paths.name} on {len(test_set)} images")
    record(paths, "test", {f"test_{key}": value for key, value in metrics.items()})
    return metrics


def collect_log_output(model: Any, dataset: Split, *, batch_size: int, device: Any, seed: int) -> Any:
    """log z of the last InformationDropout layer over ``dataset``, noise on, batch norm frozen.

    Returns a float32 CPU tensor N x C x H x W. The model runs in evaluation mode (running
    batch-norm statistics) with every dropout's noise switched on, as the original's correlation
    command feeds ``sigma0=1`` and the input keep probability with ``is_training=False``.
    """
    import torch

    from infodrop.checks import resolve_device
    from infodrop.nn import InformationDropout, set_mc

    layers = [m for m in model.modules() if isinstance(m, InformationDropout)]
    if not layers:
        raise ValueError("the model has no information-dropout layer; use dropout=information")
    last = layers[-1]
    device = resolve_device(device)
    outputs: list[Any] = []
    handle = last.register_forward_hook(lambda _module, _inputs, output: outputs.append(output.detach().float().cpu()))
    model.eval()
    set_mc(model, True)
    for sub in model.modules():
        if isinstance(sub, torch.nn.Dropout):
            sub.train()
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.no_grad():
            images = torch.as_tensor(np.asarray(dataset[0], dtype=np.float32))
            for start in range(0, len(images), batch_size):
                model(images[start : start + batch_size].to(device))
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


def plot_kl_maps(cfg: Any, experiment: str, module: ModuleType, model: Any, train: Split, test: Split) -> list[Path]:
    """Per-location KL heat maps of every information-dropout layer, next to the input image.

    For each of the first ``plot_images`` test images, one PNG ``plots/<experiment>/<run>/kl_<j>.png``
    with the image and one panel per layer: ``kl_map`` (nats summed over channels at each
    location) of the noiseless forward pass after the batch-norm statistics are recomputed as for
    ``test``. Colour scales are per panel; the original subtracts each layer's minimum, which
    changes nothing under a per-panel scale.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from infodrop.checks import resolve_device
    from infodrop.data import as_tensor_dataset
    from infodrop.engine import recompute_batchnorm
    from infodrop.io import atomic_path
    from infodrop.nn import InformationDropout

    if cfg.dropout != "information":
        raise ValueError(f"plot draws the KL maps of information dropout, but dropout={cfg.dropout}; use dropout=information")
    model, paths = load_trained(cfg, experiment, module, model)
    recompute_batchnorm(model, as_tensor_dataset(*train), batch_size=cfg.batch_size, device=cfg.device)
    if not is_main_process():
        return []
    layers = [m for m in model.modules() if isinstance(m, InformationDropout)]
    count = min(cfg.plot_images, len(test[0]))
    images = torch.as_tensor(np.asarray(test[0][:count], dtype=np.float32))
    model.eval()
    with torch.no_grad():
        model(images.to(resolve_device(cfg.device)))
    maps = [layer.kl_map.float().cpu().numpy() for layer in layers]
    written = []
    for j in range(count):
        figure, axes = plt.subplots(1, 1 + len(maps), figsize=(2.6 * (1 + len(maps)), 2.8), squeeze=False)
        picture = images[j].numpy().transpose(1, 2, 0)
        low, high = picture.min(), picture.max()
        picture = (picture - low) / (high - low) if high > low else np.zeros_like(picture)
        axes[0, 0].imshow(picture[:, :, 0] if picture.shape[2] == 1 else picture, cmap="gray" if picture.shape[2] == 1 else None, interpolation="none")
        axes[0, 0].set_title(f"input (label {int(test[1][j])})", fontsize=9)
        for i, kl_map in enumerate(maps):
            shown = axes[0, i + 1].imshow(kl_map[j], cmap="Blues", interpolation="none")
            axes[0, i + 1].set_title(f"KL, dropout layer {i + 1}", fontsize=9)
            figure.colorbar(shown, ax=axes[0, i + 1], fraction=0.046, pad=0.04)
        for axis in axes[0]:
            axis.axis("off")
        figure.tight_layout()
        target = paths.plots_dir / f"kl_{j}.png"
        with atomic_path(target) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
        plt.close(figure)
        written.append(target)
    print(f"wrote {len(written)} heat-map figure(s) to {paths.plots_dir}")
    return written
