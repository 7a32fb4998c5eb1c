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


def test_kl_maps_can_share_one_colour_scale_name_the_class_and_show_the_unwhitened_image(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from infodrop.plots import FASHION_MNIST_CLASSES, plot_kl_maps

    saved = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (saved.append(self), original(self, *a, **k))[1])
    rng = np.random.default_rng(1)
    images = rng.random((1, 3, 8, 8)).astype(np.float32)
    maps = [rng.random((1, 4, 4)), 5 * rng.random((1, 2, 2))]
    plot_kl_maps(images, [9], maps, tmp_path, class_names=FASHION_MNIST_CLASSES, shared_scale=True,
                 raw_images=images + 1.0)
    figure = saved[0]
    pictures = [ax for ax in figure.axes if ax.get_images() and ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in pictures[:2]] == ["image\nAnkle boot", "whitened input (what the network sees)\nAnkle boot"]
    limits = {ax.get_images()[0].get_clim() for ax in pictures[2:]}
    assert len(limits) == 1 and np.allclose(limits.pop(), (0.0, maps[1].max()))  # one scale for both layers
    bars = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "KL per location [nats], all layers"


def test_kl_maps_are_redrawn_from_the_arrays_the_plot_command_saves(tmp_path):
    from infodrop.io import save_npz
    from infodrop.plots import plot_kl_maps_file

    rng = np.random.default_rng(2)
    data = save_npz(tmp_path / "kl_maps.npz", images=rng.random((2, 1, 8, 8)).astype(np.float32), labels=np.array([0, 1]),
                    kl_0=rng.random((2, 4, 4)), kl_1=rng.random((2, 2, 2)))
    written = plot_kl_maps_file(data, tmp_path / "out", class_names=["a", "b"], shared_scale=True)
    assert [path.name for path in written] == ["kl_0.png", "kl_1.png"]
