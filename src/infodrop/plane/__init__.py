"""The information plane of a dropout network (Adilova, Geiger & Fischer, ICLR 2023): I(X;Z) and
I(Z;Y) of one dropout layer's representation Z, epoch by epoch, in nats.

- :mod:`~infodrop.plane.settings`: :class:`PlaneSettings`, every rule on how a plane is recorded;
- :mod:`~infodrop.plane.layer`: the tracked layer, its dropout kind and width, its representations;
- :mod:`~infodrop.plane.estimators`: the estimators behind one interface, by dropout kind;
- :mod:`~infodrop.plane.tracker`: :class:`InformationPlane`, one ``record(epoch)`` and one hook;
- :mod:`~infodrop.plane.record`: the typed plane file (:class:`PlaneDocument`, :class:`PlaneRecord`, ...);
- :mod:`~infodrop.plane.report`: the CSV, the saturation summaries and the cost line;
- :mod:`~infodrop.plane.figures`: the plane figures;
- :mod:`~infodrop.plane.lightning`: :class:`InformationPlaneCallback` (optional ``lightning`` extra).
"""

from __future__ import annotations

from typing import Any

from infodrop.plane.layer import representation_width
from infodrop.plane.record import (
    PLANE_FORMAT,
    BinningPoint,
    MixtureEstimate,
    PlaneDocument,
    PlaneRecord,
    SplitRecord,
    SubsetPoint,
    VariationalEstimate,
    load_terms,
    terms_key,
    terms_path,
)
from infodrop.plane.report import CSV_COLUMNS, records_to_csv, saturation_counts, saturation_summary
from infodrop.plane.settings import PlaneSettings
from infodrop.plane.tracker import InformationPlane

__all__ = [
    "CSV_COLUMNS",
    "PLANE_FORMAT",
    "BinningPoint",
    "InformationPlane",
    "InformationPlaneCallback",
    "MixtureEstimate",
    "PlaneDocument",
    "PlaneRecord",
    "PlaneSettings",
    "SplitRecord",
    "SubsetPoint",
    "VariationalEstimate",
    "load_terms",
    "records_to_csv",
    "representation_width",
    "saturation_counts",
    "saturation_summary",
    "terms_key",
    "terms_path",
]


def __getattr__(name: str) -> Any:
    # The Lightning callback is imported on first use: importing lightning takes seconds, and
    # infodrop.plane must import without it.
    if name == "InformationPlaneCallback":
        from infodrop.plane.lightning import InformationPlaneCallback

        return InformationPlaneCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
