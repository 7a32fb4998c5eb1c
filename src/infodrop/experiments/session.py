"""The Hydra and torchrun session of one command: composition, presets, single runs and sweeps.

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
    ``infodrop cifar train --multirun with beta=0.5,1,3``. With ``jobs_per_device=N`` (N > 1)
    each job Hydra launches is handed to a :class:`~infodrop.experiments.pool.JobPool` instead,
    which trains up to N of them at once on the device, each in a process of its own (its own
    run folder, checkpoint and seed, as in sequence), its output lines prefixed with the job's
    swept settings; a job that fails is named and the others complete. To send the jobs to a SLURM cluster,
    install the launcher plugin (``pip install hydra-submitit-launcher``) and add
    ``hydra/launcher=submitit_slurm`` (plus its settings, e.g.
    ``hydra.launcher.partition=gpu hydra.launcher.gpus_per_node=1``) after ``with``.

    A command that refuses its input (a ``ValueError``: missing data, a checkpoint of another
    config, ...) makes the job return a :class:`JobFailure` instead of raising, so Hydra prints
    no trace and the CLI prints one line; ``INFODROP_TRACEBACK=1`` re-raises it instead.

    Under ``torchrun`` every rank runs the same jobs in the same order; one process group is
    held for the whole command (:func:`infodrop.distributed.process_group`), the engine trains with DDP,
    and only rank 0 prints and writes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import difflib
import functools
import os
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
import torch.distributed as dist
from hydra import version
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from infodrop.distributed import is_distributed, process_group, training_device
from infodrop.experiments import available_experiments, load_experiment
from infodrop.experiments.config import ConfigError, override_value, wrong_type_message
from infodrop.experiments.pool import JobPool
from infodrop.experiments.printing import print_config
from infodrop.io import DiskFullError, RunLockedError
from infodrop.io.paths import check_output_folder

__all__ = ["ConfigError", "JobFailure", "SweepFailure", "command_names", "compose", "preset_overrides", "run_command"]


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
    parser = OverridesParser.create()
    try:
        return parser.parse_overrides(list(overrides))
    except HydraException as error:
        raise ConfigError(_quoting_advice(parser, overrides) or _one_line(error)) from None


def _quoting_advice(parser: Any, overrides: Sequence[str]) -> str | None:
    """For an override that fails only because its value holds non-ASCII characters (a path such
    as /tmp/модели), which Hydra's grammar takes only inside quotes: one line saying how to quote
    it. None when that is not the problem."""
    for text in overrides:
        key, equals, value = text.partition("=")
        if not equals or value.isascii() or value[:1] in ("'", '"'):
            continue
        quoted = f"{key}='{value}'" if "'" not in value else f'{key}="{value}"'
        try:
            parser.parse_overrides([text])
        except HydraException:
            try:
                parser.parse_overrides([quoted])
            except HydraException:
                return None
            first = next(character for character in value if not character.isascii())
            return (
                f"{text}: the override grammar takes non-ASCII characters (here {first!r}) only inside quotes; write "
                f"{quoted} (in a shell, quote it again: \"{quoted}\")"
            )
    return None


def _check_keys(module: ModuleType, experiment: str, parsed: Iterable[Any]) -> None:
    names = [f.name for f in dataclasses.fields(module.Config)]
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


def _one_line(error: BaseException, config_class: type | None = None) -> str:
    """Compress a Hydra/OmegaConf error into one line naming the offending entry; a value of the
    wrong type for an entry of ``config_class`` in our words (:func:`wrong_type_message`)."""
    chain = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        if isinstance(item, ValidationError) and getattr(item, "full_key", None) and config_class is not None:
            message = wrong_type_message(item.full_key, item.value, config_class)
            if message:
                return message
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
        message += _ambiguous_hint(message, config_class)
    return message


def _ambiguous_hint(message: str, config_class: type | None) -> str:
    """What ``key=a,b`` (Hydra's sweep syntax) should have been: a list in brackets for an entry
    that holds a list (``plane_subsets=[1,4]``), else --multirun for a sweep."""
    found = re.search(r"argument '([^=']+)=([^']*)'", message)
    sweep = "to sweep over several values add --multirun before `with`"
    if not found:
        return f"; {sweep}"
    key, value = found.groups()
    fields = {spec.name: str(spec.type) for spec in dataclasses.fields(config_class)} if config_class is not None else {}
    as_list = f"{key}=[{value}]"
    if any(word in fields.get(key, "") for word in ("list", "List", "tuple", "Tuple", "Sequence")):
        return f"; {key} takes a list: write {as_list} (or, {sweep})"
    if key not in fields:
        return f"; for a list write {as_list}; {sweep}"
    return f"; {sweep}"


# ----------------------------------------------------------------------------- Hydra session


def _config_name(experiment: str) -> str:
    return f"infodrop_{experiment}"


def _hydra_defaults(module: ModuleType, experiment: str, stamp: str = "${now:%Y-%m-%d_%H-%M-%S}") -> list[str]:
    runs = "${runs_dir}" if "runs_dir" in [spec.name for spec in dataclasses.fields(module.Config)] else "runs"
    return [
        "hydra/job_logging=none",
        "hydra/hydra_logging=none",
        "hydra.output_subdir=null",
        "hydra.job.chdir=False",
        "hydra.run.dir=.",
        f"hydra.sweep.dir={runs}/{experiment}/multirun/{stamp}",
        "hydra.sweep.subdir=.",
    ]


@contextlib.contextmanager
def _distributed_session(devices: Iterable[Any]) -> Iterator[str]:
    """Under ``torchrun`` (``RANK`` set), hold one process group for all the jobs of the command
    (:func:`infodrop.distributed.process_group`; ``fit`` then finds it and leaves it alone, so a
    sweep does not re-create it per job) and yield the sweep-folder time stamp the ranks agree on.

    ``devices``: the ``device`` entries of the jobs. NCCL (one GPU per process) is used when they
    ask for CUDA (or leave it to the machine, ``None``, and it has CUDA); else gloo, so that
    ``device=cpu`` runs on a GPU machine too.
    """
    if not is_distributed():
        yield "${now:%Y-%m-%d_%H-%M-%S}"
        return
    cuda = torch.cuda.is_available() and all(device is None or str(device).startswith("cuda") for device in devices)
    if cuda:
        training_device(None)  # GPU LOCAL_RANK, checked and made current before NCCL starts
    with process_group(cuda=cuda):
        stamp = [datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")]
        dist.broadcast_object_list(stamp, src=0)
        yield stamp[0]


class _HydraSession:
    """Registers the experiment's config and owns Hydra's global state for one CLI call."""

    def __init__(self, experiment: str, module: ModuleType):
        self.experiment = experiment
        self.module = module
        self.config_name = _config_name(experiment)
        ConfigStore.instance().store(name=self.config_name, node=module.Config)

    def __enter__(self) -> "_HydraSession":
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
        GlobalHydra.instance().clear()
        if self.previous is not None:
            GlobalHydra.instance().initialize(self.previous)

    def compose_job(self, overrides: Sequence[str]) -> DictConfig:
        """One job's config without the ``hydra`` node, validated and read-only."""
        try:
            cfg = self.hydra.compose_config(self.config_name, list(overrides), run_mode=RunMode.RUN)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            raise ConfigError(_one_line(error, self.module.Config)) from None
        with _open_struct_off(cfg):
            del cfg["hydra"]
        OmegaConf.set_readonly(cfg, True)
        _validate(self.module, cfg)
        return cfg


class _open_struct_off:
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


# The folders a command writes to; checked before any work (a run that trained for an hour
# must not fail at its first checkpoint because models_dir names a file or a read-only disk).
OUTPUT_FOLDERS = ("models_dir", "runs_dir", "plots_dir")


def _check_output_folders(cfg: DictConfig) -> None:
    for name in OUTPUT_FOLDERS:
        if name in cfg and cfg[name] is not None:
            try:
                check_output_folder(cfg[name], name)
            except ValueError as error:
                raise ConfigError(f"bad config value: {error}") from None


def _job_overrides(parsed: Sequence[Any], multirun: bool) -> list[list[str]]:
    """Expand sweep overrides into one override list per job (Hydra's BasicSweeper rules)."""
    if not multirun:
        return [[override.input_line for override in parsed]]
    try:
        return BasicSweeper.split_arguments(list(parsed), None)[0]
    except HydraException as error:
        raise ConfigError(_one_line(error)) from None


def _resolve(experiment: str, module: ModuleType | None) -> ModuleType:
    if module is not None:
        return module
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


class SweepFailure(RuntimeError):
    """Jobs of a sweep run with ``jobs_per_device > 1`` failed (each job's trace was printed with
    its prefix); the message names them and their errors, in one line."""


def _job(cfg: DictConfig, *, experiment: str, command: str) -> Any:
    # Module-level and picklable: remote launchers (submitit) ship this function to the nodes.
    module = _resolve(experiment, None)
    OmegaConf.set_readonly(cfg, True)
    try:
        _validate(module, cfg)
        if command == "print_config":
            return print_config(cfg, module=module, experiment=experiment)
        return module.COMMANDS[command](cfg)
    # What the user can act on, in one line: values (ConfigError, DataError, a damaged file,
    # divergence: all ValueErrors), a run another process holds, a full disk.
    except (ValueError, RunLockedError, DiskFullError) as error:
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
        jobs = _job_overrides(_parse_overrides(_hydra_defaults(module, experiment) + list(overrides)), multirun)
        configs = [session.compose_job(job) for job in jobs]
        if command != "print_config":
            for cfg in configs:
                _check_output_folders(cfg)
        workers = _jobs_per_device(configs, multirun)
        with _distributed_session({cfg.get("device") for cfg in configs}) as stamp:
            all_overrides = _hydra_defaults(module, experiment, stamp) + list(overrides)
            if workers == 1:
                returns = _launch(session, task, all_overrides, multirun)
                values = [(ret.overrides, ret.return_value) for ret in returns]
            else:
                values = _launch_in_pool(session, task, all_overrides, jobs, workers)
    results = []
    for job_overrides, value in values:
        if isinstance(value, JobFailure):
            shown = [item for item in job_overrides or [] if not item.startswith("hydra")]
            prefix = f"job {' '.join(shown)}: " if multirun and shown else ""
            raise ConfigError(prefix + value.message)
        results.append(value)
    return results


def _jobs_per_device(configs: Sequence[DictConfig], multirun: bool = True) -> int:
    """The sweep's ``jobs_per_device`` (1 for experiments without the entry): one value for all jobs.
    The value is checked with or without ``--multirun`` (a 0 is a typo either way); a single
    run is always one job (1)."""
    values = sorted({cfg.get("jobs_per_device", 1) for cfg in configs})
    if len(values) > 1:
        raise ConfigError(f"jobs_per_device must be one value for the whole sweep, got {values}; do not sweep over it")
    workers = values[0]
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"jobs_per_device must be an integer >= 1, got {workers!r}; use jobs_per_device=1 (one job at a time) or more")
    if not multirun:
        return 1
    if workers > 1 and is_distributed():
        raise ConfigError("jobs_per_device > 1 under torchrun: torchrun already runs one process per device; use jobs_per_device=1")
    return workers


def _launch_in_pool(session: _HydraSession, task: Callable[..., Any], all_overrides: list[str], jobs: Sequence[Sequence[str]],
                    workers: int) -> list[tuple[list[str], Any]]:
    """Hydra's multirun with each job handed to a :class:`JobPool` of ``workers`` processes; returns
    (overrides, value) per job in Hydra's order. Raises :class:`SweepFailure` naming failed jobs."""
    labels = _job_labels(jobs)
    pool = JobPool(workers)

    def submit(cfg: DictConfig) -> int:
        number = HydraConfig.get().job.num
        job_cfg = copy.deepcopy(cfg)
        OmegaConf.set_readonly(job_cfg, False)
        OmegaConf.resolve(job_cfg)  # interpolations need Hydra's state, which stays in this process
        OmegaConf.set_readonly(job_cfg, True)
        pool.submit(task, job_cfg, label=labels[number])
        return number

    returns = _launch(session, submit, all_overrides, multirun=True)
    outcomes = pool.wait()
    # A job fails by raising (its trace was printed) or by refusing in one line (a JobFailure:
    # a bad value or file, a held run, divergence).
    failed = [(outcome.label, outcome.error if outcome.failed else outcome.value.message)
              for outcome in outcomes if outcome.failed or isinstance(outcome.value, JobFailure)]
    if failed:
        named = "; ".join(f"job {label}: {reason}" for label, reason in failed)
        raise SweepFailure(f"{len(failed)} of {len(outcomes)} jobs failed: {named}")
    return [(ret.overrides, outcomes[index].value) for index, ret in enumerate(returns)]


def _job_labels(jobs: Sequence[Sequence[str]]) -> list[str]:
    """Each job's name for its output prefix: its settings that differ between the jobs."""
    user = [[item for item in job if not item.startswith("hydra")] for job in jobs]
    if len({len(job) for job in user}) != 1:  # not a product of values: show each job's settings
        return [" ".join(job) or f"job {number}" for number, job in enumerate(user)]
    varying = [index for index in range(len(user[0])) if len({job[index] for job in user}) > 1]
    return [" ".join(job[index] for index in varying) or f"job {number}" for number, job in enumerate(user)]


def _launch(session: _HydraSession, task: Callable[..., Any], all_overrides: list[str], multirun: bool) -> list[Any]:
    """Hydra's own run / multirun (what ``@hydra.main`` does); returns the JobReturns."""
    try:
        if multirun:
            return [ret for batch in session.hydra.multirun(session.config_name, task, all_overrides) for ret in batch]
        return [session.hydra.run(session.config_name, task, all_overrides)]
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(_one_line(error, session.module.Config)) from None
