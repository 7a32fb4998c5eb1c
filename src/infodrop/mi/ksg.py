"""Kraskov-Stögbauer-Grassberger k-nearest-neighbour estimator of mutual information.

Kraskov, Stögbauer & Grassberger, "Estimating mutual information", Phys. Rev. E 69, 066138
(2004), estimator 1 (their eq. 8); for class labels ``y`` the variant of Ross, "Mutual
information between discrete and continuous data sets", PLoS ONE 9(2): e87357 (2014), which
scikit-learn's ``mutual_info_classif`` also implements.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma

from infodrop.checks import check_int, check_positive, resolve_device
from infodrop.mi.binning import _as_pair

__all__ = ["ksg_mi"]

_METRICS = ("chebyshev", "euclidean")
_METHODS = ("auto", "tree", "brute")
# Elements of one block of brute-force distances: 2^21 float64 (16 MiB; several such blocks are
# alive at once) on a CPU, 2^25 (256 MiB) on a GPU, where a launch costs the same whatever its size.
BLOCK_ELEMENTS = {"cpu": 1 << 21, "cuda": 1 << 25}


def _scale(values: np.ndarray) -> np.ndarray:
    scale = values.std(axis=0)
    # A constant column carries no information either way; scale 1 instead of 0/0.
    scale[scale == 0] = 1.0
    return scale


def _standardize(values: np.ndarray) -> np.ndarray:
    return values / _scale(values)


def _tree_loses(n_samples: int, dims: int) -> bool:
    """Whether blocked brute force beats scipy's KD-tree for N points in ``dims`` dimensions
    (max-norm, k = 3, one thread). Measured on the 2-core development CPU (benchmarks/README.md,
    ``bench_ksg.py --crossover``): the two cost the same at about 7.5 joint dimensions for
    N = 1,000, 8.5 for N = 5,000 and 10 for N = 20,000, the crossing moving up by about 0.7
    dimensions per doubling of N (brute force costs N^2 d whatever the data; the tree's cost
    approaches that only in high dimension). The rule below sits just above those crossings,
    where the two differ by little."""
    return dims >= 8 + 0.7 * math.log2(max(n_samples, 1000) / 1000)


def _block_rows(n_points: int, device: torch.device) -> int:
    """Rows of a block of distances: BLOCK_ELEMENTS[device type] elements in all (a few per
    row on a CPU where N is large), at least 1."""
    return max(1, min(n_points, BLOCK_ELEMENTS[device.type] // max(1, n_points)))


def _distances(rows: torch.Tensor, points: torch.Tensor, metric: str) -> torch.Tensor:
    """rows x N distances: max-norm (exactly max_k |a_k - b_k| in float64, as the KD-tree) or
    Euclidean."""
    return torch.cdist(rows, points, p=math.inf if metric == "chebyshev" else 2.0)


def _brute_radius_and_counts(
    x: np.ndarray, y: np.ndarray, k: int, metric: str, device: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KSG's eps_i, n_x(i), n_y(i) in one pass of blocked brute force (torch, any device).

    For a block of rows the x and y distances to all N points are computed once; their maximum
    gives the joint distances, whose (k+1)-th smallest (the point itself is at 0) is eps_i, and
    the same two blocks give the counts of other points strictly closer than eps_i. Memory is
    O(block rows x N); nothing of size N x N is held."""
    x_t = torch.from_numpy(x).to(device)
    y_t = torch.from_numpy(y).to(device)
    n = len(x)
    radius = torch.empty(n, dtype=torch.float64, device=device)
    n_x = torch.empty(n, dtype=torch.int64, device=device)
    n_y = torch.empty(n, dtype=torch.int64, device=device)
    step = _block_rows(n, device)
    for start in range(0, n, step):
        stop = min(n, start + step)
        d_x = _distances(x_t[start:stop], x_t, metric)
        d_y = _distances(y_t[start:stop], y_t, metric)
        eps = torch.topk(torch.maximum(d_x, d_y), k + 1, dim=1, largest=False).values[:, -1]
        below = torch.nextafter(eps, torch.zeros_like(eps))[:, None]
        radius[start:stop] = eps
        n_x[start:stop] = (d_x <= below).sum(1) - 1
        n_y[start:stop] = (d_y <= below).sum(1) - 1
    return radius.cpu().numpy(), n_x.cpu().numpy(), n_y.cpu().numpy()


def _count_within(
    points: np.ndarray, radius: np.ndarray, metric: str, workers: int = 1, method: str = "tree", device: torch.device | None = None
) -> np.ndarray:
    """For each point i, the number of OTHER points j with distance(point_j, point_i) <= radius_i."""
    if metric == "chebyshev" and method == "tree":
        tree = cKDTree(points)
        counts = tree.query_ball_point(points, radius, p=np.inf, return_length=True, workers=workers)
        return np.asarray(counts, dtype=np.int64) - 1
    device = device or torch.device("cpu")
    data = torch.from_numpy(points).to(device)
    limit = torch.from_numpy(radius).to(device)
    counts = torch.empty(len(points), dtype=torch.int64, device=device)
    step = _block_rows(len(points), device)
    for start in range(0, len(points), step):
        block = _distances(data[start : start + step], data, metric)
        counts[start : start + step] = (block <= limit[start : start + step, None]).sum(1) - 1
    return counts.cpu().numpy()


def _kth_distance(
    points: np.ndarray, k: int, metric: str, workers: int = 1, method: str = "tree", device: torch.device | None = None
) -> np.ndarray:
    """Distance from each point to its k-th nearest other point (ties counted with multiplicity,
    as the KD-tree's k + 1 nearest including the point itself)."""
    if metric == "chebyshev" and method == "tree":
        distances, _ = cKDTree(points).query(points, k=k + 1, p=np.inf, workers=workers)
        return distances[:, -1]
    device = device or torch.device("cpu")
    data = torch.from_numpy(points).to(device)
    result = torch.empty(len(points), dtype=torch.float64, device=device)
    step = _block_rows(len(points), device)
    for start in range(0, len(points), step):
        block = _distances(data[start : start + step], data, metric)
        result[start : start + step] = torch.topk(block, k + 1, dim=1, largest=False).values[:, -1]
    return result.cpu().numpy()


def _strictly_below(radius: np.ndarray) -> np.ndarray:
    """The largest float below each radius: "distance <= nextafter(r, 0)" is "distance < r"."""
    return np.nextafter(radius, 0.0)


def _ksg_continuous(x: np.ndarray, y: np.ndarray, k: int, metric: str, workers: int, method: str, device: torch.device) -> float:
    n_samples = len(x)
    if method == "brute":
        radius, n_x, n_y = _brute_radius_and_counts(x, y, k, metric, device)
    else:
        radius = _kth_distance(np.hstack([x, y]), k, metric, workers, method="tree")
    if np.any(radius == 0.0):
        repeated = int(np.sum(radius == 0.0))
        raise ValueError(
            f"{repeated} sample(s) have k={k} or more exact duplicates in (x, y), so their k-th "
            "neighbour distance is 0 and the KSG estimator (which assumes a continuous joint "
            "density, no ties) is undefined; remove duplicate rows, or pass jitter=1e-10 to add "
            "seeded Gaussian noise of that relative size"
        )
    if method != "brute":
        below = _strictly_below(radius)
        n_x = _count_within(x, below, metric, workers, method="tree")
        n_y = _count_within(y, below, metric, workers, method="tree")
    return float(digamma(k) + digamma(n_samples) - np.mean(digamma(n_x + 1) + digamma(n_y + 1)))


def _ksg_labels(x: np.ndarray, labels: np.ndarray, k: int, metric: str, workers: int, method: str, device: torch.device) -> float:
    """Ross (2014): psi(N) - <psi(N_c)> + <psi(k_c)> - <psi(m)> over samples of classes with >= 2 members."""
    classes, inverse, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    radius = np.zeros(len(x))
    k_used = np.zeros(len(x), dtype=np.int64)
    keep = np.zeros(len(x), dtype=bool)
    for index in range(len(classes)):
        members = np.flatnonzero(inverse == index)
        if len(members) < 2:
            continue  # a class seen once has no neighbour within its class; Ross drops such samples
        k_class = min(k, len(members) - 1)
        radius[members] = _kth_distance(x[members], k_class, metric, workers, method, device)
        k_used[members] = k_class
        keep[members] = True
    if not keep.any():
        raise ValueError("y has no class with at least 2 samples; KSG with labels needs repeated labels")
    if np.any(radius[keep] == 0.0):
        raise ValueError(
            f"some samples of x have k={k} or more exact duplicates within their class, so the "
            "k-th neighbour distance is 0; remove duplicate rows or pass jitter=1e-10"
        )
    # Ross's m_i counts the samples of any class within the k-th same-class distance, boundary
    # included; samples of classes seen once are left out of the data set altogether.
    m = _count_within(x[keep], radius[keep], metric, workers, method, device)
    n_kept = int(keep.sum())
    return float(
        digamma(n_kept)
        - np.mean(digamma(class_counts[inverse[keep]]))
        + np.mean(digamma(k_used[keep]))
        - np.mean(digamma(m))
    )


def ksg_mi(
    x: Any,
    y: Any,
    *,
    k: int = 3,
    metric: str = "chebyshev",
    standardize: bool = True,
    y_discrete: bool | None = None,
    jitter: float = 0.0,
    seed: int = 0,
    workers: int = 1,
    method: str = "auto",
    device: Any = None,
) -> float:
    """KSG estimate (Kraskov et al. 2004, estimator 1) of I(X; Y) in nats.

    Algorithm: for each sample i, eps_i is the distance to its k-th nearest neighbour in the
    joint space under the norm ``max(||x - x'||, ||y - y'||)``; n_x(i) and n_y(i) count the
    other samples strictly closer than eps_i in the x and y spaces alone; then
    ``I = psi(k) + psi(N) - < psi(n_x + 1) + psi(n_y + 1) >``. Since the joint norm is the max of
    the two marginal norms, the volume terms cancel for either marginal norm (KSG eq. 8).
    With class labels ``y`` it is the estimator of Ross (2014):
    ``psi(N) - <psi(N_c)> + <psi(k)> - <psi(m)>``, where the k-th neighbour is taken within the
    sample's class c (N_c samples) and m counts all samples within that distance; samples whose
    label occurs once are dropped (N counts the rest), as in Ross (2014) and scikit-learn.

    Args:
        x: array or tensor, N x d_x (1-D = one column), real-valued, finite.
        y: array or tensor, N x d_y, or N integer class labels.
        k: number of neighbours, 1 <= k < N (3 is KSG's advice: small bias, larger variance).
        metric: 'chebyshev' (max-norm in each space; KD-trees, the KSG paper's choice) or
            'euclidean' (Euclidean in each space, max of the two in the joint space; brute force).
        standardize: divide every column of x and y by its standard deviation first (as
            scikit-learn does). The KSG estimate is not invariant to rescaling one column, because
            the max-norm mixes coordinates; unit variance is the conventional choice.
        y_discrete: True: y are class labels (Ross 2014); False: continuous; None: a one-column
            integer/boolean y is labels.
        jitter: relative standard deviation of seeded Gaussian noise added to every continuous
            column (times the column's standard deviation, or 1 for a constant column) to break ties; 0 (default) adds none,
            and exact duplicates then raise a ValueError instead of giving a silently biased value.
        seed: seed of that noise.
        workers: threads for the KD-tree queries ('chebyshev'); -1 means all CPUs. The
            counts, hence the estimate, do not depend on it.
        method: how the neighbours are found. 'tree': scipy KD-trees ('chebyshev' only);
            'brute': blocked brute force in torch on ``device`` (the k-th joint distance and
            both marginal counts from one pass over blocks of rows x N distances, never N x N);
            'auto' (default): brute force where KD-trees lose, from about 8 joint dimensions at
            N = 1,000 to 11 at N = 20,000 on one CPU thread (see ``_tree_loses``), and always
            for 'euclidean'. The max-norm distances are the same float64 numbers either way,
            so the two methods give identical counts and estimates, ties included.
        device: where the brute force runs; None means CUDA if available, else CPU (torch's
            CPU threads).

    Returns:
        The estimate in nats. It can be slightly negative for independent variables (it is not
        clipped; scikit-learn clips at 0).

    Assumptions and bias: a continuous joint density (no ties), locally uniform within each
    sample's k-neighbourhood. The bias is small for weak dependence and grows negative (an
    underestimate) for strong dependence and high dimension, where the neighbourhoods are large
    compared with the scale of the dependence (KSG Sec. IV; Gao et al. 2015); the standard error
    falls like 1/sqrt(N).

    Cost: KD-trees: O(N log N) average for building and querying (worse in high dimension,
    where they degrade towards O(N^2)), O(N (d_x + d_y)) memory; brute force:
    O(N^2 (d_x + d_y)) time and O(block rows x N) memory (BLOCK_ELEMENTS per block).
    """
    x_matrix, y_values, y_is_labels = _as_pair(x, y, y_discrete=y_discrete)
    n_samples = len(x_matrix)
    k = check_int(k, "k", minimum=1)
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    if k >= n_samples:
        raise ValueError(f"k must be smaller than the number of samples N={n_samples}, got k={k}; use fewer neighbours")
    jitter = check_positive(jitter, "jitter", allow_zero=True)
    if standardize not in (True, False):
        raise ValueError(f"standardize must be True or False, got {standardize!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or (workers < 1 and workers != -1):
        raise ValueError(f"workers must be a positive integer or -1 (all CPUs), got {workers!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if method == "tree" and metric == "euclidean":
        raise ValueError("method='tree' needs metric='chebyshev' (the max of two Euclidean norms is no "
                         "norm a KD-tree can search); use method='brute' or 'auto'")
    device = resolve_device(device)

    if standardize:
        x_matrix = _standardize(x_matrix)
        if not y_is_labels:
            y_values = _standardize(y_values)
    if jitter > 0:
        generator = np.random.default_rng(check_int(seed, "seed", minimum=0))
        x_matrix = x_matrix + jitter * _scale(x_matrix) * generator.standard_normal(x_matrix.shape)
        if not y_is_labels:
            y_values = y_values + jitter * _scale(y_values) * generator.standard_normal(y_values.shape)

    if method == "auto":
        dims = x_matrix.shape[1] + (0 if y_is_labels else y_values.shape[1])
        method = "brute" if metric == "euclidean" or _tree_loses(n_samples, dims) else "tree"
    if y_is_labels:
        return _ksg_labels(x_matrix, y_values, k, metric, workers, method, device)
    return _ksg_continuous(x_matrix, y_values, k, metric, workers, method, device)
