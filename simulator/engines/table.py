"""The ``fast`` engine's path for table products with integer sums (LUT precisions).

An approximate multiplier's product is no bilinear form, so BLAS cannot compute it; but its
sums are integers, and integer addition modulo ``2**acc_bits`` is associative: the products
of a column may be added in any order. For every reduction row ``k`` the engine builds

    P_k[v, n] = the product PE (k mod R, n mod C) forms for the act code v:

the weight as its register latched it, the act through the act masks of its row up to and
including the PE, the product register's masks; a bypassed PE contributes 0. Then

    Y[m, n] = wrap( sum_k P_k[x[m, k], n] )

is a gather-add: for each input vector and row, one contiguous row of ``P_k`` added to the
output row, in SIMD lanes over ``n``. Idle rows (``k >= K``) see act code 0 and are added
like the others. The tables are built and used a chunk of rows at a time (a few MB).

A stuck psum bit acts on the sum, not on a product: a chip with one (not bypassed) takes
the order-preserving path instead (:mod:`simulator.engines.ordered`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..masks import stuck
from .ordered import Prepared

__all__ = ["run_table", "table_applies"]

_CHUNK = 16  # reduction rows per table chunk
_BLOCK = 64  # input vectors per accumulation block


@njit(cache=True, parallel=True)
def _build(T, wp, k0, k1, byp, cum_and, cum_or, pm, p_shift, plain, P):
    """``P[k - k0, v, n]`` for ``k`` in ``[k0, k1)`` (see the module docstring).

    ``T`` holds the product table followed by a row of zeros (for bypassed PEs). A plain PE
    (no act fault up to it, no product fault) contributes its weight's row of ``T``: one
    branch-free gather per entry, written contiguously; the others are recomputed after.
    """
    R, C = byp.shape
    N = wp.shape[1]
    zero_row = T.shape[0] - 256
    for kk in prange(k0, k1):
        r = kk % R
        base = np.empty(N, np.int64)
        for n in range(N):
            c = n % C
            base[n] = zero_row if byp[r, c] else (wp[kk, n] + 128) * 256
        for v in range(256):
            row = P[kk - k0, v]
            for n in range(N):
                row[n] = T[base[n] + v]
        for n in range(N):
            c = n % C
            if byp[r, c] or plain[r, c]:
                continue
            for v in range(256):
                a = (((v - 128) & cum_and[r, c]) | cum_or[r, c]) << 56 >> 56  # the act, an int8 pattern
                p = (np.int64(T[base[n] + a + 128]) & pm[0, r, c]) | pm[1, r, c]
                P[kk - k0, v, n] = (p << p_shift) >> p_shift


@njit(cache=True, parallel=True)
def _accumulate(xp, k0, k1, P, acc):
    """``acc[m, :] += P[k - k0, xp[m, k] + 128, :]`` for ``k`` in ``[k0, k1)`` (int32, wrapping)."""
    M = xp.shape[0]
    N = acc.shape[1]
    for b in prange((M + _BLOCK - 1) // _BLOCK):
        for m in range(b * _BLOCK, min(M, b * _BLOCK + _BLOCK)):
            row = acc[m]
            for kk in range(k0, k1):
                src = P[kk - k0, np.int64(xp[m, kk]) + 128]
                for n in range(N):
                    row[n] += src[n]


def table_applies(precision, masks, bypass) -> bool:
    """Whether this path computes the array's result: table products, integer sums, and no
    stuck psum bit that bypass does not remove."""
    if not getattr(precision, "table_sums", False):
        return False
    psum = stuck(masks[3, 0], masks[3, 1])
    return bypass or not psum.any()


def run_table(ops: Prepared, precision):
    """Result patterns (int64 ``(M, N)``) of a prepared GEMM on a table precision."""
    R, C, M, K, N, nkf = ops.R, ops.C, ops.M, ops.K, ops.N, ops.nkf
    masks, byp = ops.masks, ops.byp
    T = np.concatenate([precision.kernels().table, np.zeros(256, np.int32)])
    p_bits = precision.widths()[2]
    _, _, (cum_and, cum_or) = ops.segments
    pm = masks[2].astype(np.int64)
    plain = (cum_and == -1) & (cum_or == 0) & ~stuck(masks[2, 0], masks[2, 1])
    kp = nkf * R
    xp = np.zeros((M, kp), np.int8)
    xp[:, :K] = ops.x
    dtype = np.int16 if p_bits <= 16 else np.int32
    P = np.empty((_CHUNK, 256, N), dtype)
    acc = np.zeros((M, N), np.int32)  # wraps modulo 2**32; sign-extended to acc_bits at the end
    wp = ops.wp
    for k0 in range(0, kp, _CHUNK):
        k1 = min(kp, k0 + _CHUNK)
        _build(T, wp, k0, k1, byp, cum_and, cum_or, pm, np.int64(64 - p_bits), plain, P)
        _accumulate(xp, k0, k1, P, acc)
    shift = 64 - precision.acc_bits
    return (acc.astype(np.int64) << shift) >> shift
