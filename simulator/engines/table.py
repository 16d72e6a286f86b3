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

The work is split by threads, not by table chunks: the (fold, block of 64 input vectors)
pairs are cut into equal parts, fold by fold; each thread builds the tables of its folds
itself and adds into its own sums, which are added up at the end (integer sums wrap, so the
order does not matter). A table then stays in the cache of the core that built it; when one
thread built half the rows of each chunk and both read all of them, moving those tables
between the cores cost about a fifth of the time (fault-free, M=4096 K=1152 N=256: 52 ms
against 42). A fold split between two threads is built by both. With more than one part, the
sums and the chains' scratch are reused from call to call (:mod:`simulator.engines.scratch`):
fresh pages cost about 15 ms per call here. For small GEMMs (one part, no stuck psum) the
per-call work is kept small: the transposed table is built once per table, and no chain
structures are made (64x25x6 on a 16x16 array: 0.18 ms per call before the split, 0.13 ms
after). The price is memory: a copy of the output per thread, kept between
calls (``efat axdnn accuracy --data mnist --models vgg --multipliers drum:4``: peak RSS 705 MB
against 596 MB before; :func:`simulator.engines.scratch.release` returns it).

A stuck psum bit acts on the sum, not on a product: where one is stuck (and not bypassed),
the chains that hold one are redone after each chunk (:mod:`simulator.engines.table_chains`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ..masks import stuck
from .ordered import Prepared
from .scratch import scratch
from .table_chains import chain_runs, flush_chains, redo_chains
from .table_rows import BLOCK as _BLOCK
from .table_rows import CHUNK as _CHUNK
from .table_rows import add_rows as _add_rows

__all__ = ["run_table", "table_applies"]



@njit(cache=True)
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
    idx = np.empty(N, np.uint64)
    for kk in range(k0, k1):
        r = kk % R  # unsigned: no negative-index wrap-around in the gathers
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


@njit(cache=True, parallel=True)
def _gemm(T, TT, w, wm, byp, seg_ptr, seg, pm, p_shift, pfault, xp, xu, items, item_ptr, runs, red_m, col, start,
          cv, Q, scr, accs):
    """Each thread ``p`` its items ``items[item_ptr[p]:item_ptr[p + 1]] = (fold, b0, b1)``: the
    fold's rows for the input-vector blocks ``b0..b1 - 1``, table chunk by table chunk (built
    by the thread, used by the thread), added into its own ``accs[p]``; with stuck psum
    registers (``col`` not empty) through :func:`redo_chains`, scratch per thread."""
    R = byp.shape[0]
    M = xp.shape[0]
    N = accs.shape[2]
    cpf = (R + _CHUNK - 1) // _CHUNK  # chunks per fold
    for p in prange(item_ptr.shape[0] - 1):
        acc = accs[p]
        acc[:, :] = 0
        P = np.empty((_CHUNK, 256, N), TT.dtype)
        for it in range(item_ptr[p], item_ptr[p + 1]):
            f, b0, b1 = items[it, 0], items[it, 1], items[it, 2]
            for j in range(cpf):
                k0 = f * R + j * _CHUNK
                k1 = min(f * R + R, k0 + _CHUNK)
                _build(T, TT, w, wm, k0, k1, byp, seg_ptr, seg, pm, p_shift, pfault, P)
                if col.shape[0]:  # the chunk is run f * cpf + j of chain_runs
                    redo_chains(acc, xp, xu, f * cpf + j, P, R, runs, red_m, col, start[p], cv[p], Q[p], scr[p], b0,
                                b1)
                else:
                    for m in range(b0 * _BLOCK, min(M, b1 * _BLOCK)):
                        _add_rows(acc[m], P, xp, m, k0, k0, k1, 0, N)
            if col.shape[0]:
                flush_chains(acc, (f + 1) * cpf - 1, runs, col, cv[p], b0, b1)


def _work(n_folds, n_blocks, n_threads):
    """``(items, item_ptr)``: the (fold, block) pairs split into ``n_threads`` equal runs, fold
    by fold, as ``(fold, b0, b1)`` items per thread (a fold is split between two threads at
    most; both build its tables)."""
    units = n_folds * n_blocks
    items = []
    for p in range(n_threads):
        u, u1 = p * units // n_threads, (p + 1) * units // n_threads
        while u < u1:
            f, b = divmod(u, n_blocks)
            b1 = min(n_blocks, b + u1 - u)
            items.append((p, f, b, b1))
            u += b1 - b
    items = np.array(items, np.int64).reshape(-1, 4)
    return items[:, 1:].copy(), np.searchsorted(items[:, 0], np.arange(n_threads + 1)).astype(np.int64)


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


_NONE = np.zeros(1, np.int64)
_TRANSPOSED: dict = {}  # id of a product table -> (the table, its transposed table with a zero column)


def _transposed(T, dtype):
    """``TT[v, w + 128] = T[(w + 128) * 256 + v]``, with a column of zeros at 256 (bypassed PEs):
    built once per table (a LUT precision's table is never written)."""
    hit = _TRANSPOSED.get(id(T))
    if hit is None or hit[0] is not T or hit[1].dtype != dtype:
        TT = np.zeros((256, 257), dtype)
        TT[:, :256] = T.reshape(256, 256).T
        if len(_TRANSPOSED) >= 16:
            _TRANSPOSED.clear()
        hit = _TRANSPOSED[id(T)] = (T, TT)
    return hit[1]


def run_table(ops: Prepared, precision, n_threads: int | None = None):
    """Result patterns (int32 ``(M, N)``, sign-extended from ``acc_bits``) of a prepared GEMM
    on a table precision, its work split in ``n_threads`` parts (default: Numba's threads)."""
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
    TT = _transposed(T, np.int16 if p_bits <= 16 else np.int32)
    n_blocks = -(-M // _BLOCK)
    n_threads = numba.get_num_threads() if n_threads is None else n_threads
    items, item_ptr = _work(nkf, n_blocks, max(1, min(n_threads, nkf * n_blocks)))
    n_threads = len(item_ptr) - 1
    ps_ptr, ps, col = _stuck_psums(masks, byp, N)
    n_c = len(col)
    if n_c:
        runs, red_m = chain_runs(kp, R, ps_ptr, ps)  # its runs are the table chunks
        n_q = max(1, int(np.diff(runs[1]).max()))  # chains per run, at most
        # reused from call to call (fresh pages, faulted in on first touch, cost more than the work)
        start = scratch("table_start", (n_threads, n_blocks, n_c, _BLOCK), np.int32)
        cv = scratch("table_cv", (n_threads, n_blocks, n_c, _BLOCK), np.int32)  # per block: no cache-set conflicts
        Q = scratch("table_q", (n_threads, n_q, 8, 256), np.int32)
        scr = scratch("table_scr", (n_threads, 10 + n_c, _BLOCK), np.int32)
    else:  # no chains: empty stand-ins of the same types
        runs, red_m = (_NONE,) * 9, np.zeros((1, 8, 2), np.int64)
        start = cv = Q = np.zeros((n_threads, 0, 0, 0), np.int32)
        scr = np.zeros((n_threads, 0, 0), np.int32)
    # each part's sums, wrapping modulo 2**32, zeroed by its thread; one part: returned as they are
    accs = np.empty((1, M, N), np.int32) if n_threads == 1 else scratch("table_accs", (n_threads, M, N), np.int32)
    _gemm(T, TT, ops.w, wm, byp, seg_ptr, seg, pm, np.int64(64 - p_bits), pfault, xp, xp.view(np.uint8), items,
          item_ptr, runs, red_m, col, start, cv, Q, scr, accs)
    acc = accs[0] if n_threads == 1 else np.add.reduce(accs, axis=0, dtype=np.int32)
    shift = 32 - precision.acc_bits  # sign-extend from acc_bits, in place
    if shift:
        np.right_shift(np.left_shift(acc, shift, out=acc), shift, out=acc)
    return acc
