"""Ground truths by quadrature for the Gaussian-dropout estimator's tests (independent of the
estimator and of infodrop.experiments.toy)."""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import integrate

QUAD = dict(limit=200, epsabs=1e-12, epsrel=1e-9)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _toy_density(z: float, variance: float) -> float:
    """p(z) for f(X) = 2X + 0.5, X ~ N(0,1), Z = f(X) D: integrate over u = f(x) in three pieces
    split at u = 0 (the component degenerates there) and at u = z (where it peaks)."""
    s = math.sqrt(variance)

    def integrand(u: float) -> float:
        scale = s * abs(u)
        return 0.5 * _phi((u - 0.5) / 2) * _phi((z - u) / scale) / scale

    pieces = [(0, z), (z, math.inf), (-math.inf, 0)] if z > 0 else [(z, 0), (-math.inf, z), (0, math.inf)]
    return sum(integrate.quad(integrand, a, b, **QUAD)[0] for a, b in pieces)


@functools.lru_cache(maxsize=None)
def toy_mi_per_unit(variance: float) -> float:
    """I(X;Z) of one coordinate of the toy problem by quadrature (nats).

    h(Z) = -int p log p (p has an integrable log singularity at z = 0, so z is split there);
    h(Z|X) = 1/2 log(2 pi e variance) + E log|2X + 0.5| (split at x = -0.25).
    """
    def neg_p_log_p(z: float) -> float:
        p = _toy_density(z, variance)
        return -p * math.log(p) if p > 0 else 0.0

    z_pieces = [(-math.inf, -1), (-1, 0), (0, 0.5), (0.5, 3), (3, math.inf)]
    quad = dict(limit=200, epsabs=1e-10, epsrel=1e-8)
    h_z = sum(integrate.quad(neg_p_log_p, a, b, **quad)[0] for a, b in z_pieces)
    e_log = sum(
        integrate.quad(lambda x: _phi(x) * math.log(abs(2 * x + 0.5)), a, b, limit=200)[0]
        for a, b in [(-math.inf, -0.25), (-0.25, math.inf)]
    )
    return h_z - (0.5 * math.log(2 * math.pi * math.e * variance) + e_log)


def toy_features(n_inputs: int, dims: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n_inputs, dims))
    return 2 * x + 0.5


def two_point_mi(a: float, b: float, variance: float) -> float:
    """I(X;Z) for X uniform on two points with f = a, b (1-D), by quadrature."""
    sa, sb = math.sqrt(variance) * abs(a), math.sqrt(variance) * abs(b)

    def p(z):
        return 0.5 * _phi((z - a) / sa) / sa + 0.5 * _phi((z - b) / sb) / sb

    def neg_p_log_p(z):
        value = p(z)
        return -value * math.log(value) if value > 0 else 0.0

    edges = sorted([-math.inf, a - 12 * sa, a, a + 12 * sa, b - 12 * sb, b, b + 12 * sb, math.inf])
    h_z = sum(integrate.quad(neg_p_log_p, lo, hi, **QUAD)[0] for lo, hi in zip(edges[:-1], edges[1:]))
    h_z_given_x = 0.5 * math.log(2 * math.pi * math.e * variance) + 0.5 * (math.log(abs(a)) + math.log(abs(b)))
    return h_z - h_z_given_x
