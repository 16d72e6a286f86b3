"""Stuck psum registers on the table path (:mod:`simulator.engines.table`): the chains that hold one.

A stuck psum bit acts on the sum, not on a product. The gather-add adds up to eight table rows
per pass over an output row (a *run*: one table chunk); for the chains of the output columns
with a stuck psum register in a run, the sum must pass through the register at that row.
:func:`redo_chains` redoes them after the run, for a block of 64 input vectors at once (SIMD
lanes over vectors), from the run's sum and the products of the fewest rows: either from
``acc`` before the run plus the products up to the last mask (*head*), or from the run's sum
less the products after the first mask (*tail*). A chain is the part of ``acc`` added since
its fold began (``start[b, j]`` holds ``acc`` then, for block ``b``'s vectors). The masks apply
in row order; rows without one only add. Integer sums wrap, so only the order at a stuck
register matters, and it is kept. The chains' values are copied out of and back into each
output row while it is in cache (``cv``, per block): a run's results are written back as the
fold's next run begins, the fold's last run's by :func:`flush_chains`.

Measured at 1% faults on all sites (M=4096 K=1152 N=256): redoing the chains one value at a
time per vector cost 34 ms over fault-free, this about 21 (16 with the work split by
threads). (Also tried: cutting the runs of the columns with a stuck psum at every row that
holds one and masking the sums as they stand: 125 ms against 114 ms for the per-vector redo
of that time, since the cuts leave runs of 1-3 rows.)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .table_rows import BLOCK as _BLOCK
from .table_rows import CHUNK as _CHUNK
from .table_rows import add_rows as _add_rows

__all__ = ["chain_runs", "redo_chains", "flush_chains"]


@njit(cache=True)
def chain_runs(kp, R, ps_ptr, ps):
    """The runs of the gather-add and the chains each must redo (see :func:`redo_chains`).

    Runs are the table chunks: at most 8 rows, from each fold's start on, cut at fold ends:
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
        f0 = kk // R * R
        kk = min(kp, f0 + ((kk - f0) // _CHUNK + 1) * _CHUNK, f0 + R)
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


@njit(cache=True)
def redo_chains(acc, xp, xu, i, P, R, runs, red_m, col, start, cv, Q, scr, b0, b1):
    """Run ``i`` of :func:`chain_runs` (the table chunk ``P``, from row ``cut[i]``) for the
    input-vector blocks ``b0..b1 - 1``: its rows added to ``acc`` (one thread's), each stuck
    psum register applied (module docstring). ``start``, ``cv`` (per block), ``Q`` and ``scr``
    are the thread's scratch."""
    cut, red_ptr, red_j, red_first, red_last, head, lo, hi, slot = runs
    M = xp.shape[0]
    n_col = col.shape[0]
    a, z = cut[i], cut[i + 1]
    e0, e1 = red_ptr[i], red_ptr[i + 1]
    p0 = red_ptr[i - 1] if a % R else e0  # the fold's previous run's chains, as redone
    # each chain's products as int32 tables (one gather each, over input vectors):
    # Q[e - e0, t, u] = P[t, (u ^ 0x80), col[red_j[e]]], u the act's uint8 code
    for e in range(e0, e1):
        n = col[red_j[e]]
        for t in range(lo[e], hi[e] + 1):
            for u in range(256):
                Q[e - e0, t, u] = P[t, u ^ 0x80, n]
    vals, v, rest, bef = scr[:8], scr[8], scr[9], scr[10:]
    for b in range(b0, b1):
        m0 = b * _BLOCK
        mm = np.uint64(min(M, m0 + _BLOCK) - m0)  # unsigned: no negative-index wrap-around, so SIMD
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
            _add_rows(row, P, xp, m, a, a, z, 0, acc.shape[1])
            for e in range(e0, e1):
                cv[b, e - e0, mi] = row[col[red_j[e]]]
        for e in range(e0, e1):  # each chain, for the block's vectors at once
            j = red_j[e]
            xc = xu[m0:, a:]
            t0, t1 = red_first[e], red_last[e]
            c = cv[b, e - e0]
            st = start[b, j]
            for t in range(lo[e], hi[e] + 1):
                q = Q[e - e0, t]
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


@njit(cache=True)
def flush_chains(acc, i, runs, col, cv, b0, b1):
    """Write run ``i``'s redone chains (the last of its fold) into ``acc`` for blocks ``b0..b1 - 1``."""
    red_ptr, red_j = runs[1], runs[2]
    M = acc.shape[0]
    for b in range(b0, b1):
        m0 = b * _BLOCK
        for e in range(red_ptr[i], red_ptr[i + 1]):
            n = col[red_j[e]]
            for mi in range(min(M, m0 + _BLOCK) - m0):
                acc[m0 + mi, n] = cv[b, e - red_ptr[i], mi]
