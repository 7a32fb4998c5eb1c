"""The Triton kernel behind :mod:`infodrop.mi.triton_mixture` (imported only when triton is).

Kept apart from the host code so that ``import infodrop.mi`` never needs triton. Whether
``triton.jit`` builds a GPU kernel or an interpreted one (``TRITON_INTERPRET=1``: numpy on CPU
tensors) is decided when triton and this module are imported, for triton's own library
functions (tl.sum, tl.max, ...) as well: the variable must be set before the first import of
triton (tests/conftest.py does so on machines without CUDA).

No ``from __future__ import annotations`` here: triton reads the ``tl.constexpr`` annotations
as objects.
"""

import triton
import triton.language as tl

# 1 / ln 2: exp(x) = exp2(x * LOG2E), and exp2 is the GPU's native unit. A kernel may read a
# global only if it is a constexpr.
LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def mixture_logsumexp_kernel(
    left_ptr, w_ptr, bias_ptr, exclude_ptr,
    row_group_ptr, col_group_ptr, row_label_ptr, col_label_ptr,
    top_ptr, total_ptr, class_top_ptr, in_class_ptr,
    M, N, K,
    stride_lm, stride_lk, stride_wk, stride_wn,
    cols_per_split,
    HAS_GROUPS: tl.constexpr,
    HAS_LABELS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_TILES: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """One program: BLOCK_M rows against the columns of one split, online log-sum-exp.

    s_rj = sum_k left[r, k] w[k, j] + bias[j] for the columns j of split program_id(1), with
    s_rj = -inf where j == exclude[r] or (HAS_GROUPS) col_group[j] != row_group[r]. Writes, at
    [split * M + r], the running maximum top_r (dtype of left) and, in float64,
    total_r = sum_j exp(s_rj - top_r), and (HAS_LABELS) the maximum and sum of the same over the
    columns with col_label[j] == row_label[r]. The class sum keeps its own maximum: measured
    against the row's overall maximum its terms could lie beyond float32's exp range (~87 nats
    below) and vanish. No M x N block is ever written.
    """
    pid_m = tl.program_id(0)
    split = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    rows64 = rows.to(tl.int64)
    exclude = tl.load(exclude_ptr + rows, mask=row_ok, other=-1)
    if HAS_GROUPS:
        row_group = tl.load(row_group_ptr + rows, mask=row_ok, other=-1)
    if HAS_LABELS:
        row_label = tl.load(row_label_ptr + rows, mask=row_ok, other=-1)
    ks = tl.arange(0, BLOCK_K)
    value_type = left_ptr.dtype.element_ty
    if K_TILES == 1:
        # The whole [z^2, z] row block fits: load it once, as FlashAttention keeps Q on chip.
        left = tl.load(
            left_ptr + rows64[:, None] * stride_lm + ks[None, :] * stride_lk,
            mask=row_ok[:, None] & (ks[None, :] < K),
            other=0.0,
        )
    top = tl.full((BLOCK_M,), float("-inf"), dtype=value_type)
    total = tl.zeros((BLOCK_M,), dtype=tl.float64)
    class_top = tl.full((BLOCK_M,), float("-inf"), dtype=value_type)
    in_class = tl.zeros((BLOCK_M,), dtype=tl.float64)
    col_start = split * cols_per_split
    col_stop = tl.minimum(N, col_start + cols_per_split)
    for c0 in range(col_start, col_stop, BLOCK_N):
        cols = c0 + tl.arange(0, BLOCK_N)
        col_ok = cols < col_stop
        cols64 = cols.to(tl.int64)
        if K_TILES == 1:
            w = tl.load(
                w_ptr + ks[:, None].to(tl.int64) * stride_wk + cols64[None, :] * stride_wn,
                mask=(ks[:, None] < K) & col_ok[None, :],
                other=0.0,
            )
            s = tl.dot(left, w, input_precision=PRECISION, out_dtype=value_type)
        else:
            s = _dot_in_steps(left_ptr, w_ptr, rows64, row_ok, cols64, col_ok, ks, K,
                              stride_lm, stride_lk, stride_wk, stride_wn,
                              tl.zeros((BLOCK_M, BLOCK_N), dtype=value_type), BLOCK_K, PRECISION)
        s = s + tl.load(bias_ptr + cols, mask=col_ok, other=0.0)[None, :]
        keep = col_ok[None, :] & (cols[None, :] != exclude[:, None])
        if HAS_GROUPS:
            col_group = tl.load(col_group_ptr + cols, mask=col_ok, other=-2)
            keep = keep & (col_group[None, :] == row_group[:, None])
        s = tl.where(keep, s, float("-inf"))
        top, total = _online_logsumexp(s, top, total)
        if HAS_LABELS:
            col_label = tl.load(col_label_ptr + cols, mask=col_ok, other=-2)
            s_class = tl.where(col_label[None, :] == row_label[:, None], s, float("-inf"))
            class_top, in_class = _online_logsumexp(s_class, class_top, in_class)
    out = split.to(tl.int64) * M + rows64
    tl.store(top_ptr + out, top, mask=row_ok)
    tl.store(total_ptr + out, total, mask=row_ok)
    if HAS_LABELS:
        tl.store(class_top_ptr + out, class_top, mask=row_ok)
        tl.store(in_class_ptr + out, in_class, mask=row_ok)


@triton.jit
def _dot_in_steps(left_ptr, w_ptr, rows64, row_ok, cols64, col_ok, ks, K,
                  stride_lm, stride_lk, stride_wk, stride_wn, acc, BLOCK_K: tl.constexpr, PRECISION: tl.constexpr):
    """acc + left[rows, :K] @ w[:K, cols], K in steps of BLOCK_K (masked beyond K)."""
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + ks
        left_k = tl.load(
            left_ptr + rows64[:, None] * stride_lm + kk[None, :] * stride_lk,
            mask=row_ok[:, None] & (kk[None, :] < K),
            other=0.0,
        )
        w = tl.load(
            w_ptr + kk[:, None].to(tl.int64) * stride_wk + cols64[None, :] * stride_wn,
            mask=(kk[:, None] < K) & col_ok[None, :],
            other=0.0,
        )
        acc = tl.dot(left_k, w, acc=acc, input_precision=PRECISION, out_dtype=left_ptr.dtype.element_ty)
    return acc


@triton.jit
def _online_logsumexp(s, top, total):
    """One tile of an online log-sum-exp per row: the running maximum ``top`` (dtype of s) and
    the float64 running sum of exp(s - top), updated with the BLOCK_M x BLOCK_N scores s."""
    new_top = tl.maximum(top, tl.max(s, axis=1))
    # A row with nothing finite so far keeps top = -inf; its reference is 0 so that
    # exp(-inf - 0) = 0 instead of exp(-inf + inf) = nan.
    ref = tl.where(new_top == float("-inf"), 0.0, new_top)
    scale = tl.math.exp2((top - ref) * LOG2E)
    # exp(s - ref) as exp2 of one fused multiply-add; s - ref is small where it matters.
    p = tl.math.exp2(s * LOG2E - (ref * LOG2E)[:, None])
    return new_top, total * scale.to(tl.float64) + tl.sum(p, axis=1).to(tl.float64)
