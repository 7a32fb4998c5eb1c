"""``print_config``: every entry of an experiment with its value and its one-line help.

The command every experiment has (``infodrop EXPERIMENT print_config [with ...]``): entries
changed from the defaults are marked ``*``, the named configs are listed with what they set, and
the last line is the run name the settings give.
"""

from __future__ import annotations

import dataclasses
import sys
from types import ModuleType
from typing import Any

from omegaconf import ListConfig

from infodrop.experiments.config import override_value
from infodrop.experiments.naming import run_name

__all__ = ["format_config", "print_config"]


def format_config(cfg: Any, module: ModuleType, experiment: str = "") -> str:
    """Every entry of ``module.Config`` with its value in ``cfg`` and its help; ``*`` marks values
    changed from the defaults; then ``module.NAMED_CONFIGS`` and the run name."""
    defaults = dataclasses.asdict(module.Config())
    rows = []
    for spec in dataclasses.fields(module.Config):
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
    lines.append(f"Run name: {run_name(cfg, module.Config)}")
    return "\n".join(lines)


def print_config(cfg: Any, *, module: ModuleType, experiment: str = "") -> str:
    """Print :func:`format_config` to stdout and return the text."""
    text = format_config(cfg, module, experiment)
    print(text)
    sys.stdout.flush()
    return text
