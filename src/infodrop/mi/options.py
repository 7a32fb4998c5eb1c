"""How the mixture estimator computes, as one object: chunk size, device, dtype, backend and
distribution over processes. None of them changes what is estimated (to rounding).

``gaussian_dropout_mi(features, variance, options=MixtureOptions(device="cuda", dtype="float32"))``
is the same call as ``gaussian_dropout_mi(features, variance, device="cuda", dtype="float32")``;
a tracker or a benchmark builds the object once and passes it to every call. The estimator's door
checks the values (:func:`infodrop.mi.gaussian_dropout_mi`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["MixtureOptions", "merge_options"]


@dataclass(frozen=True)
class MixtureOptions:
    """chunk_size: rows of Z scored together (None = the device's default); device: None = CUDA
    if available, else CPU; dtype: None/'float64' or 'float32' for the block of log-densities;
    backend: 'auto', 'torch' or 'triton'; distributed: split the work over an initialised
    process group. See :func:`infodrop.mi.gaussian_dropout_mi` for each."""

    chunk_size: int | None = None
    device: Any = None
    dtype: Any = None
    backend: str = "auto"
    distributed: bool = False


_DEFAULTS = MixtureOptions()


def merge_options(options: MixtureOptions | None, **keywords: Any) -> MixtureOptions:
    """``options`` with the keyword arguments of the same names that differ from their defaults;
    ValueError naming the argument when it is set both ways, or when ``options`` is not a
    MixtureOptions."""
    if options is None:
        return dataclasses.replace(_DEFAULTS, **keywords)
    if not isinstance(options, MixtureOptions):
        raise ValueError(f"options must be a MixtureOptions or None, got {type(options).__name__}")
    given = {name: value for name, value in keywords.items() if value != getattr(_DEFAULTS, name)}
    for name in given:
        if getattr(options, name) != getattr(_DEFAULTS, name):
            raise ValueError(f"{name} is given both as a keyword and in options; pass it one way")
    return dataclasses.replace(options, **given)
