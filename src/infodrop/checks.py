"""Validation at the door: every public function checks its input here and raises a
`ValueError` that names the argument and says how to fix it. Code behind the door trusts it.

This module imports only numpy and torch, so every subpackage (``infodrop.mi`` included) may use it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def resolve_device(device: Any = None) -> torch.device:
    """``None`` means CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={device!r} is not a device; use None, 'cpu', 'cuda' or 'cuda:N'") from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available here; use device=None or 'cpu'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s); "
                "use an index below that, or device=None"
            )
    return resolved


def as_matrix(
    x: Any,
    name: str,
    *,
    dtype: torch.dtype = torch.float64,
    device: Any = "cpu",
    allow_1d: bool = True,
    min_rows: int = 1,
) -> torch.Tensor:
    """Return ``x`` (numpy array, tensor or nested list) as a finite 2-D tensor of shape N x d.

    A 1-D input of length N becomes one column (N x 1) when ``allow_1d``.
    Raises ValueError naming ``name`` for non-numeric, wrong-rank, empty or non-finite input.
    """
    if isinstance(x, torch.Tensor):
        tensor = x.detach()
    else:
        try:
            array = np.asarray(x)
        except Exception as error:  # ragged lists and the like
            raise ValueError(f"{name} could not be read as an array: {error}") from error
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(f"{name} must be numeric, got an array of dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex():
        raise ValueError(f"{name} must be real-valued, got a complex tensor")
    if tensor.ndim == 1 and allow_1d:
        tensor = tensor.reshape(-1, 1)
    if tensor.ndim != 2:
        expected = "N x d (or 1-D of length N)" if allow_1d else "N x d"
        raise ValueError(f"{name} must have shape {expected}, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (samples), got {tensor.shape[0]}")
    if tensor.shape[1] == 0:
        raise ValueError(f"{name} has zero columns (units); pass at least one")
    tensor = tensor.to(device=resolve_device(device), dtype=dtype)
    check_finite(tensor, name)
    return tensor


def check_finite(tensor: torch.Tensor, name: str) -> None:
    """Raise ValueError if ``tensor`` holds NaN or +-inf, saying how many and where the first is."""
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        count = int(bad.sum())
        first = tuple(int(i) for i in torch.nonzero(bad)[0].tolist())
        raise ValueError(
            f"{name} contains {count} NaN/inf value(s) (first at index {first}); "
            "remove or fix those samples before calling"
        )


def as_labels(labels: Any, name: str, n_rows: int) -> torch.Tensor:
    """Return discrete labels as a 1-D int64 tensor of length ``n_rows`` (CPU)."""
    if isinstance(labels, torch.Tensor):
        tensor = labels.detach().cpu()
    else:
        array = np.asarray(labels)
        if array.dtype.kind not in "biuf":
            # Strings (class names) or objects: torch would stop with a TypeError about numpy.str_.
            example = f" such as {array.flat[0].item()!r}" if array.size else ""
            raise ValueError(f"{name} must be integer class labels 0..C-1, got {array.dtype} values{example}; "
                             f"map them to integers first, e.g. np.unique({name}, return_inverse=True)[1]")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.ndim == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per sample), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] != n_rows:
        raise ValueError(f"{name} has {tensor.shape[0]} entries but there are {n_rows} samples; pass one label per sample")
    if tensor.is_floating_point():
        if not bool(torch.isfinite(tensor).all()) or not bool((tensor == tensor.round()).all()):
            raise ValueError(f"{name} must hold integer class labels; got non-integer floats")
    return tensor.to(torch.int64)


def _as_number(value: Any, name: str) -> float:
    """``value`` as a float; text and booleans are refused (float('0.25') and float(True) would
    pass a typo or a flag off as a number)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number, got {value!r}; give a number, not a flag")
    if isinstance(value, (str, bytes)):
        try:
            hint = f"pass {name}={float(value)!r} without quotes"
        except ValueError:
            hint = "pass a number without quotes"
        raise ValueError(f"{name} must be a number, got the text {value!r}; {hint}")
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a number, got {value!r}") from error


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float after checking it is a finite number (not text, not a bool)
    and > 0 (>= 0 with ``allow_zero``)."""
    number = _as_number(value, name)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return number


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


SEED_LIMIT = 2**32  # numpy's legacy seeding takes [0, 2**32 - 1]; torch takes more


def check_seed(value: Any, name: str = "seed") -> int:
    """Return ``value`` as an int after checking it is a seed: an integer in [0, 2**32 - 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**32 - 1] (numpy's range of seeds), got {value!r}")
    return int(value)


def check_in_range(value: Any, name: str, low: float, high: float, *, low_open: bool = True, high_open: bool = False) -> float:
    """Return ``value`` as a float after checking it is a number (not text, not a bool) in the
    interval (low, high] (by default)."""
    number = _as_number(value, name)
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if not math.isfinite(number) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return number
