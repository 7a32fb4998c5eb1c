"""A fused Triton kernel for the log-sum-exp pass of the Gaussian-dropout mixture (optional).

The h(Z) pass of :mod:`infodrop.mi.mixture` scores M samples z_r against N diagonal Gaussians.
Expanded, each log-density is one inner product plus a constant,

    log N(z; mu_j, diag sigma_j^2) = [z^2, z] . [-1/(2 sigma_j^2), mu_j/sigma_j^2] + c_j,

so a block of log-densities is a (M x 2d)(2d x N) matrix product, and the pass needs, per row,

    L_r = log sum_{j in S_r} exp(s_rj),      s_rj = left_r . w_j + b_j,

over the columns S_r = {j != exclude_r, group_j = group_r} (the component that drew z_r is left
out because mixture.py adds it exactly; groups are the zero patterns of ReLU features), and for
I(Z;Y) the same sum restricted to label_j = label_r (the row's own class), with its own running
maximum (its terms may lie far below the row's largest).

The kernel does this the way FlashAttention computes a softmax denominator: each program takes
BLOCK_M rows, walks over its columns in tiles of BLOCK_N, computes the tile's s by ``tl.dot``,
and keeps a running maximum and a running sum of exp(s - max) per row; the M x N block is never
written to memory. The products run in IEEE float32 (``input_precision='ieee'``: TF32's 10-bit
mantissa would cost 0.1 to 1 nat on this expansion, whose terms cancel from ~2d/variance down to
~d), the running sums are float64, and when the columns are split over several programs the
partial (max, sum) pairs are merged on the host in float64. float64 inputs give a float64
kernel (not timed on a GPU yet).

Backends (``backend=`` of mixture_pass, gaussian_dropout_mi and mixture_entropy):
``'blocked'`` the CPU path of :mod:`infodrop.mi.blocked_mixture` (the default on a CPU);
``'torch'`` the tiled torch path (any device); ``'triton'`` this kernel (CUDA, or CPU tensors
under Triton's interpreter, ``TRITON_INTERPRET=1``: slow, for tests); ``'auto'`` (default) this
kernel for float32 blocks on CUDA when triton is importable, 'blocked' on a CPU, else torch.

Rounding (float32): with u = 2^-24 and K = 2d, each computed s_rj differs from the exact one by at
most about (K + 4) u (sum_k |left_rk w_kj| + |b_j|) (products, the K-term sum, the rounding of
the inputs to float32, the bias), and log-sum-exp moves by no more than the largest such error.
"""

from __future__ import annotations

import os
import torch

__all__ = [
    "BACKENDS",
    "KernelConfig",
    "default_config",
    "compile_for_gpu",
    "fused_logsumexp",
    "triton_status",
    "use_triton_kernel",
]

BACKENDS = ("auto", "blocked", "torch", "triton")


class KernelConfig:
    """Launch parameters: rows and columns per tile, K per dot, warps and pipeline stages."""

    def __init__(self, block_m: int = 64, block_n: int = 64, block_k: int | None = None, num_warps: int = 4, num_stages: int = 2):
        self.block_m, self.block_n, self.block_k = block_m, block_n, block_k
        self.num_warps, self.num_stages = num_warps, num_stages

    def __repr__(self) -> str:
        return (f"KernelConfig(block_m={self.block_m}, block_n={self.block_n}, block_k={self.block_k}, "
                f"num_warps={self.num_warps}, num_stages={self.num_stages})")


def default_config(k: int, dtype: torch.dtype) -> KernelConfig:
    """float32: 64 x 64 tiles, K in steps of 32, 4 warps; float64: 32 x 32 tiles, K steps of 16.

    Chosen without a GPU, by compiling for sm_90 and reading ptxas's register report: with
    IEEE float32 Triton's dot runs on the FMA units with its operands in registers, and loading
    the whole K = 64 row block at once (or 128-row tiles with 4 warps) spills heavily; these
    settings do not spill for h(Z) alone (float32 spills 20 bytes with the class sums; float64
    not at all). benchmarks/gpu_all.py times them against a few alternatives on a GPU."""
    if dtype == torch.float64:
        return KernelConfig(block_m=32, block_n=32, block_k=16, num_warps=4)
    return KernelConfig(block_m=64, block_n=64, block_k=32, num_warps=4)


def triton_next_power_of_2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def _interpreting() -> bool:
    """Whether triton kernels run under its interpreter (TRITON_INTERPRET, read as triton does)."""
    import triton

    knobs = getattr(triton, "knobs", None)  # triton >= 3.4
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def triton_status(device: torch.device | str) -> tuple[bool, str]:
    """Whether the kernel can run on tensors of ``device``, and if not, why (one line)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False, "triton is not installed (pip install -e \".[triton]\")"
    device = torch.device(device)
    if device.type == "cuda":
        return True, ""
    if device.type == "cpu" and _interpreting():
        return True, ""
    return False, (f"triton compiles for CUDA devices, not {device.type}; on a CPU it runs only under "
                   "its interpreter (TRITON_INTERPRET=1, slow, for tests)")


def use_triton_kernel(backend: str, device: torch.device | str, dtype: torch.dtype) -> bool:
    """Resolve ``backend`` ('auto' | 'blocked' | 'torch' | 'triton') for blocks of ``dtype`` on ``device``.

    'auto' picks the kernel for float32 on CUDA when triton is importable (the float64 kernel is
    untimed, so float64 keeps the torch path unless asked); 'triton' insists and raises a
    ValueError saying why it cannot run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if backend in ("torch", "blocked"):
        return False
    available, reason = triton_status(device)
    if backend == "triton":
        if not available:
            raise ValueError(f"backend='triton' but {reason}; use backend='torch' or 'auto'")
        return True
    return available and torch.device(device).type == "cuda" and dtype == torch.float32


def _as_index(values: torch.Tensor | None, length: int, name: str, device: torch.device) -> torch.Tensor | None:
    if values is None:
        return None
    if values.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {tuple(values.shape)}")
    if values.dtype.is_floating_point or values.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers, got {values.dtype}")
    if values.device != device:
        raise ValueError(f"{name} is on {values.device} but left is on {device}; put them on one device")
    return values.to(torch.int32).contiguous()


def _splits(rows: int, n: int, config: KernelConfig, device: torch.device) -> int:
    """Programs along the columns: enough (row blocks x splits) to give every multiprocessor
    about four programs, but at least 8 column tiles per program."""
    if device.type != "cuda":
        return 1
    programs = 4 * torch.cuda.get_device_properties(device).multi_processor_count
    row_blocks = -(-rows // config.block_m)
    most = max(1, -(-n // (8 * config.block_n)))
    return max(1, min(most, -(-programs // row_blocks)))


def _check_operands(left: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor, no_row_groups: bool,
                    no_col_groups: bool, no_row_labels: bool, no_col_labels: bool, precision: str) -> None:
    """The door of :func:`fused_logsumexp`: shapes, dtypes, devices, pairs of index arguments,
    the precision and whether the kernel can run; a ValueError naming the argument otherwise."""
    if left.ndim != 2 or weights.ndim != 2 or left.shape[1] != weights.shape[0]:
        raise ValueError(f"left (M x K) and weights (K x N) must chain, got {tuple(left.shape)} and {tuple(weights.shape)}")
    if left.dtype not in (torch.float32, torch.float64) or weights.dtype != left.dtype or bias.dtype != left.dtype:
        raise ValueError(f"left, weights and bias must share a dtype, float32 or float64; got "
                         f"{left.dtype}, {weights.dtype}, {bias.dtype}")
    n = weights.shape[1]
    if bias.shape != (n,):
        raise ValueError(f"bias must have shape ({n},), got {tuple(bias.shape)}")
    if weights.device != left.device or bias.device != left.device:
        raise ValueError("left, weights and bias must be on one device")
    if no_row_groups != no_col_groups or no_row_labels != no_col_labels:
        raise ValueError("pass row_groups with col_groups and row_labels with col_labels (both or neither)")
    if precision not in ("ieee", "tf32x3"):
        raise ValueError(f"precision must be 'ieee' or 'tf32x3', got {precision!r}")
    if precision != "ieee" and left.dtype != torch.float32:
        raise ValueError("precision='tf32x3' applies to float32 inputs only; use precision='ieee'")
    available, reason = triton_status(left.device)
    if not available:
        raise ValueError(f"the fused kernel cannot run here: {reason}")


def fused_logsumexp(
    left: torch.Tensor,
    weights: torch.Tensor,
    bias: torch.Tensor,
    *,
    exclude: torch.Tensor | None = None,
    row_groups: torch.Tensor | None = None,
    col_groups: torch.Tensor | None = None,
    row_labels: torch.Tensor | None = None,
    col_labels: torch.Tensor | None = None,
    precision: str = "ieee",
    splits: int | None = None,
    config: KernelConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-row log-sum-exp of s = left @ weights + bias over the allowed columns, fused.

    Args:
        left: M x K (float32 or float64), e.g. [z^2, z] for K = 2d.
        weights: K x N, same dtype and device (any strides); bias: N.
        exclude: M integer column indices left out of row r's sum (the own component); -1 or
            None for none.
        row_groups, col_groups: optional M and N integers; only columns of the row's group
            count (zero patterns). Both or neither.
        row_labels, col_labels: optional M and N integers; then also the sum over the columns
            with the row's label (class-conditional mixture). Both or neither.
        precision: tl.dot's input_precision: 'ieee' (default; exact float32 products) or
            'tf32x3' (three TF32 products, near float32 accuracy on tensor cores; for timing).
        splits: programs along the columns (None: enough to fill the GPU; 1 on a CPU).
        config: tile sizes (None: :func:`default_config`).

    Returns:
        (log_total, log_class): float64 tensors of length M (log_class None without labels),
        -inf for a row with no allowed column.
    """
    _check_operands(left, weights, bias, row_groups is None, col_groups is None, row_labels is None,
                    col_labels is None, precision)
    m, k = left.shape
    n = weights.shape[1]
    device = left.device
    exclude = _as_index(exclude, m, "exclude", device)
    if exclude is None:
        exclude = torch.full((m,), -1, dtype=torch.int32, device=device)
    row_groups = _as_index(row_groups, m, "row_groups", device)
    col_groups = _as_index(col_groups, n, "col_groups", device)
    row_labels = _as_index(row_labels, m, "row_labels", device)
    col_labels = _as_index(col_labels, n, "col_labels", device)
    config = config or default_config(k, left.dtype)
    # A K below the step is padded (masked loads) to a power of two, at least 16 (tl.dot's least).
    block_k = min(config.block_k or 1 << 30, max(16, triton_next_power_of_2(k)))
    k_tiles = -(-k // block_k)
    if splits is None:
        splits = _splits(m, n, config, device)
    # Each split gets whole column tiles, so no tile straddles two programs.
    cols_per_split = -(-(-(-n // splits)) // config.block_n) * config.block_n
    splits = max(1, -(-n // cols_per_split))
    has_labels = row_labels is not None
    top = torch.empty(splits, m, dtype=left.dtype, device=device)
    total = torch.empty(splits, m, dtype=torch.float64, device=device)
    class_top = torch.empty(splits, m, dtype=left.dtype, device=device) if has_labels else top
    in_class = torch.empty(splits, m, dtype=torch.float64, device=device) if has_labels else total

    from infodrop.mi._mixture_kernel import mixture_logsumexp_kernel

    grid = (-(-m // config.block_m), splits)
    mixture_logsumexp_kernel[grid](
        left, weights, bias, exclude,
        row_groups if row_groups is not None else exclude,
        col_groups if col_groups is not None else exclude,
        row_labels if row_labels is not None else exclude,
        col_labels if col_labels is not None else exclude,
        top, total, class_top, in_class,
        m, n, k,
        left.stride(0), left.stride(1), weights.stride(0), weights.stride(1),
        cols_per_split,
        HAS_GROUPS=row_groups is not None,
        HAS_LABELS=has_labels,
        BLOCK_M=config.block_m,
        BLOCK_N=config.block_n,
        BLOCK_K=block_k,
        K_TILES=k_tiles,
        PRECISION=precision,
        num_warps=config.num_warps,
        num_stages=config.num_stages,
        # Contract multiply-adds into FMAs (one rounding instead of two); triton 3.9 warns that
        # its default is changing, so say it.
        enable_fp_fusion=True,
    )
    log_total = _merge_splits(top, total)
    log_class = _merge_splits(class_top, in_class) if has_labels else None
    return log_total, log_class


def _merge_splits(top: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """log sum over splits of total * exp(top) per row, in float64 (splits x M -> M)."""
    top = top.to(torch.float64)
    overall = top.amax(dim=0)
    ref = torch.where(torch.isfinite(overall), overall, torch.zeros_like(overall))
    weight = torch.exp(top - ref)  # 0 for a split with nothing allowed (top = -inf)
    return (total * weight).sum(0).log() + ref


def compile_for_gpu(capability: int = 90, dtype: torch.dtype = torch.float32, *, k: int = 64,
                    labels: bool = True, groups: bool = True, precision: str = "ieee",
                    config: KernelConfig | None = None):
    """Compile the kernel for an NVIDIA GPU of compute ``capability`` (90 = Hopper, 80 = Ampere)
    without one: triton's front end, LLVM and the ptxas that ships with triton. Returns the
    ``CompiledKernel`` (its ``asm`` holds the PTX and the cubin). Catches what the interpreter
    cannot (rules of the compiled language, unsupported dot types); needs a process where
    TRITON_INTERPRET is unset."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from infodrop.mi._mixture_kernel import mixture_logsumexp_kernel as kernel

    if _interpreting():
        raise ValueError("compile_for_gpu needs TRITON_INTERPRET unset (the kernel is interpreted in this process)")
    config = config or default_config(k, dtype)
    block_k = min(config.block_k or 1 << 30, max(16, triton_next_power_of_2(k)))
    value = {torch.float32: "*fp32", torch.float64: "*fp64"}[dtype]
    pointers = {"left_ptr": value, "w_ptr": value, "bias_ptr": value, "exclude_ptr": "*i32",
                "row_group_ptr": "*i32", "col_group_ptr": "*i32", "row_label_ptr": "*i32",
                "col_label_ptr": "*i32", "top_ptr": value, "total_ptr": "*fp64", "class_top_ptr": value,
                "in_class_ptr": "*fp64"}
    scalars = {name: "i32" for name in ("M", "N", "K", "stride_lm", "stride_lk", "stride_wk", "stride_wn", "cols_per_split")}
    constants = {"HAS_GROUPS": groups, "HAS_LABELS": labels, "BLOCK_M": config.block_m, "BLOCK_N": config.block_n,
                 "BLOCK_K": block_k, "K_TILES": -(-k // block_k), "PRECISION": precision}
    signature = {**pointers, **scalars, **{name: "constexpr" for name in constants}}
    source = ASTSource(fn=kernel, signature=signature,
                       constexprs={(kernel.arg_names.index(name),): v for name, v in constants.items()})
    return triton.compile(source, target=GPUTarget("cuda", capability, 32),
                          options={"num_warps": config.num_warps, "num_stages": config.num_stages,
                                   "enable_fp_fusion": True})
