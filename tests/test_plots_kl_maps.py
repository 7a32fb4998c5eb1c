"""KL heat maps of information dropout (Achille & Soatto 2018, Figs. 3 and 6): the colour bars say
what they measure and in which unit."""

from __future__ import annotations

import numpy as np


def test_every_kl_heat_map_colour_bar_gives_its_unit_in_nats(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from infodrop.plots import plot_kl_maps

    saved = []
    original = Figure.savefig

    def capture(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    rng = np.random.default_rng(0)
    images = rng.random((2, 1, 8, 8)).astype(np.float32)
    maps = [rng.random((2, 4, 4)), rng.random((2, 2, 2))]
    written = plot_kl_maps(images, [3, 7], maps, tmp_path)
    assert [path.name for path in written] == ["kl_0.png", "kl_1.png"]
    for figure in saved:
        bars = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
        assert len(bars) == 2 and all(bar.get_ylabel() == "KL per location [nats]" for bar in bars)
