"""The ``fast`` engine's path for table products with integer sums (LUT precisions).

An approximate multiplier's product is no bilinear form, so BLAS cannot compute it; but its
sums are integers, and integer addition modulo ``2**acc_bits`` is associative: the products
of a column may be added in any order. For every reduction row ``k`` the engine builds

    P_k[v, n] = the product PE (k mod R, n mod C) forms for the act code v:

the weight as its register latched it, the act through the act masks of its row up to and
including the PE, the product register's masks; a bypassed PE contributes 0. Then

    Y[m, n] = wrap( sum_k P_k[x[m, k], n] )

is a gather-add: for each input vector and row, one contiguous row of ``P_k`` added to the
output row, in SIMD lanes over ``n``, eight table rows per pass over the output row. Idle rows
(``k >= K``) see act code 0 and are added like the others. The tables are built and used a
chunk of eight rows at a time (1 MiB for N = 256); a row without act faults is one gather per
entry from a 256-entry row of the transposed table.

A stuck psum bit acts on the sum, not on a product: where one is stuck (and not bypassed),
the gather-add keeps each fold's chains apart (the output at the fold's start is kept) and,
after each run of up to eight rows, redoes the chains that hold a stuck psum register in the
run, for 64 input vectors at a time, with the masks applied in row order. Integer sums wrap,
so the order of additions between two stuck registers does not matter; at them it does, and
is kept.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..masks import stuck
from .ordered import Prepared

__all__ = ["run_table", "table_applies"]

_CHUNK = 8  # reduction rows per table chunk
_BLOCK = 64  # input vectors per accumulation block


@njit(cache=True, parallel=True)
def _build(T, TT, w, wm, k0, k1, byp, seg_ptr, seg, pm, p_shift, pfault, P):
    """``P[k - k0, v, n]`` for ``k`` in ``[k0, k1)`` (see the module docstring).

    ``w`` are the weights (``K``, ``N``), ``wm`` the weight registers' masks ``(2, R, C)``.
    ``T`` is the product table, ``T[(w + 128) * 256 + a + 128]``; ``TT`` its transpose,
    ``TT[v, w + 128]``, with a column of zeros at 256 (for bypassed PEs). The act a PE sees
    is its row segment's composed mask of ``v`` (``seg[j] = (lo, hi, and, or)``, row ``r``'s
    segments ``seg_ptr[r]:seg_ptr[r + 1]``), so for each act code and segment the entries
    are gathers from one 256-entry row of ``TT`` (it stays in L1), written contiguously.
    PEs with a stuck product bit (``pfault``) are then recomputed through their masks.
    """
    R, C = byp.shape
    K, N = w.shape
    for kk in prange(k0, k1):
        r = kk % R
        idx = np.empty(N, np.uint64)  # unsigned: no negative-index wrap-around in the gathers
        for n in range(N):  # the weight as latched (idle rows: pattern 0), + 128; 256 if bypassed
            c = n % C
            wk = np.int64(w[kk, n]) if kk < K else np.int64(0)
            idx[n] = 256 if byp[r, c] else ((wk & wm[0, r, c]) | wm[1, r, c]) + 128
        if seg_ptr[r + 1] - seg_ptr[r] == 1:  # no act fault in the row: one mask for every column
            sa, so = seg[seg_ptr[r], 2], seg[seg_ptr[r], 3]
            for v in range(256):
                row = P[kk - k0, v]
                tv = TT[((((v - 128) & sa) | so) << 56 >> 56) + 128]
                for q in range(N):
                    row[q] = tv[idx[q]]
        for v in range(256 if seg_ptr[r + 1] - seg_ptr[r] > 1 else 0):
            row = P[kk - k0, v]
            for g in range(seg_ptr[r], seg_ptr[r + 1]):
                a = (((v - 128) & seg[g, 2]) | seg[g, 3]) << 56 >> 56  # the act, an int8 pattern
                tv = TT[a + 128]
                for n0 in range(0, N, C):  # unsigned bounds: no negative-index wrap-around, so SIMD
                    for n in range(np.uint64(n0 + seg[g, 0]), np.uint64(min(N, n0 + seg[g, 1]))):
                        row[n] = tv[idx[n]]
        for g in range(seg_ptr[r], seg_ptr[r + 1]):
            for n0 in range(0, N, C):
                for n in range(n0 + seg[g, 0], min(N, n0 + seg[g, 1])):
                    c = n - n0
                    if byp[r, c] or not pfault[r, c]:
                        continue
                    base = np.int64(idx[n]) * 256
                    for v in range(256):
                        a = (((v - 128) & seg[g, 2]) | seg[g, 3]) << 56 >> 56
                        p = (np.int64(T[base + a + 128]) & pm[0, r, c]) | pm[1, r, c]
                        P[kk - k0, v, n] = (p << p_shift) >> p_shift


@njit(cache=True, inline="always")
def _add_rows(row, P, xp, m, k0, a, b, c0, c1):
    """``row[c0:c1] += P[k - k0, xp[m, k] + 128, c0:c1]`` for the rows ``k`` in ``[a, b)``, eight
    at a time: one pass over the output row per eight table rows (its loads and stores are
    what the gather-add waits on; measured: 8 rows per pass 48 ms, 4 rows 60 ms, 1 row 70 ms).
    ``P`` is indexed in place: a view per table row costs its reference counting."""
    lo, hi = np.uint64(c0), np.uint64(c1)  # unsigned: no negative-index wrap-around, so SIMD
    kk = a
    while kk + 8 <= b:
        i0, v0 = kk - k0, np.int64(xp[m, kk]) + 128
        v1, v2, v3 = np.int64(xp[m, kk + 1]) + 128, np.int64(xp[m, kk + 2]) + 128, np.int64(xp[m, kk + 3]) + 128
        v4, v5, v6 = np.int64(xp[m, kk + 4]) + 128, np.int64(xp[m, kk + 5]) + 128, np.int64(xp[m, kk + 6]) + 128
        v7 = np.int64(xp[m, kk + 7]) + 128
        for n in range(lo, hi):
            row[n] += ((np.int32(P[i0, v0, n]) + np.int32(P[i0 + 1, v1, n]))
                       + (np.int32(P[i0 + 2, v2, n]) + np.int32(P[i0 + 3, v3, n]))) \
                + ((np.int32(P[i0 + 4, v4, n]) + np.int32(P[i0 + 5, v5, n]))
                   + (np.int32(P[i0 + 6, v6, n]) + np.int32(P[i0 + 7, v7, n])))
        kk += 8
    while kk < b:
        i0, v0 = kk - k0, np.int64(xp[m, kk]) + 128
        for n in range(lo, hi):
            row[n] += P[i0, v0, n]
        kk += 1


@njit(cache=True, parallel=True)
def _accumulate(xp, k0, k1, P, acc):
    """``acc[m, :] += P[k - k0, xp[m, k] + 128, :]`` for ``k`` in ``[k0, k1)`` (int32, wrapping)."""
    M = xp.shape[0]
    for b in prange((M + _BLOCK - 1) // _BLOCK):
        for m in range(b * _BLOCK, min(M, b * _BLOCK + _BLOCK)):
            _add_rows(acc[m], P, xp, m, k0, k0, k1, 0, acc.shape[1])


@njit(cache=True)
def _chain_runs(kp, R, ps_ptr, ps):
    """The runs of the gather-add and the chains each must redo (see :func:`_accumulate_chains`).

    Runs are at most 8 rows, cut at multiples of 8 (the table chunks) and at fold ends:
    ``cut[i]:cut[i + 1]``. Run ``i`` redoes the chains ``e`` in ``red_ptr[i]:red_ptr[i + 1]``:
    output column ``col[red_j[e]]``, masks per row of the run ``red_m[e, t] = (and, or)``
    (``(-1, 0)``: none), the first and last row with one. Each takes the products of rows
    ``lo[e]..hi[e]`` one by one: the fewer of "from the run's start to its last mask" (*head*,
    from ``acc`` before the run; ``slot[e]`` keeps it) and "after its first mask to the run's
    end" (*tail*, from ``acc`` after the run).
    """
    n_max = kp // 8 + kp // R + 2
    cut = np.empty(n_max + 1, np.int64)
    n_cut = 0
    kk = 0
    while kk < kp:
        cut[n_cut] = kk
        n_cut += 1
        kk = min(kp, (kk // 8 + 1) * 8, (kk // R + 1) * R)
    cut[n_cut] = kp
    red_ptr = np.zeros(n_cut + 1, np.int64)
    n_all = 0  # entries: at most one per stuck register and fold
    for i in range(n_cut):
        for kk in range(cut[i], cut[i + 1]):
            n_all += ps_ptr[kk % R + 1] - ps_ptr[kk % R]
    red_j = np.empty(n_all + 1, np.int64)
    red_m = np.empty((n_all + 1, 8, 2), np.int64)
    red_first = np.empty(n_all + 1, np.int64)
    red_last = np.empty(n_all + 1, np.int64)
    n_red = 0
    for i in range(n_cut):
        for kk in range(cut[i], cut[i + 1]):
            r = kk % R
            for q in range(ps_ptr[r], ps_ptr[r + 1]):
                at = -1
                for e in range(red_ptr[i], n_red):
                    if red_j[e] == ps[q, 0]:
                        at = e
                if at < 0:
                    at = n_red
                    n_red += 1
                    red_j[at] = ps[q, 0]
                    red_m[at, :, 0] = -1
                    red_m[at, :, 1] = 0
                    red_first[at] = kk - cut[i]
                red_last[at] = kk - cut[i]
                red_m[at, kk - cut[i], 0] = ps[q, 1]
                red_m[at, kk - cut[i], 1] = ps[q, 2]
        red_ptr[i + 1] = n_red
    head = np.zeros(n_red + 1, np.int64)
    lo = np.zeros(n_red + 1, np.int64)
    hi = np.zeros(n_red + 1, np.int64)
    slot = np.zeros(n_red + 1, np.int64)
    for i in range(n_cut):
        n_head = 0
        for e in range(red_ptr[i], red_ptr[i + 1]):
            run = cut[i + 1] - cut[i]
            head[e] = red_last[e] + 1 < run - 1 - red_first[e]
            lo[e], hi[e] = (0, red_last[e]) if head[e] else (red_first[e] + 1, run - 1)
            if head[e]:
                slot[e] = n_head
                n_head += 1
    return (cut[:n_cut + 1], red_ptr, red_j, red_first, red_last, head, lo, hi, slot), red_m


@njit(cache=True, parallel=True)
def _accumulate_chains(xp, xu, i0, i1, k0, P, R, runs, red_m, col, start, cv, Q, scr, acc):
    """As :func:`_accumulate` for the runs ``i0..i1 - 1`` of :func:`_chain_runs` (the rows of the
    table chunk from ``k0``), with each run's stuck psum registers applied after their rows are
    added to the chains of their output columns. A chain is the part of ``acc`` added since its
    fold began (``start[b, j]`` holds ``acc`` then, for block ``b``'s vectors). Rows are added
    as in :func:`_accumulate`, up to eight per pass over the output row; the few chains with a
    stuck psum register in a run are then redone, for a block of 64 input vectors at once (SIMD
    lanes over vectors), from the run's sum and the products of the fewest rows (head or tail,
    see :func:`_chain_runs`). The masks apply in row order; rows without one only add. The
    chains' values are copied out of and back into each output row while it is in cache
    (``cv``, per block): a run's results are written back as the next run begins (the caller
    writes the last run's). ``Q`` and ``scr`` are scratch. Measured at 1% faults on all sites
    (M=4096 K=1152 N=256): redoing the chains one value at a time per vector cost 34 ms over
    fault-free, this about 21. (Also tried: cutting the runs of the columns with a stuck psum at
    every row that holds one and masking the sums as they stand: 125 ms against 114 ms for the
    per-vector redo of that time, since the cuts leave runs of 1-3 rows.)"""
    cut, red_ptr, red_j, red_first, red_last, head, lo, hi, slot = runs
    M = xp.shape[0]
    n_col = col.shape[0]
    # each chain's products as int32 tables (one gather each, over input vectors):
    # Q[e - red_ptr[i0], t, u] = P[cut[i] + t - k0, (u ^ 0x80), col[red_j[e]]], u the act's uint8 code
    for i in range(i0, i1):
        for e in range(red_ptr[i], red_ptr[i + 1]):
            n = col[red_j[e]]
            for t in range(lo[e], hi[e] + 1):
                for u in range(256):
                    Q[e - red_ptr[i0], t, u] = P[cut[i] + t - k0, u ^ 0x80, n]
    for b in prange((M + _BLOCK - 1) // _BLOCK):
        m0 = b * _BLOCK
        mm = np.uint64(min(M, m0 + _BLOCK) - m0)  # unsigned: no negative-index wrap-around, so SIMD
        vals, v, rest, bef = scr[b, :8], scr[b, 8], scr[b, 9], scr[b, 10:]  # the block's scratch
        for i in range(i0, i1):
            a, z = cut[i], cut[i + 1]
            e0, e1 = red_ptr[i], red_ptr[i + 1]
            p0 = red_ptr[i - 1] if i > 0 else e0  # the previous run's chains, as redone
            for mi in range(mm):  # each vector's output row, while it is in cache
                m = m0 + mi
                row = acc[m]
                for e in range(p0, e0):
                    row[col[red_j[e]]] = cv[b, e - p0, mi]
                if a % R == 0:  # a fold begins: its chains start from here
                    for j in range(n_col):
                        start[b, j, mi] = row[col[j]]
                for e in range(e0, e1):
                    if head[e]:
                        bef[slot[e], mi] = row[col[red_j[e]]]
                _add_rows(row, P, xp, m, k0, a, z, 0, acc.shape[1])
                for e in range(e0, e1):
                    cv[b, e - e0, mi] = row[col[red_j[e]]]
            for e in range(e0, e1):  # each chain, for the block's vectors at once
                j = red_j[e]
                xc = xu[m0:, a:]
                t0, t1 = red_first[e], red_last[e]
                c = cv[b, e - e0]
                st = start[b, j]
                for t in range(lo[e], hi[e] + 1):
                    q = Q[e - red_ptr[i0], t]
                    for mi in range(mm):
                        vals[t, mi] = q[xc[mi, t]]
                # v: the chain through row t0, unmasked; rest: the products after row t1
                if head[e]:
                    h = bef[slot[e]]
                    for mi in range(mm):
                        v[mi] = h[mi]
                        rest[mi] = c[mi] - h[mi]
                    for t in range(t1 + 1):
                        for mi in range(mm):
                            rest[mi] -= vals[t, mi]
                    for t in range(t0 + 1):
                        for mi in range(mm):
                            v[mi] += vals[t, mi]
                else:
                    for mi in range(mm):
                        v[mi] = c[mi]
                        rest[mi] = 0
                    for t in range(t0 + 1, z - a):
                        for mi in range(mm):
                            v[mi] -= vals[t, mi]
                    for t in range(t1 + 1, z - a):
                        for mi in range(mm):
                            rest[mi] += vals[t, mi]
                for t in range(t0, t1 + 1):  # masks in row order; rows without one only add
                    if t > t0:
                        for mi in range(mm):
                            v[mi] += vals[t, mi]
                    ma, mo = red_m[e, t, 0], red_m[e, t, 1]
                    if ma != -1 or mo != 0:
                        a32, o32 = np.int32((ma << 32) >> 32), np.int32((mo << 32) >> 32)
                        for mi in range(mm):  # the chain modulo 2**32, through the register
                            v[mi] = st[mi] + (((v[mi] - st[mi]) & a32) | o32)
                for mi in range(mm):
                    c[mi] = v[mi] + rest[mi]


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
    """Result patterns (int32 ``(M, N)``, sign-extended from ``acc_bits``) of a prepared GEMM
    on a table precision."""
    R, M, K, N, nkf = ops.R, ops.M, ops.K, ops.N, ops.nkf
    masks, byp = ops.masks, ops.byp
    T = precision.kernels().table
    p_bits = precision.widths()[2]
    seg_ptr, seg, _ = ops.segments
    wm, pm = masks[1].astype(np.int64), masks[2].astype(np.int64)
    pfault = stuck(masks[2, 0], masks[2, 1])
    kp = nkf * R
    xp = np.ascontiguousarray(ops.x, np.int8)
    if kp > K:  # idle rows see act code 0
        xp = np.zeros((M, kp), np.int8)
        xp[:, :K] = ops.x
    dtype = np.int16 if p_bits <= 16 else np.int32
    TT = np.zeros((256, 257), dtype)
    TT[:, :256] = T.reshape(256, 256).T
    P = np.empty((_CHUNK, 256, N), dtype)
    acc = np.zeros((M, N), np.int32)  # wraps modulo 2**32; sign-extended to acc_bits at the end
    ps_ptr, ps, col = _stuck_psums(masks, byp, N)
    n_blocks = -(-M // _BLOCK)
    start = np.zeros((n_blocks, len(col), _BLOCK), np.int32)  # per block: no cache-set conflicts
    cv = np.zeros((n_blocks, len(col), _BLOCK), np.int32)
    scr = np.empty((n_blocks, 10 + len(col), _BLOCK), np.int32)  # per block: products, chains, acc before a run
    if len(col):
        runs, red_m = _chain_runs(kp, R, ps_ptr, ps)
        cut, red_ptr, red_j = runs[:3]
        at = np.searchsorted(cut, np.arange(0, kp + _CHUNK, _CHUNK).clip(max=kp))  # each chunk's runs
        Q = np.empty((max(1, int(np.diff(red_ptr[at]).max())), 8, 256), np.int32)
    for c, k0 in enumerate(range(0, kp, _CHUNK)):
        k1 = min(kp, k0 + _CHUNK)
        _build(T, TT, ops.w, wm, k0, k1, byp, seg_ptr, seg, pm, np.int64(64 - p_bits), pfault, P)
        if len(col):
            _accumulate_chains(xp, xp.view(np.uint8), at[c], at[c + 1], k0, P, R, runs, red_m, col, start, cv, Q,
                               scr, acc)
        else:
            _accumulate(xp, k0, k1, P, acc)
    if len(col) and red_ptr[-1] > red_ptr[-2]:  # the last run's chains, as redone
        e0, e1 = red_ptr[-2], red_ptr[-1]
        acc[:, col[red_j[e0:e1]]] = cv[:, :e1 - e0].transpose(0, 2, 1).reshape(-1, e1 - e0)[:M]
    shift = 32 - precision.acc_bits  # sign-extend from acc_bits, in place
    if shift:
        np.right_shift(np.left_shift(acc, shift, out=acc), shift, out=acc)
    return acc
