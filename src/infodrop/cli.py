"""The ``infodrop`` command line, in the original code's sacred grammar::

    infodrop EXPERIMENT COMMAND [--multirun] [with key=value ... NAMED_CONFIG ...]
    infodrop demo
    infodrop --help | infodrop EXPERIMENT --help | infodrop EXPERIMENT COMMAND [with ...] --help

After ``with``, ``key=value`` sets a config entry and a bare word applies a named config
(preset), e.g. ``infodrop cifar train with softplus filter_percentage=0.25 beta=1.0``. Presets
are applied first, so an explicit ``key=value`` wins whatever the order on the line. The words
are translated into Hydra overrides, so Hydra's own syntax works as well: with ``--multirun``
(or ``-m``), ``beta=0.5,1,3`` runs one job per value (``jobs_per_device=4``: four at a time,
each in a process of its own), and ``hydra/launcher=submitit_slurm``
sends the jobs to SLURM once ``hydra-submitit-launcher`` is installed (see
:mod:`infodrop.experiments.session`).

``--help`` (or ``-h``) after a command prints what the command does and every config entry with
its value and help, as ``print_config`` does (with the settings on the line applied), and runs
nothing.

Every error a user can act on prints one line on stderr that names the thing and the fix, and
exits with status 2, without a stack trace: mistakes on the command line (unknown experiment,
command, entry or named config, a value of the wrong type or out of range), files (missing,
damaged: a checkpoint whose checksum does not match), the disk (full), a run that another
process holds (its lock names that process), and divergence ("training diverged at epoch N;
lower lr"). Set the environment variable ``INFODROP_TRACEBACK=1`` to see the trace instead.
Ctrl-C exits with status 130 and SIGTERM (SLURM, docker, systemd) with 143, after a training
run has saved its last complete epoch; the same command resumes it. Warnings of infodrop's own
(a damaged file worked around, an estimator outside its measured regime) are one line each. The
same command runs unchanged under ``torchrun``; the training engine picks up the distributed
environment.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import warnings
from typing import Callable, Iterator, Sequence

# The module, not its functions: tests replace experiments.load_experiment to hide an experiment.
from infodrop import experiments
from infodrop.experiments.printing import format_config
from infodrop.experiments.session import ConfigError, SweepFailure, command_names, compose, preset_overrides, run_command

USAGE = "usage: infodrop EXPERIMENT COMMAND [--multirun] [with key=value ... NAMED_CONFIG ...] | infodrop demo"
HELP_FLAGS = ("-h", "--help")


class UsageError(ValueError):
    """A malformed command line."""


def _error(message: str) -> int:
    print(f"infodrop: error: {message}", file=sys.stderr)
    return 2


def _actionable_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message is one line naming the thing and the fix (see the module docstring)."""
    from infodrop.epoch_metrics import TrainingDiverged
    from infodrop.io import DiskFullError, RunLockedError

    return (ValueError, DiskFullError, RunLockedError, TrainingDiverged)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Within the block, show infodrop's own warnings as ``infodrop: warning: <message>`` and
    others as Python does; Python's format is put back after it."""
    python_format = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None):  # type: ignore[no-untyped-def]
        if category.__module__.startswith("infodrop."):
            return f"infodrop: warning: {message}\n"
        return python_format(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning
    try:
        yield
    finally:
        warnings.formatwarning = python_format


def _guarded(command: Callable[[], object]) -> int:
    """Run ``command`` with SIGTERM raised as ``Terminated``; turn what the user can act on into
    one line and an exit status (0; 2 refused; 1 failed sweep jobs; 130 Ctrl-C; 143 SIGTERM)."""
    from infodrop.signals import TERMINATED_EXIT_STATUS, Terminated, sigterm_raises

    try:
        with sigterm_raises(), _one_line_warnings():
            command()
    except Terminated:
        print("infodrop: terminated (SIGTERM); a training run saved its last completed epoch: run the same command to resume",
              file=sys.stderr)
        return TERMINATED_EXIT_STATUS
    except KeyboardInterrupt:
        print("infodrop: interrupted; a training run saved its last completed epoch: run the same command to resume", file=sys.stderr)
        return 130
    except SweepFailure as error:  # the jobs' traces are printed already, with their prefixes
        print(f"infodrop: error: {error}", file=sys.stderr)
        return 1
    except _actionable_errors() as error:
        if os.environ.get("INFODROP_TRACEBACK"):
            raise
        return _error(str(error))
    return 0


def parse_arguments(argv: Sequence[str]) -> tuple[str, str, bool, list[str], list[str]]:
    """Split ``EXPERIMENT COMMAND [--multirun] [with WORDS...]``.

    Returns ``(experiment, command, multirun, settings, presets)``: ``settings`` are the
    ``key=value`` words in order, ``presets`` the bare words. Raises UsageError.
    """
    words = list(argv)
    if len(words) < 2:
        raise UsageError(USAGE)
    experiment, command, rest = words[0], words[1], words[2:]
    multirun = False
    while rest and rest[0] != "with":
        flag = rest.pop(0)
        if flag in ("--multirun", "-m"):
            multirun = True
        else:
            hint = " (put key=value and named configs after `with`)" if "=" in flag or not flag.startswith("-") else ""
            raise UsageError(f"unexpected argument {flag!r}{hint}; {USAGE}")
    settings, presets = [], []
    for word in rest[1:]:
        if word in ("--multirun", "-m"):
            multirun = True
        elif "=" in word:
            settings.append(word)
        elif word:
            presets.append(word)
    if rest and len(rest) == 1:
        raise UsageError("`with` must be followed by key=value settings or named configs")
    return experiment, command, multirun, settings, presets


def to_overrides(module: object, experiment: str, settings: Sequence[str], presets: Sequence[str]) -> list[str]:
    """Hydra overrides for the words after ``with``: presets expanded first, then the settings."""
    overrides: list[str] = []
    for preset in presets:
        overrides += preset_overrides(module, preset, experiment)
    return overrides + list(settings)


def _help_text() -> str:
    lines = [USAGE, "", "experiments and their commands:"]
    for name in experiments.available_experiments():
        try:
            module = experiments.load_experiment(name)
        except Exception as error:  # a broken module must not hide the others
            lines.append(f"  {name:13s} (could not be imported: {type(error).__name__}: {error})")
            continue
        if module is None:
            continue
        presets = list(getattr(module, "NAMED_CONFIGS", {}))
        line = f"  {name:13s} {', '.join(command_names(module))}"
        if presets:
            line += f"   [named configs: {', '.join(presets)}]"
        lines.append(line)
    lines.append(f"  {'demo':13s} a short MNIST run that shows an information plane")
    lines += [
        "",
        "`infodrop EXPERIMENT COMMAND --help` (or `print_config [with ...]`) lists every entry with its help.",
        "Sweeps: `infodrop cifar train --multirun with beta=0.5,1,3` runs one job per value (add",
        "jobs_per_device=3 to train them at once, each in a process of its own); add",
        "hydra/launcher=submitit_slurm after `with` to use SLURM (pip install hydra-submitit-launcher).",
    ]
    return "\n".join(lines)


def _first_paragraph(function: object) -> str:
    """The first paragraph of a docstring, on one line, reStructuredText's double backquotes made single."""
    doc = inspect.getdoc(function) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "`")


def _command_help(module: object, experiment: str, command: str, overrides: Sequence[str]) -> str:
    """``infodrop EXPERIMENT COMMAND --help``: the usage, what the command does, and its entries as
    ``print_config`` lists them, with ``overrides`` applied."""
    if command == "print_config":
        what = "Print every entry with its value and help, the named configs and the run name."
    else:
        what = _first_paragraph(module.COMMANDS[command])
    cfg = compose(experiment, overrides, module=module)
    usage = f"usage: infodrop {experiment} {command} [--multirun] [with key=value ... NAMED_CONFIG ...]"
    return "\n".join([usage, what, "", format_config(cfg, module, experiment)])


def _demo(rest: Sequence[str]) -> int:
    """``infodrop demo [with key=value ...]``: the mnist experiment's demo, settings passed on."""
    mnist = experiments.load_experiment("mnist")
    if mnist is None or not hasattr(mnist, "demo"):
        return _error("`infodrop demo` needs infodrop.experiments.mnist.demo, which this installation lacks")
    if any(word in HELP_FLAGS for word in rest):
        print("usage: infodrop demo [with key=value ...]   (the entries of `infodrop mnist print_config`)")
        print(_first_paragraph(mnist.demo))
        return 0
    if rest and rest[0] != "with":
        return _error(f"usage: infodrop demo [with key=value ...], got {' '.join(rest)}")
    settings = list(rest[1:])
    if settings and "overrides" not in inspect.signature(mnist.demo).parameters:
        return _error("this version of the demo takes no settings")
    return _guarded(lambda: mnist.demo(overrides=tuple(settings)) if settings else mnist.demo())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``infodrop`` script; returns the exit status (0, or 2 for user errors)."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        # The reader went away (`infodrop mnist train --help | head`): stop quietly, as a Unix tool does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_help_text())
        return 0 if argv else 2
    if argv[0] == "demo":
        return _demo(argv[1:])
    experiment = argv[0]
    module = experiments.load_experiment(experiment)
    if module is None:
        valid = ", ".join(experiments.available_experiments() + ["demo"])
        return _error(f"unknown experiment {experiment!r}; valid: {valid}")
    if len(argv) == 1 or argv[1] in ("-h", "--help", "help"):
        print(f"usage: infodrop {experiment} COMMAND [--multirun] [with key=value ... NAMED_CONFIG ...]")
        print(f"commands: {', '.join(command_names(module))}")
        presets = list(getattr(module, "NAMED_CONFIGS", {}))
        if presets:
            print(f"named configs: {', '.join(presets)}")
        return 0 if len(argv) > 1 else 2
    # --help anywhere after the command asks for that command's help; nothing runs.
    asked_help = any(word in HELP_FLAGS for word in argv[2:])
    argv = argv[:2] + [word for word in argv[2:] if word not in HELP_FLAGS]
    try:
        experiment, command, multirun, settings, presets = parse_arguments(argv)
        if command not in command_names(module):
            raise ConfigError(
                f"unknown command {command!r} for {experiment}; valid commands: {', '.join(command_names(module))}"
            )
        overrides = to_overrides(module, experiment, settings, presets)
        if asked_help:
            print(_command_help(module, experiment, command, overrides))
            return 0
    except (UsageError, ConfigError) as error:
        return _error(str(error))
    return _guarded(lambda: run_command(experiment, command, overrides, multirun=multirun, module=module))


if __name__ == "__main__":
    sys.exit(main())
