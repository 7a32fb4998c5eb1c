"""What an information plane is recorded with: :class:`PlaneSettings`, the one owner of every rule
on those settings (which estimators exist, bins, the sample count, noise samples, bounds, unit
subsets and their width, subset draws, batch size, seed, figure formats, the batch-norm refresh).

The library (:class:`infodrop.plane.InformationPlane`) and the experiments' recipes build a
``PlaneSettings`` and ask it; none of them checks these values again. A recipe passes ``names``
(field -> its config entry, e.g. ``{"max_samples": "plane_samples"}``) so that an error names the
entry the user typed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infodrop.checks import check_int, check_seed

__all__ = ["DROPOUT_ESTIMATORS", "ESTIMATORS", "PLOT_FORMATS", "PlaneSettings", "check_formats"]

ESTIMATORS = ("auto", "binning")
PLOT_FORMATS = ("png", "pdf", "svg")
# Which dropout kinds each estimator key can measure. Binary dropout has no 'auto' estimate
# (Theorems 3.1/3.2 of Adilova et al.: I(X;Z) is infinite); unit subsets need the mixture
# estimator, i.e. Gaussian dropout.
DROPOUT_ESTIMATORS = {
    "auto": ("gaussian", "information"),
    "binning": ("gaussian", "information", "binary"),
    "subsets": ("gaussian",),
}


def check_formats(formats: Any, name: str = "formats") -> tuple[str, ...]:
    """``formats`` as a tuple of figure formats (a single string is one format); ValueError unless
    it is a non-empty subset of :data:`PLOT_FORMATS`."""
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    if not formats or any(fmt not in PLOT_FORMATS for fmt in formats):
        raise ValueError(f"{name} must be a non-empty subset of {list(PLOT_FORMATS)}, got {list(formats)}")
    return formats


def _ints(value: Any) -> tuple:
    """A sequence of integers as a tuple; one integer as a 1-tuple."""
    return (value,) if isinstance(value, (int, np.integer)) else tuple(value)


@dataclass(frozen=True)
class PlaneSettings:
    """How a plane is recorded. Checked when built (``ValueError`` naming the field, or its entry
    in ``names``, and the fix); sequences are stored as tuples.

    Args:
        estimators: any of ``'auto'`` (mixture estimator for Gaussian dropout, variational
            bounds for information dropout) and ``'binning'``.
        bins: bin counts of the binning estimator (equal-width bins over the global range of Z).
        noise_samples: noise draws per input inside the Gaussian mixture estimator.
        mc_draws: MC-dropout samples of Z per input for binning and the MC predictions.
        max_samples: inputs per split, a fixed random subset chosen from ``seed``; None or 0 = all,
            else at least 2. The mixture estimator costs O(N^2 noise_samples d).
        batch_size: batch size of the tracker's forward passes.
        seed: seeds the subset of inputs, the MC noise and the estimators' noise.
        bounds: compute the pairwise bracket of the mixture estimator (O(N^2 d) elementwise).
        subsets: sizes k of random unit subsets whose I(X;Z_S) is recorded (Gaussian dropout,
            1 <= k <= the layer's width); sorted, duplicates dropped.
        subset_draws: random subsets per size.
        refresh_batch_norm: re-estimate the batch-norm statistics on the training inputs with the
            dropout noise on (the plane reads the noisy Z) before each record, restored after it
            (:func:`infodrop.nn.refreshed_batch_norm`).
        formats: file formats of the figures.
        names: the name each field has where the caller exposes it, for the error messages.
    """

    estimators: tuple[str, ...] = ESTIMATORS
    bins: tuple[int, ...] = (10, 30, 100)
    noise_samples: int = 10
    mc_draws: int = 1
    max_samples: int | None = None
    batch_size: int = 512
    seed: int = 0
    bounds: bool = True
    subsets: tuple[int, ...] = ()
    subset_draws: int = 8
    refresh_batch_norm: bool = False
    formats: tuple[str, ...] = ("png", "pdf")
    names: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def name(self, field_name: str) -> str:
        """What the caller calls ``field_name`` (the field's own name unless ``names`` says)."""
        return self.names.get(field_name, field_name)

    def __post_init__(self) -> None:
        set_ = lambda key, value: object.__setattr__(self, key, value)  # noqa: E731 (frozen)
        name = self.name
        estimators = (self.estimators,) if isinstance(self.estimators, str) else tuple(self.estimators)
        if not estimators or any(item not in ESTIMATORS for item in estimators):
            raise ValueError(f"{name('estimators')} must be a non-empty subset of {list(ESTIMATORS)}, got {list(estimators)}")
        set_("estimators", estimators)
        set_("bins", tuple(check_int(count, f"{name('bins')}[{index}]", minimum=1)
                           for index, count in enumerate(_ints(self.bins))))
        if "binning" in estimators and not self.bins:
            raise ValueError(f"{name('bins')} is empty but {name('estimators')} include 'binning'; give bin counts, "
                             f"e.g. {name('bins')}=[10,30,100]")
        for key in ("noise_samples", "mc_draws", "batch_size", "subset_draws"):
            set_(key, check_int(getattr(self, key), name(key), minimum=1))
        set_("max_samples", self._samples(self.max_samples))
        set_("seed", check_seed(self.seed, name("seed")))
        for key in ("bounds", "refresh_batch_norm"):
            if not isinstance(getattr(self, key), (bool, np.bool_)):
                raise ValueError(f"{name(key)} must be true or false, got {getattr(self, key)!r}")
            set_(key, bool(getattr(self, key)))
        set_("subsets", tuple(sorted({check_int(k, f"{name('subsets')}[{index}]", minimum=1)
                                      for index, k in enumerate(_ints(self.subsets))})))
        set_("formats", check_formats(self.formats, name("formats")))
        set_("names", dict(self.names))

    def _samples(self, value: Any) -> int | None:
        """The sample rule: 0 or None = every input, else at least 2 (one input has no spread)."""
        if value is None:
            return None
        value = check_int(value, self.name("max_samples"), minimum=0)
        if value == 1:
            raise ValueError(f"{self.name('max_samples')} must be 0 (all inputs) or at least 2, got 1")
        return value or None

    def replace(self, **changes: Any) -> "PlaneSettings":
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    def check_kind(self, kind: str, where: str = "the tracked layer") -> None:
        """Refuse settings that the dropout ``kind`` ('gaussian', 'information', 'binary') of
        ``where`` cannot measure: unit subsets need Gaussian dropout; binary dropout needs binning."""
        if self.subsets and kind not in DROPOUT_ESTIMATORS["subsets"]:
            raise ValueError(
                f"{self.name('subsets')}={list(self.subsets)} needs dropout=gaussian (the mixture estimator of "
                f"I(X;Z_S)); {where} has {kind} dropout; pass {self.name('subsets')}=[]"
            )
        if not any(kind in DROPOUT_ESTIMATORS[key] for key in self.estimators):
            raise ValueError(f"{kind} dropout has no 'auto' estimator (I(X;Z) is infinite); use "
                             f"{self.name('estimators')}=['binning']")

    def for_layer(self, kind: str, units: int, layer: str) -> "PlaneSettings":
        """The settings for a resolved layer of dropout ``kind`` and ``units`` units (its name
        ``layer`` in the messages): the estimators that kind has (binary dropout drops 'auto'),
        subsets checked against the kind and the width."""
        self.check_kind(kind, f"layer {layer!r}")
        too_large = [k for k in self.subsets if k > units]
        if too_large:
            raise ValueError(
                f"{self.name('subsets')}={list(self.subsets)}: {too_large} exceed the {units} units of the tracked "
                f"layer {layer!r}; use sizes from 1 to {units}"
            )
        estimators = tuple(key for key in self.estimators if kind in DROPOUT_ESTIMATORS[key])
        return self if estimators == self.estimators else self.replace(estimators=estimators)

    def to_json(self) -> dict:
        """The settings as the plane file's ``config`` records them (the file's keys)."""
        return {
            "estimators": list(self.estimators),
            "bins": list(self.bins),
            "noise_samples": self.noise_samples,
            "mc_draws": self.mc_draws,
            "max_samples": self.max_samples,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "bounds": self.bounds,
            "subsets": list(self.subsets),
            "subset_draws": self.subset_draws,
        }

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """The names of the settings (``names`` excluded)."""
        return tuple(spec.name for spec in dataclasses.fields(cls) if spec.name != "names")


def settings_from(options: Mapping[str, Any], settings: PlaneSettings | None) -> PlaneSettings:
    """``settings``, or PlaneSettings built from keyword ``options`` (the tracker's keywords);
    ValueError when both are given or an option is not a setting."""
    unknown = sorted(set(options) - set(PlaneSettings.fields()))
    if unknown:
        raise ValueError(f"unknown plane setting(s) {unknown}; settings are {list(PlaneSettings.fields())}")
    if settings is None:
        return PlaneSettings(**options)
    if not isinstance(settings, PlaneSettings):
        raise ValueError(f"settings must be a PlaneSettings, got {type(settings).__name__}")
    if options:
        raise ValueError(f"pass either settings=PlaneSettings(...) or the keywords {sorted(options)}, not both")
    return settings
