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

A stuck psum bit acts on the sum, not on a product: where one is stuck (and not bypassed),
the gather-add keeps each fold's chains apart and, after adding row ``k``, applies the
masks of that row's stuck psum registers to the chains they hold (a short list per row);
at the end of a fold its chains are added to the result. Integer sums wrap, so the order of
additions between two stuck registers does not matter; at them it does, and is kept.
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
def _build(T, TT, wp, k0, k1, byp, seg_ptr, seg, pm, p_shift, pfault, P):
    """``P[k - k0, v, n]`` for ``k`` in ``[k0, k1)`` (see the module docstring).

    ``T`` is the product table, ``T[(w + 128) * 256 + a + 128]``; ``TT`` its transpose,
    ``TT[v, w + 128]``, with a column of zeros at 256 (for bypassed PEs). The act a PE sees
    is its row segment's composed mask of ``v`` (``seg[j] = (lo, hi, and, or)``, row ``r``'s
    segments ``seg_ptr[r]:seg_ptr[r + 1]``), so for each act code and segment the entries
    are gathers from one 256-entry row of ``TT`` (it stays in L1), written contiguously.
    PEs with a stuck product bit (``pfault``) are then recomputed through their masks.
    """
    R, C = byp.shape
    N = wp.shape[1]
    for kk in prange(k0, k1):
        r = kk % R
        idx = np.empty(N, np.int64)
        for n in range(N):
            idx[n] = 256 if byp[r, n % C] else wp[kk, n] + 128
        for v in range(256):
            row = P[kk - k0, v]
            for g in range(seg_ptr[r], seg_ptr[r + 1]):
                a = (((v - 128) & seg[g, 2]) | seg[g, 3]) << 56 >> 56  # the act, an int8 pattern
                tv = TT[a + 128]
                for n0 in range(0, N, C):
                    for n in range(n0 + seg[g, 0], min(N, n0 + seg[g, 1])):
                        row[n] = tv[idx[n]]
        for g in range(seg_ptr[r], seg_ptr[r + 1]):
            for n0 in range(0, N, C):
                for n in range(n0 + seg[g, 0], min(N, n0 + seg[g, 1])):
                    c = n - n0
                    if byp[r, c] or not pfault[r, c]:
                        continue
                    base = (wp[kk, n] + 128) * 256
                    for v in range(256):
                        a = (((v - 128) & seg[g, 2]) | seg[g, 3]) << 56 >> 56
                        p = (np.int64(T[base + a + 128]) & pm[0, r, c]) | pm[1, r, c]
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


@njit(cache=True, parallel=True)
def _accumulate_chains(xp, k0, k1, P, R, ps_ptr, ps, col, start, acc):
    """As :func:`_accumulate`, with row ``r``'s stuck psum registers ``ps[ps_ptr[r]:ps_ptr[r + 1]]
    = (j, and, or)`` applied after its row is added to the chains of output column
    ``col[j]``. A chain is the part of ``acc`` added since its fold began (``start[m, j]``
    holds ``acc`` then), so only the columns with a stuck psum register keep one."""
    M = xp.shape[0]
    N = acc.shape[1]
    for b in prange((M + _BLOCK - 1) // _BLOCK):
        for m in range(b * _BLOCK, min(M, b * _BLOCK + _BLOCK)):
            row = acc[m]
            st = start[m]
            r = k0 % R - 1
            for kk in range(k0, k1):
                r = r + 1 if r + 1 < R else 0  # kk mod R (a division per row costs as much as its adds)
                if r == 0:
                    for j in range(col.shape[0]):
                        st[j] = row[col[j]]
                src = P[kk - k0, np.int64(xp[m, kk]) + 128]
                for n in range(N):
                    row[n] += src[n]
                for i in range(ps_ptr[r], ps_ptr[r + 1]):
                    j = ps[i, 0]
                    n = col[j]
                    s = (np.int64(row[n]) - st[j]) & 0xFFFFFFFF  # the chain, modulo 2**32
                    v = st[j] + ((s & ps[i, 1]) | ps[i, 2])
                    row[n] = (v << 32) >> 32


def table_applies(precision, masks, bypass) -> bool:
    """Whether this path computes the array's result: table products and integer sums."""
    return bool(getattr(precision, "table_sums", False))


def _stuck_psums(masks, byp, N):
    """``(ps_ptr, ps, col)``: the output columns ``col`` with a stuck psum register (not
    bypassed) in their physical column ``n mod C``, and per array row ``r`` the registers
    ``ps[ps_ptr[r]:ps_ptr[r + 1]] = (j, and, or)``: the one at ``(r, col[j] mod C)``."""
    R, C = byp.shape
    bad = (stuck(masks[3, 0], masks[3, 1]) & ~byp)[:, np.arange(N) % C]  # (R, N)
    col = np.nonzero(bad.any(axis=0))[0]
    rr, jj = np.nonzero(bad[:, col])
    nn = col[jj] % C
    ps = np.stack([jj, masks[3, 0][rr, nn], masks[3, 1][rr, nn]], axis=1).astype(np.int64)
    return np.searchsorted(rr, np.arange(R + 1)).astype(np.int64), ps.reshape(-1, 3), col.astype(np.int64)


def run_table(ops: Prepared, precision):
    """Result patterns (int64 ``(M, N)``) of a prepared GEMM on a table precision."""
    R, C, M, K, N, nkf = ops.R, ops.C, ops.M, ops.K, ops.N, ops.nkf
    masks, byp = ops.masks, ops.byp
    T = precision.kernels().table
    p_bits = precision.widths()[2]
    seg_ptr, seg, _ = ops.segments
    pm = masks[2].astype(np.int64)
    pfault = stuck(masks[2, 0], masks[2, 1])
    kp = nkf * R
    xp = np.zeros((M, kp), np.int8)
    xp[:, :K] = ops.x
    dtype = np.int16 if p_bits <= 16 else np.int32
    TT = np.zeros((256, 257), dtype)
    TT[:, :256] = T.reshape(256, 256).T
    P = np.empty((_CHUNK, 256, N), dtype)
    acc = np.zeros((M, N), np.int32)  # wraps modulo 2**32; sign-extended to acc_bits at the end
    ps_ptr, ps, col = _stuck_psums(masks, byp, N)
    start = np.zeros((M, len(col)), np.int64)
    wp = ops.wp
    for k0 in range(0, kp, _CHUNK):
        k1 = min(kp, k0 + _CHUNK)
        _build(T, TT, wp, k0, k1, byp, seg_ptr, seg, pm, np.int64(64 - p_bits), pfault, P)
        if len(col):
            _accumulate_chains(xp, k0, k1, P, R, ps_ptr, ps, col, start, acc)
        else:
            _accumulate(xp, k0, k1, P, acc)
    shift = 64 - precision.acc_bits
    return (acc.astype(np.int64) << shift) >> shift
