"""Redraw every figure under docs/ from its committed data file with today's plotting code.

    python scripts/redraw_docs_figures.py            # every figure in FIGURES
    python scripts/redraw_docs_figures.py toy_bounds  # only figures whose file name contains a word
    python scripts/redraw_docs_figures.py --list      # what would be drawn, from which data file

Each entry of ``FIGURES`` names a PNG under docs/, the data file it is drawn from (committed beside
it) and the call that draws it. A figure the README or docs/ show must be made here, or listed in
``MADE_ELSEWHERE`` with the command that makes it; ``tests/test_docs_figures.py`` checks both.

A data entry may be a folder: the seed study's figure is drawn from the committed runs under
docs/compression/runs/ (``scripts/collect_study_runs.py`` puts them there). Values are nats.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
DATA = DOCS / "data"

# Titles of the committed plane files that predate the plane file's ``dataset`` field.
FASHION_FULL = "Fashion-MNIST (60,000 training images)"
FASHION_TITLE = "FC 784-512-128-32-10 softplus, Gaussian dropout variance 0.25, 30 epochs (file written before bands)"


@dataclass(frozen=True)
class Figure:
    """One docs figure: ``target`` (relative to docs/), ``data`` (relative to docs/) and
    ``draw(data_path, out_dir) -> path of the PNG written in out_dir``."""

    target: str
    data: str
    draw: Callable[[Path, Path], Path]


def _plane_document(path: Path, dataset: str | None = None):
    from infodrop.plane.record import PlaneDocument

    document = PlaneDocument.load(path)
    if dataset and not document.dataset:
        document = dataclasses.replace(document, dataset=dataset)
    return document


def _plane(stem: str, *, title: str | None, dataset: str | None = None):
    """Draw the plane figures of a plane JSON and keep ``<stem>.png`` (plane_side_by_side, ...)."""
    def draw(data: Path, out_dir: Path) -> Path:
        from infodrop.plots import plot_information_plane

        plot_information_plane(_plane_document(data, dataset), out_dir, formats=("png",), title=title)
        return out_dir / f"{stem}.png"

    return draw


def _binning_planes(*, title: str | None, dataset: str | None = None):
    def draw(data: Path, out_dir: Path) -> Path:
        from infodrop.plots import plot_binning_planes

        return plot_binning_planes(_plane_document(data, dataset), out_dir, formats=("png",), title=title)[0]

    return draw


def _bin_sweep(*, title: str):
    def draw(data: Path, out_dir: Path) -> Path:
        from infodrop.experiments.mnist import binary_rows
        from infodrop.plots import plot_bin_sweep

        with open(data, newline="") as handle:
            rows = binary_rows(list(csv.DictReader(handle)))
        return plot_bin_sweep(rows, out_dir, formats=("png",), title=title)[0]

    return draw


def _toy(kind: str):
    """The toy figures: the CSV that ``infodrop toy <kind>`` writes, drawn by the toy's plot function."""
    def draw(data: Path, out_dir: Path) -> Path:
        from infodrop.experiments.toy import read_csv
        from infodrop.experiments import toy_figures as plots

        function = {"convergence": plots.plot_convergence, "bounds": plots.plot_entropy_bounds,
                    "compare": plots.plot_estimator_comparison}[kind]
        return function(read_csv(data), out_dir / f"{kind}.png")

    return draw


def _kl(*, classes: str, shared_scale: bool = True):
    """A KL heat-map figure (the first image) from the kl_maps.npz that `infodrop cifar plot` and
    `infodrop cluttered plot` write beside their figures; ``classes``: 'fashion' or 'cifar', whose
    class names label the images; one colour scale for all layers unless ``shared_scale=False``."""
    def draw(data: Path, out_dir: Path) -> Path:
        from infodrop.plots import CIFAR10_CLASSES, FASHION_MNIST_CLASSES, plot_kl_maps_file

        names = {"fashion": FASHION_MNIST_CLASSES, "cifar": CIFAR10_CLASSES}[classes]
        return plot_kl_maps_file(data, out_dir, class_names=names, shared_scale=shared_scale)[0]

    return draw


def _seed_study(*, subsets: tuple, settings: tuple = (), title: str | None = None):
    """The seed study of docs/compression.md: the given settings (run names without the seed;
    empty: every setting) under the committed runs folder (``data`` is runs/<experiment>), mean +-
    seed spread against the epoch. Settings whose I(X;Z) lives on different scales (the
    variational bound of information dropout sums over hundreds of units) get figures of their own."""
    def draw(data: Path, out_dir: Path) -> Path:
        from infodrop.experiments.study import group_settings
        from infodrop.study_figures import plot_seed_summary

        return plot_seed_summary(group_settings(data, list(settings)), out_dir, subsets=subsets, title=title)[0]

    return draw


FC_SETTINGS = ("variance=1.0,dataset=fashion", "variance=4.0,dataset=fashion",
               "variance=4.0,dataset=fashion,shuffle_labels=True")

FIGURES: list[Figure] = [
    Figure("compression/seed_summary.png", "compression/runs/mnist",
           _seed_study(subsets=(None, 1, 4), settings=FC_SETTINGS, title="FC 784-512-128-32-10 on Fashion-MNIST, Gaussian dropout")),
    Figure("compression/seed_summary_lenet.png", "compression/runs/mnist",
           _seed_study(subsets=(None, 1, 4), settings=("model=lenet,variance=4.0,dataset=fashion",),
                       title="LeNet on Fashion-MNIST, Gaussian dropout (variance 4) on the 84-unit layer")),
    Figure("compression/seed_summary_fullcnn.png", "compression/runs/cifar",
           _seed_study(subsets=(None,), title="fullCNN (Fig. 7 setting), information dropout after the third convolution, "
                                              "10 epochs on 1,000 Fashion-as-CIFAR images (variational bound)")),
    Figure("compression/seed_summary_lenet_information.png", "compression/runs/mnist",
           _seed_study(subsets=(None,), settings=("model=lenet,dropout=information,dataset=fashion",),
                       title="LeNet on Fashion-MNIST, information dropout on the 84-unit layer (variational bound)")),
    Figure("figures/demo_side_by_side.png", "data/demo_plane.json", _plane("plane_side_by_side", title="infodrop demo")),
    Figure("figures/plane_fashion_side_by_side.png", "plane_fashion.json",
           _plane("plane_side_by_side", title=FASHION_TITLE, dataset=FASHION_FULL)),
    Figure("figures/plane_fashion_binning_bins.png", "plane_fashion.json",
           _binning_planes(title=FASHION_TITLE, dataset=FASHION_FULL)),
    Figure("figures/plane_fashion_binary_binning.png", "plane_fashion_binary_binning.csv",
           _bin_sweep(title="Fashion-MNIST: 1000 inputs x 10 draws")),
    Figure("figures/cifar_fashion_kl_0.png", "data/cifar_fashion_kl_maps.npz", _kl(classes="fashion")),
    # The four layers' KL spans 0.3 to 12 nats per location: one shared scale would blank the first two.
    Figure("figures/cluttered_fashion_kl_0.png", "data/cluttered_fashion_kl_maps.npz", _kl(classes="fashion", shared_scale=False)),
    Figure("figures/toy_convergence.png", "data/toy_convergence_var0.1.csv", _toy("convergence")),
    Figure("figures/toy_convergence_var0.4.png", "data/toy_convergence_var0.4.csv", _toy("convergence")),
    Figure("figures/toy_bounds.png", "data/toy_bounds_var0.1.csv", _toy("bounds")),
    Figure("figures/toy_bounds_var0.4.png", "data/toy_bounds_var0.4.csv", _toy("bounds")),
    Figure("figures/toy_compare.png", "data/toy_compare_var0.1.csv", _toy("compare")),
    Figure("figures/toy_compare_var0.4.png", "data/toy_compare_var0.4.csv", _toy("compare")),
]

# Figures under docs/ that this script does not draw, and what makes them (relative to docs/;
# a trailing / covers a folder).
MADE_ELSEWHERE: dict[str, str] = {}  # empty: every figure under docs/ is drawn here


def made_elsewhere(target: str) -> str | None:
    """What makes ``target`` (relative to docs/) when this script does not, else None."""
    for key, maker in MADE_ELSEWHERE.items():
        if target == key or (key.endswith("/") and target.startswith(key)):
            return maker
    return None


def redraw(figures: list[Figure], out_root: Path = DOCS) -> list[Path]:
    """Draw each figure in a temporary folder and copy it to ``out_root / target`` (docs/ by
    default; a test passes a folder of its own); returns the paths written."""
    sys.path.insert(0, str(REPO / "src"))
    written = []
    for figure in figures:
        target = Path(out_root) / figure.target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as folder:
            made = figure.draw(DOCS / figure.data, Path(folder))
            shutil.copyfile(made, target)
        written.append(target)
        print(f"{target}  <-  docs/{figure.data}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("words", nargs="*", help="redraw only figures whose path contains one of these")
    parser.add_argument("--list", action="store_true", help="print the figures and their data files, draw nothing")
    args = parser.parse_args(argv)
    chosen = [figure for figure in FIGURES if not args.words or any(word in figure.target for word in args.words)]
    if not chosen:
        parser.error(f"no figure matches {args.words}; see --list")
    if args.list:
        for figure in chosen:
            print(f"docs/{figure.target}  <-  docs/{figure.data}")
        return 0
    redraw(chosen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
