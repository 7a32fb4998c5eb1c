"""Typed records of the information plane: what :class:`infodrop.plane.InformationPlane` writes to
``plane.json``, and reads, plots and experiments read back. Values are in nats.

A plane file (format ``"infodrop.plane/1"``) is a :class:`PlaneDocument`: the tracked layer, its
dropout kind and the estimator settings, and one :class:`PlaneRecord` per recorded epoch. A record
holds a :class:`SplitRecord` per split (``train``, and ``test`` when tracked) with

- ``auto``: the estimator that suits the dropout kind, :class:`MixtureEstimate` for Gaussian
  dropout (the mixture estimator of Adilova et al., ICLR 2023, Sec. 4) or
  :class:`VariationalEstimate` for information dropout (Achille & Soatto's bounds);
- ``binning``: a :class:`BinningPoint` per bin count;
- ``subsets``: a :class:`SubsetPoint` per subset size k (planes of random k-unit sub-representations).

Every estimate carries its band (``i_xz_lower``/``i_xz_upper``, ``i_zy_lower``/``i_zy_upper``), the
ceiling ``log_n`` and ``saturated`` (the value is pressed against log N and measures the sample
size); :mod:`infodrop.plane.estimators` says what each means for each estimator. These fields were added
after the first files were written: they are None in older files and not written when None, so
an older file still round-trips key for key.

New files name the class of each ``auto`` estimate in its ``kind`` field (``"mixture"`` or
``"variational"``); files written before it are told apart by their fields. :meth:`PlaneDocument.load`
is the one reader of plane files, old and new.

``to_json()`` gives the plain dict written to disk, with the same keys in the same order as files
written before these types existed; ``from_json()`` reads it back and checks its structure, so a
file of the wrong structure raises a one-line ValueError naming the file and the entry. To add a
field, give it a default of None: older files then read with None there. Keys a file has that this
version does not know are kept and written back, so a newer file survives an append by an older
version.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union

import numpy as np

from infodrop.io import load_npz, write_json

__all__ = [
    "PLANE_FORMAT",
    "BinningPoint",
    "MixtureEstimate",
    "PlaneDocument",
    "PlaneRecord",
    "SplitRecord",
    "SubsetPoint",
    "VariationalEstimate",
    "load_terms",
    "terms_key",
    "terms_path",
]

PLANE_FORMAT = "infodrop.plane/1"
SPLITS = ("train", "test")


def terms_path(plane_file: str | os.PathLike) -> Path:
    """The file beside a plane file that holds the per-input terms of its mixture estimates
    (``plane.json`` -> ``plane_terms.npz``): arrays of N float64 (nats) under
    :func:`terms_key`, whose means are the lower estimates of I(X;Z). They let two epochs be
    compared input by input (:func:`infodrop.study.paired_change`)."""
    plane_file = Path(plane_file)
    return plane_file.with_name(plane_file.stem + "_terms.npz")


def terms_key(epoch: int, split: str, subset: int | None = None, index: int = 0) -> str:
    """The key of one epoch's per-input terms in the terms file: ``"<epoch>/<split>/auto"`` for
    the whole layer, ``"<epoch>/<split>/subset<k>/<index>"`` for the index-th k-unit subset."""
    return f"{epoch}/{split}/auto" if subset is None else f"{epoch}/{split}/subset{subset}/{index}"


def load_terms(plane_file: str | os.PathLike, *, advice: str = "delete it and write it again") -> dict[str, np.ndarray]:
    """The per-input terms beside ``plane_file`` by :func:`terms_key` (verified; the archive's own
    checksum and format entries left out); {} when there is no terms file."""
    path = terms_path(plane_file)
    if not path.exists():
        return {}
    return {key: value for key, value in load_npz(path, advice=advice).items() if not key.startswith("__")}


def _convert(value: Any, hint: Any, where: str) -> Any:
    """``value`` of a JSON file as the field type ``hint`` says (float, int, bool, str, a pair of
    floats, a dict, or any of these or None); ValueError naming ``where`` otherwise."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        if value is None:
            return None
        return _convert(value, options[0], where)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    if typing.get_origin(hint) is tuple:  # a pair (lower, upper)
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f"{where} must be a pair [lower, upper], got {value!r}")
        return tuple(_convert(item, float, f"{where}[{index}]") for index, item in enumerate(value))
    if typing.get_origin(hint) is list:  # a list of numbers, of flags or of lists of unit indices
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {value!r}")
        (item_hint,) = typing.get_args(hint)
        return [_convert(item, item_hint, f"{where}[{index}]") for index, item in enumerate(value)]
    if typing.get_origin(hint) is dict or hint is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be an object, got {value!r}")
        return value
    return value


class _NonFinite(Exception):
    """A number of a plane file that is NaN or infinite (its text is the message)."""


def _refuse_constant(token: str) -> float:
    # Python's json writes and reads NaN, Infinity and -Infinity. A plane never holds NaN; an
    # infinite end of a band is allowed where _check_infinities allows it.
    if token == "NaN":
        raise _NonFinite("the non-finite number NaN")
    return float(token)


def _check_infinities(value: Any, key: str = "") -> None:
    """Refuse an infinite number except an open end of a band: -Infinity in a ``*_lower`` field
    (a band with no lower end, e.g. I(Z;Y) from too few samples) or +Infinity in an ``*_upper`` one."""
    if isinstance(value, float) and math.isinf(value):
        if not ((key.endswith("_lower") and value < 0) or (key.endswith("_upper") and value > 0)):
            token = "Infinity" if value > 0 else "-Infinity"  # as the file spells it
            raise _NonFinite(f"the non-finite number {token} in {key or 'a list'!r}")
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_infinities(item, str(name))
    elif isinstance(value, list):
        for item in value:
            _check_infinities(item, key)


def _finite_float(text: str) -> float:
    # A literal such as 1e999 reads as inf.
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(f"the number {text}, which is infinite as a float")
    return value


def _broken_json_advice(path: Path, error: json.JSONDecodeError) -> str:
    """One line for a plane file that does not parse: where, and how to recover. Plane files are
    written atomically, so a cut-off one was damaged outside infodrop (a copy, a full disk of a
    sync tool, an editor)."""
    cut = error.pos >= len(error.doc.rstrip()) - 1
    what = "is cut short" if cut else "is not valid JSON"
    return (
        f"plane file {path} {what} ({error.msg} at line {error.lineno} column {error.colno}); to recover, delete the "
        "damaged last record and close the brackets (the records before it are intact), or move the file aside and "
        "run the same command: an unfinished run records the plane again from its checkpoint's epoch on (earlier "
        "epochs, or a finished run, need a run from scratch: move the checkpoint aside too)"
    )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _added() -> Any:
    """A field added after the first files were written: None by default, and not written when
    None, so that files without it round-trip key for key."""
    return field(default=None, metadata={"omit_none": True})


def _omitted(spec: dataclasses.Field, value: Any) -> bool:
    return value is None and spec.metadata.get("omit_none", False)


def _extra() -> Any:
    """The field that keeps the keys of a file this version does not know (written back as they were)."""
    return field(default_factory=dict, repr=False, compare=False, kw_only=True)


@dataclass
class _Flat:
    """A record of scalar fields, read and written field by field in declaration order."""

    extra: dict = _extra()

    @classmethod
    def _fields(cls) -> list[dataclasses.Field]:
        return [spec for spec in dataclasses.fields(cls) if spec.name != "extra"]

    def to_json(self) -> dict:
        out = {spec.name: _plain(getattr(self, spec.name)) for spec in self._fields() if not _omitted(spec, getattr(self, spec.name))}
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "record") -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be an object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        values = {}
        for spec in cls._fields():
            if spec.name in data:
                values[spec.name] = _convert(data[spec.name], hints[spec.name], f"{where}.{spec.name}")
            elif spec.default is dataclasses.MISSING:
                raise ValueError(f"{where} lacks {spec.name!r}")
        known = {spec.name for spec in cls._fields()}
        return cls(**values, extra={key: value for key, value in data.items() if key not in known})


@dataclass
class MixtureEstimate(_Flat):
    """The ``auto`` estimate of a Gaussian-dropout layer: the mixture estimator of I(X;Z) and I(Z;Y)
    (``infodrop.mi.gaussian_dropout_mi``), with its pairwise brackets and Monte Carlo errors."""

    i_xz: float
    i_zy: float | None = None
    i_xz_bounds: tuple[float, float] | None = None
    i_zy_bounds: tuple[float, float] | None = None
    i_xz_loo: float | None = None
    i_xz_stderr: float | None = None
    i_zy_stderr: float | None = None
    h_z: float | None = None
    h_z_given_x: float | None = None
    h_z_gaussian_upper: float | None = None
    is_mi: bool = True
    # The band for the continuous input distribution (standard errors included), the ceiling
    # and the saturation flags of gaussian_dropout_mi (infodrop.mi.band).
    i_xz_lower: float | None = _added()
    i_xz_upper: float | None = _added()
    i_zy_lower: float | None = _added()
    i_zy_upper: float | None = _added()
    log_n: float | None = _added()
    saturated: bool | None = _added()
    i_xz_sensitivity: float | None = _added()
    i_zy_saturated: bool | None = _added()
    kind: str | None = _added()  # "mixture" in files that name the estimate's class

    KIND: ClassVar[str] = "mixture"


@dataclass
class VariationalEstimate(_Flat):
    """The ``auto`` estimate of an information-dropout layer: the variational upper bound
    I(X;Z) <= E KL(p(z|x) || prior) and the lower bound I(Z;Y) >= H(Y) - cross-entropy. With the
    log-uniform prior the KL is known only up to a constant: ``is_mi`` is False and ``note`` says so."""

    i_xz: float
    i_zy: float
    i_xz_kind: str
    i_zy_kind: str
    is_mi: bool
    kl_training: float | None = None
    n_clamped: int | None = None
    note: str | None = None
    # Each bound +- 2 standard errors of its mean over the N inputs; log N for reference and
    # saturated = False (the KL is not capped at log N).
    i_xz_lower: float | None = _added()
    i_xz_upper: float | None = _added()
    i_zy_lower: float | None = _added()
    i_zy_upper: float | None = _added()
    i_xz_stderr: float | None = _added()
    i_zy_stderr: float | None = _added()
    log_n: float | None = _added()
    saturated: bool | None = _added()
    kind: str | None = _added()  # "variational" in files that name the estimate's class

    KIND: ClassVar[str] = "variational"


@dataclass
class BinningPoint(_Flat):
    """The plug-in binning estimate at one bin count: I(X;Z_b) and I(Z_b;Y), and the bin width."""

    i_xz: float
    i_zy: float
    bin_size: float | None = None
    # The ceiling log N (the input's index is X), the Good-Turing coverage of the binned samples
    # (infodrop.mi.binning_coverage) and saturated = coverage < 1/2.
    log_n: float | None = _added()
    coverage: float | None = _added()
    saturated: bool | None = _added()


@dataclass
class SubsetPoint(_Flat):
    """The plane of random sub-representations Z_S of k units (``infodrop.mi.unit_subset_mi``):
    I(X;Z_S) as the mean, the standard deviation over the subsets and each subset's value (with
    its band ``lower``/``upper`` and flag), I(Z_S;Y) likewise, the subsets' unit indices, log N,
    and ``saturated`` (any of the subsets is)."""

    k: int
    mean: float
    std: float
    values: list[float]
    i_zy: float | None = None
    i_zy_std: float | None = None
    i_zy_values: list[float] | None = None
    lower: list[float] | None = None
    upper: list[float] | None = None
    units: list[list[int]] | None = None
    log_n: float | None = None
    saturated: bool | None = None
    saturated_subsets: list[bool] | None = None
    # Each subset's sensitivity (GaussianDropoutMI.i_xz_sensitivity), added later.
    sensitivity: list[float] | None = _added()

    # The plane's coordinates under the names every other point uses.
    @property
    def i_xz(self) -> float:
        return self.mean


Estimate = Union[MixtureEstimate, VariationalEstimate]
AUTO_KINDS: dict[str, type] = {kind.KIND: kind for kind in (MixtureEstimate, VariationalEstimate)}


def _auto_from_json(data: Any, where: str) -> Estimate:
    """The ``auto`` estimate by its ``kind``; files written before the kind was recorded are told
    apart by the variational estimate's ``i_xz_kind``."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object, got {type(data).__name__}")
    kind = data.get("kind")
    if kind is None:
        kind = VariationalEstimate.KIND if "i_xz_kind" in data else MixtureEstimate.KIND
    if kind not in AUTO_KINDS:
        raise ValueError(f"{where}.kind must be one of {sorted(AUTO_KINDS)}, got {kind!r}")
    return AUTO_KINDS[kind].from_json(data, where)


class _ReadsAsJson:
    """``item[key]`` reads the JSON form (:meth:`to_json`), for scripts written against the plain
    dicts that plane files hold."""

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]


@dataclass
class SplitRecord:
    """One split at one epoch: ``n`` inputs, the MC-dropout accuracy and cross-entropy of the
    network, H(Y), and the estimates (``auto`` and/or ``binning``, by bin count as a string)."""

    n: int
    mc_accuracy: float | None = None
    cross_entropy: float | None = None
    h_y: float | None = None
    auto: Estimate | None = None
    binning: dict[str, BinningPoint] | None = None
    subsets: dict[str, SubsetPoint] | None = None  # by subset size k, as a string
    extra: dict = _extra()

    def to_json(self) -> dict:
        out: dict[str, Any] = {"n": self.n, "mc_accuracy": self.mc_accuracy, "cross_entropy": self.cross_entropy, "h_y": self.h_y}
        if self.auto is not None:
            out["auto"] = self.auto.to_json()
        if self.binning is not None:
            out["binning"] = {bins: point.to_json() for bins, point in self.binning.items()}
        if self.subsets is not None:
            out["subsets"] = {k: point.to_json() for k, point in self.subsets.items()}
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "split") -> "SplitRecord":
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be an object, got {type(data).__name__}")
        if "n" not in data:
            raise ValueError(f"{where} lacks 'n'")
        auto = _auto_from_json(data["auto"], f"{where}.auto") if data.get("auto") is not None else None
        binning = None
        if data.get("binning") is not None:
            if not isinstance(data["binning"], dict):
                raise ValueError(f"{where}.binning must be an object of bin count -> point")
            binning = {str(bins): BinningPoint.from_json(point, f"{where}.binning.{bins}") for bins, point in data["binning"].items()}
        subsets = None
        if data.get("subsets") is not None:
            if not isinstance(data["subsets"], dict):
                raise ValueError(f"{where}.subsets must be an object of subset size -> point")
            subsets = {str(k): SubsetPoint.from_json(point, f"{where}.subsets.{k}") for k, point in data["subsets"].items()}
        known = ("n", "mc_accuracy", "cross_entropy", "h_y", "auto", "binning", "subsets")
        return cls(
            n=_convert(data["n"], int, f"{where}.n"),
            mc_accuracy=_convert(data.get("mc_accuracy"), float | None, f"{where}.mc_accuracy"),
            cross_entropy=_convert(data.get("cross_entropy"), float | None, f"{where}.cross_entropy"),
            h_y=_convert(data.get("h_y"), float | None, f"{where}.h_y"),
            auto=auto,
            binning=binning,
            subsets=subsets,
            extra={key: value for key, value in data.items() if key not in known},
        )

    def point(self, estimator: str, bins: str | None = None) -> Estimate | BinningPoint | SubsetPoint | None:
        """The ``auto`` estimate, the binning point at ``bins``, or (``estimator='subsets'``) the
        subset point of size ``bins`` (None when not recorded)."""
        if estimator == "auto":
            return self.auto
        if estimator == "subsets":
            return (self.subsets or {}).get(bins) if bins is not None else None
        return (self.binning or {}).get(bins) if bins is not None else None


@dataclass
class PlaneRecord(_ReadsAsJson):
    """The plane at one epoch (0 = the initialisation): one :class:`SplitRecord` per split."""

    epoch: int
    train: SplitRecord | None = None
    test: SplitRecord | None = None
    extra: dict = _extra()

    def splits(self) -> dict[str, SplitRecord]:
        """The recorded splits by name, train first."""
        return {name: getattr(self, name) for name in SPLITS if getattr(self, name) is not None}

    def to_json(self) -> dict:
        out: dict[str, Any] = {"epoch": self.epoch}
        out.update({name: split.to_json() for name, split in self.splits().items()})
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "record") -> "PlaneRecord":
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be an object, got {type(data).__name__}")
        if "epoch" not in data:
            raise ValueError(f"{where} lacks 'epoch'")
        splits = {name: SplitRecord.from_json(data[name], f"{where}.{name}") for name in SPLITS if data.get(name) is not None}
        if not splits:
            raise ValueError(f"{where} has neither a 'train' nor a 'test' split")
        return cls(
            epoch=_convert(data["epoch"], int, f"{where}.epoch"),
            **splits,
            extra={key: value for key, value in data.items() if key not in ("epoch", *SPLITS)},
        )

    def summary(self) -> dict[str, float | None]:
        """Flat numbers for the engine's metrics line: ``plane_<split>_i_xz`` / ``_i_zy`` of ``auto``."""
        summary: dict[str, float | None] = {}
        for name, split in self.splits().items():
            if split.auto is not None:
                summary[f"plane_{name}_i_xz"] = split.auto.i_xz
                summary[f"plane_{name}_i_zy"] = split.auto.i_zy
        return summary


@dataclass
class PlaneDocument(_ReadsAsJson):
    """Everything a plane file holds: the tracked layer and settings, and the records by epoch."""

    records: list[PlaneRecord] = field(default_factory=list)
    layer: str | None = None
    dropout_kind: str | None = None  # 'gaussian', 'information' or 'binary'
    variance: float | None = None  # Gaussian dropout
    prior: str | None = None  # information dropout: 'log-uniform' or 'log-normal'
    estimators: dict[str, str] = field(default_factory=dict)  # estimator key -> what it is for this layer
    sample_counts: dict[str, int] = field(default_factory=dict)  # split -> inputs used
    config: dict = field(default_factory=dict)  # the tracker's settings
    dataset: str | None = None  # the data set's name, for the figures' titles (added later)
    layer_units: int | None = None  # the tracked layer's width d (added later)
    extra: dict = _extra()

    def to_json(self) -> dict:
        out = {
            "format": PLANE_FORMAT,
            "units": "nats",
            "layer": self.layer,
            "dropout_kind": self.dropout_kind,
            "variance": self.variance,
            "prior": self.prior,
            "estimators": dict(self.estimators),
            "sample_counts": dict(self.sample_counts),
            "config": dict(self.config),
            "records": [record.to_json() for record in self.records],
        }
        # Added fields are written only when known, so that older files round-trip key for key.
        for name in ("dataset", "layer_units"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Any, source: str = "plane document") -> "PlaneDocument":
        """Read a document; ValueError starting with ``source`` (the file) for a wrong structure."""
        if not isinstance(data, dict) or data.get("format") != PLANE_FORMAT or not isinstance(data.get("records"), list):
            raise ValueError(f"{source} is not an information-plane file (format {PLANE_FORMAT!r} with a list of records)")
        try:
            records = [PlaneRecord.from_json(record, f"records[{index}]") for index, record in enumerate(data["records"])]
            metadata = {
                "layer": _convert(data.get("layer"), str | None, "layer"),
                "dropout_kind": _convert(data.get("dropout_kind"), str | None, "dropout_kind"),
                "variance": _convert(data.get("variance"), float | None, "variance"),
                "prior": _convert(data.get("prior"), str | None, "prior"),
                "estimators": _convert(data.get("estimators") or {}, dict, "estimators"),
                "sample_counts": _convert(data.get("sample_counts") or {}, dict, "sample_counts"),
                "config": _convert(data.get("config") or {}, dict, "config"),
                "dataset": _convert(data.get("dataset"), str | None, "dataset"),
                "layer_units": _convert(data.get("layer_units"), int | None, "layer_units"),
            }
        except ValueError as error:
            raise ValueError(f"{source}: {error}; it is not a plane file this version can read") from None
        known = ("format", "units", "records", *metadata)
        return cls(records=records, **metadata, extra={key: value for key, value in data.items() if key not in known})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PlaneDocument":
        """Read a plane JSON file; a missing file, invalid JSON or a wrong structure raises a
        one-line ValueError naming the file."""
        path = Path(path)
        if not path.exists():
            raise ValueError(f"plane file {path} does not exist; record a plane first (e.g. `infodrop mnist train`)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
            _check_infinities(data)
        except json.JSONDecodeError as error:
            raise ValueError(_broken_json_advice(path, error)) from None
        except _NonFinite as error:
            raise ValueError(
                f"plane file {path} holds {error}, which no estimate can be (a hand edit or a damaged file); "
                "correct or delete the record that holds it, or delete the file and train again to record the plane anew"
            ) from None
        return cls.from_json(data, source=str(path))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the document as JSON, atomically."""
        return write_json(path, self.to_json())

    def sorted_records(self, min_epoch: int | None = None) -> list[PlaneRecord]:
        """The records by epoch, from ``min_epoch`` on."""
        records = sorted(self.records, key=lambda record: record.epoch)
        return [record for record in records if min_epoch is None or record.epoch >= min_epoch]

    def trajectory(self, split: str, key: str) -> list[float]:
        """``key`` ('i_xz' or 'i_zy') of the ``auto`` estimate of ``split`` at each recorded epoch."""
        values = []
        for record in self.sorted_records():
            point = record.splits().get(split)
            if point is not None and point.auto is not None and getattr(point.auto, key) is not None:
                values.append(getattr(point.auto, key))
        return values

    def log_n(self, split: str = "train") -> float | None:
        """log N of the inputs of ``split``: the most a plain mixture or plug-in estimate of I(X;Z) can give."""
        count = self.sample_counts.get(split)
        return math.log(count) if count else None
