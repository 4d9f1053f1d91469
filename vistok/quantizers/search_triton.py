"""Fused nearest-code search for CUDA (Triton): the distance matrix never leaves registers.

Imported by :func:`vistok.quantizers.search.nearest_code` on first use with CUDA tensors of small dimension
(``TRITON_MAX_DIM``); importing it without Triton raises ImportError, which that function handles.

Each program owns a tile of z rows and sweeps the codebook tile by tile: it forms ½||c||² − z·c with ``tl.dot``
(IEEE float32 products for float32 inputs; bfloat16/float16 products on the tensor cores are exact in the
float32 accumulator), then folds the tile's minimum into a running (value, first index) pair. Only the (N,)
int64 result is written.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["nearest_code_triton"]


@triton.autotune(
    configs=[
        triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
        for bn, bk, w, s in [
            (64, 64, 4, 2),
            (128, 64, 4, 2),
            (64, 128, 4, 2),
            (128, 128, 8, 2),
            (128, 128, 8, 3),
            (256, 64, 8, 2),
        ]
    ],
    key=["K", "D", "BLOCK_D", "IEEE"],
)
@triton.jit
def _nearest_code_kernel(
    z_ptr, c_ptr, bias_ptr, out_ptr, N, K, D, stride_zn, stride_zd, stride_ck, stride_cd,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr, IEEE: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    best_value = tl.full([BLOCK_N], float("inf"), tl.float32)
    best_index = tl.zeros([BLOCK_N], tl.int64)
    for k0 in range(0, K, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        col_ok = cols < K
        acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
        for d0 in range(0, D, BLOCK_D):
            dims = d0 + tl.arange(0, BLOCK_D)
            dim_ok = dims < D
            z_tile = tl.load(
                z_ptr + rows[:, None] * stride_zn + dims[None, :] * stride_zd,
                mask=row_ok[:, None] & dim_ok[None, :],
                other=0.0,
            )
            c_tile = tl.load(
                c_ptr + cols[None, :].to(tl.int64) * stride_ck + dims[:, None] * stride_cd,
                mask=col_ok[None, :] & dim_ok[:, None],
                other=0.0,
            )
            if IEEE:
                acc = tl.dot(z_tile, c_tile, acc, input_precision="ieee")
            else:
                acc = tl.dot(z_tile, c_tile, acc)
        bias = tl.load(bias_ptr + cols, mask=col_ok, other=float("inf"))
        tile_value, tile_index = tl.min(
            bias[None, :] - acc, axis=1, return_indices=True, return_indices_tie_break_left=True
        )
        better = tile_value < best_value  # strict: an earlier tile keeps a tie, like argmin
        best_value = tl.where(better, tile_value, best_value)
        best_index = tl.where(better, tile_index.to(tl.int64) + k0, best_index)
    tl.store(out_ptr + rows, best_index, mask=row_ok)


def nearest_code_triton(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Same contract as ``nearest_code`` for validated, non-empty CUDA float16/bfloat16/float32 inputs.

    Extra memory: the (K,) float32 code biases only.
    """
    n, d = z.shape
    k = codebook.shape[0]
    out = torch.empty(n, dtype=torch.int64, device=z.device)
    codes32 = codebook.float()
    bias = 0.5 * (codes32 * codes32).sum(dim=1)
    with torch.cuda.device(z.device):
        _nearest_code_kernel[lambda meta: (triton.cdiv(n, meta["BLOCK_N"]),)](
            z, codebook, bias, out, n, k, d, z.stride(0), z.stride(1), codebook.stride(0), codebook.stride(1),
            BLOCK_D=max(16, min(64, triton.next_power_of_2(d))), IEEE=z.dtype == torch.float32,
        )  # fmt: skip
    return out
