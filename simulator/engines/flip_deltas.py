"""Transient flips in the ``fast`` engine where sums are modular integers: most flips as deltas.

For precisions whose psum and fold sums are integers modulo ``2**acc_bits`` and whose
register values are their patterns (``precision.blas_exact``, ``precision.table_sums``), a
fold's chain is the wrapped sum of one *term* per PE, its product register's pattern, as long
as no psum register below that PE is stuck or flipped: up to there a chain only adds. A term
depends on the PE's own registers only: its weight (with the weight flips so far in the fold),
the act it sees (with the act flips to its left in that cycle), its product flip and masks. So
a weight, act or product flip of PE ``(r, c)``, where no live psum register of rows ``r..R-1``
of column ``c`` is stuck (:func:`linear_pes`), changes each output it reaches by exactly the
change of that term, modulo ``2**acc_bits``:

* a weight flip: ``T(w', a[m]) - T(w, a[m])`` for every ``m`` from its first vector to the
  end of the fold, ``w' = ((w ^ xor) & and) | or`` as the register latches it; several
  flips of one PE compose by XOR, piecewise in ``m``: O(M) per flip, not O(M K);
* an act or product flip: the term of each PE it reaches for its one input vector (for an
  act flip, the PEs from its own to the end of the row's column fold), computed with every
  flip of that PE and vector (the weight then holds its flipped value).

Terms of different PEs add. A psum flip is no change of a term, but of a chain: where no live
psum register below the chain's lowest psum flip (row ``r1``) is stuck, the output changes by
the chain's value after row ``r1`` with the flips minus without its psum flips, both computed
exactly over rows ``0..r1`` of that fold (O(R), not O(K)).

The rest is recomputed exactly from scratch by the kernels of :mod:`simulator.engines.replay`,
overwriting the delta-updated values: outputs an act or product flip reaches through a PE
above a stuck psum register, chains with a stuck psum register below their lowest psum flip,
and the columns with a weight flip above a stuck psum register (from that flip's first vector
on). On a chip without stuck psum bits nothing is."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ..masks import stuck
from ..precision.kernels import acc, add, dec, mul, pat, val
from .ordered import Prepared
from .replay import _ACT, _PRODUCT, _PSUM, _WEIGHT, _flipped, _latched, act_masks, act_reach, column_ranges, \
    event_rows, locate, replay, threads_for

__all__ = ["replay_flips_modular", "linear_pes"]


@njit(cache=True, inline="always")
def _term(k, w, a, fp, pa, po):
    """The product register's pattern (a term of the chain's sum) for weight and act patterns."""
    return ((pat(k, mul(k, dec(k, w), dec(k, a))) ^ fp) & pa) | po


_BLOCK = 64  # input vectors per block of the weight-delta kernel
#: Below this many steps the kernels here run on one thread. On the integer path they follow
#: BLAS, whose worker threads spin for a while after a call and slow Numba threads beside them
#: (measured, int8 M=4096 K=1152 N=256 on 128x128, 1,000 flips: 48 ms with the deltas on two
#: threads, 30 ms on one; drum:4 likewise, 176 against 139 ms).
_PARALLEL_WORK = 1 << 22


@njit(cache=True, parallel=True)
def _weight_deltas(k, x, pieces, cols, res):
    """Add to ``res`` the change of the terms of weight-flipped PEs (see the module docstring).

    ``pieces`` rows ``(j, kk, lo, hi, w, w', and, or, p_and, p_or)``: output column ``cols[j]``
    gets ``T(w', a) - T(w, a)`` for input vectors ``lo..hi-1``, ``a`` the act pattern of input
    row ``kk`` (0 for an idle row, ``kk >= K``) through the composed act masks ``and``, ``or``,
    ``T`` through the product masks. Threads take blocks of input vectors: the block's rows of
    ``x`` stay in cache, and the result is updated row by row.
    """
    M, K = x.shape
    B = _BLOCK
    for b in prange((M + B - 1) // B):
        b0 = b * B
        b1 = min(M, b0 + B)
        d = np.zeros((B, cols.shape[0]), np.int64)
        for i in range(pieces.shape[0]):
            lo, hi = max(pieces[i, 2], b0), min(pieces[i, 3], b1)
            if hi <= lo:
                continue
            j, kk, w0, w1 = pieces[i, 0], pieces[i, 1], pieces[i, 4], pieces[i, 5]
            ca, co, pa, po = pieces[i, 6], pieces[i, 7], pieces[i, 8], pieces[i, 9]
            if kk < K:
                for m in range(lo, hi):
                    a = (np.int64(x[m, kk]) & ca) | co
                    d[m - b0, j] += _term(k, w1, a, 0, pa, po) - _term(k, w0, a, 0, pa, po)
            else:  # an idle row: input 0
                t = _term(k, w1, co, 0, pa, po) - _term(k, w0, co, 0, pa, po)
                for m in range(lo, hi):
                    d[m - b0, j] += t
        for m in range(b0, b1):
            row = res[m]
            dm = d[m - b0]
            for j in range(cols.shape[0]):
                row[cols[j]] = acc(k, row[cols[j]], dm[j])


def _weight_pieces(e, wd, ops, cum_and, cum_or):
    """``(pieces, cols)`` for :func:`_weight_deltas` from the weight flips ``wd`` (indices into
    the events ``e``): per PE and fold, the flips' XOR patterns compose from each flip's first
    input vector to the next flip's, the register latching ``((w ^ xor) & and) | or``."""
    M, K = ops.M, ops.K
    if wd.size == 0:
        return np.zeros((0, 10), np.int64), np.zeros(0, np.int64)
    order = np.lexsort((e.m[wd], e.kk[wd], e.n[wd]))  # by column, row, first vector
    i = wd[order]
    n, kk, r, c, lo = e.n[i], e.kk[i], e.r[i], e.c[i], e.m[i]
    new = np.r_[True, (n[1:] != n[:-1]) | (kk[1:] != kk[:-1])]
    cum = np.bitwise_xor.accumulate(e.xor[i])
    start = np.maximum.accumulate(np.where(new, np.arange(i.size), 0))
    x_or = cum ^ np.where(start > 0, cum[start - 1], 0)  # the XOR of the PE's flips so far
    hi = np.r_[lo[1:], M]
    hi[np.r_[new[1:], True]] = M
    wm = ops.masks[1].astype(np.int64)
    raw = np.where(kk < K, ops.w[np.minimum(kk, K - 1), np.minimum(n, ops.N - 1)].astype(np.int64), 0)
    w0 = (raw & wm[0, r, c]) | wm[1, r, c]
    w1 = ((w0 ^ x_or) & wm[0, r, c]) | wm[1, r, c]
    keep = (hi > lo) & (w1 != w0)
    cols, j = np.unique(n[keep], return_inverse=True)
    pm = ops.masks[2].astype(np.int64)
    rk, ck = r[keep], c[keep]
    pieces = np.stack([j.ravel(), kk[keep], lo[keep], hi[keep], w0[keep], w1[keep], cum_and[rk, ck], cum_or[rk, ck],
                       pm[0, rk, ck], pm[1, rk, ck]], axis=1).astype(np.int64).reshape(-1, 10)
    return np.ascontiguousarray(pieces), cols.astype(np.int64)


@njit(cache=True, parallel=True)
def _point_deltas(k, x, w, byp, am, wm, pm, cum_and, cum_or, ev, ptr, pts, col_ptr, res):
    """Add to ``res`` the change of the term of each point ``pts`` row ``(f, r, c, m, n, kk)``: PE
    ``(r, c)`` in fold ``f`` for input vector ``m`` (output ``(m, n)``, reduction row ``kk``), with
    the flips of that fold and row (``ev``, ``ptr``: :func:`replay.event_rows`) against the term
    with only its weight flips. Points are grouped by output column with ``col_ptr``."""
    M, K = x.shape
    R = byp.shape[0]
    for q in prange(col_ptr.shape[0] - 1):
        for i in range(col_ptr[q], col_ptr[q + 1]):
            f, r, c, m, n, kk = pts[i, 0], pts[i, 1], pts[i, 2], pts[i, 3], pts[i, 4], pts[i, 5]
            e0, e1 = ptr[f * R + r], ptr[f * R + r + 1]
            xp = np.int64(x[m, kk]) if kk < K else np.int64(0)
            a, wf, fp, _ = _flipped(xp, m, r, c, _latched(w, wm, kk, n, r, c), byp, am, wm, cum_and, cum_or, ev,
                                    e0, e1)
            a0 = (xp & cum_and[r, c]) | cum_or[r, c]
            pa, po = pm[0, r, c], pm[1, r, c]
            res[m, n] = acc(k, res[m, n], _term(k, wf, a, fp, pa, po) - _term(k, wf, a0, 0, pa, po))


@njit(cache=True, parallel=True)
def _psum_deltas(k, x, w, byp, am, wm, pm, sm, cum_and, cum_or, ev, ptr, chains, col_ptr, res):
    """Add to ``res`` the change a chain's psum flips make: each ``chains`` row ``(f, m, n, r1)``
    is the chain of output ``(m, n)`` in fold ``f`` with its lowest psum flip in row ``r1``. Rows
    ``0..r1`` are run exactly twice, with all the chain's flips and without its psum flips; below
    ``r1`` the chain only adds, so the output changes by the difference. Grouped by column."""
    M, K = x.shape
    R, C = byp.shape
    nkf = (K + R - 1) // R
    for q in prange(col_ptr.shape[0] - 1):
        for i in range(col_ptr[q], col_ptr[q + 1]):
            f, m, n, r1 = chains[i, 0], chains[i, 1], chains[i, 2], chains[i, 3]
            c = n % C
            s_new = k.zero
            s_old = k.zero
            for r in range(r1 + 1):
                if byp[r, c]:
                    continue
                kk = (f % nkf) * R + r
                xp = np.int64(x[m, kk]) if kk < K else np.int64(0)
                a, wf, fp, fs = _flipped(xp, m, r, c, _latched(w, wm, kk, n, r, c), byp, am, wm, cum_and, cum_or,
                                         ev, ptr[f * R + r], ptr[f * R + r + 1])
                p = val(k, ((pat(k, mul(k, dec(k, wf), dec(k, a))) ^ fp) & pm[0, r, c]) | pm[1, r, c])
                s_new = val(k, ((pat(k, add(k, s_new, p)) ^ fs) & sm[0, r, c]) | sm[1, r, c])
                s_old = val(k, (pat(k, add(k, s_old, p)) & sm[0, r, c]) | sm[1, r, c])
            res[m, n] = acc(k, res[m, n], s_new - s_old)


def linear_pes(masks, byp):
    """Bool ``(R + 1, C)``: row ``r`` tells where a change of PE ``(r, c)``'s term or psum input
    reaches the output unchanged but for additions modulo ``2**acc_bits``: no live (not
    bypassed) psum register of row ``r`` or below is stuck. Row ``R`` is all true."""
    bad = stuck(masks[3, 0], masks[3, 1]) & ~byp
    below = np.flip(np.logical_or.accumulate(np.flip(bad, 0), axis=0), 0)
    return np.vstack([~below, np.ones((1, bad.shape[1]), bool)])


def _by_column(n, *cols):
    """Rows of ``cols`` (int64) sorted by ``n`` (stable), and the start of each column's rows."""
    order = np.argsort(n, kind="stable")
    rows = np.stack([c[order] for c in cols], axis=1).astype(np.int64).reshape(-1, len(cols))
    ns = n[order]
    starts = np.nonzero(np.r_[True, ns[1:] != ns[:-1]])[0] if ns.size else np.zeros(0, np.int64)
    return np.ascontiguousarray(rows), np.append(starts, ns.size).astype(np.int64)


class _Plan(NamedTuple):
    pieces: np.ndarray  # weight flips on linear PEs (see _weight_deltas)
    w_cols: np.ndarray
    points: np.ndarray  # (f, r, c, m, n, kk): terms an act or product flip changes, linear PEs
    p_ptr: np.ndarray
    chains: np.ndarray  # (f, m, n, r1): chains with psum flips, linear below the lowest (r1)
    c_ptr: np.ndarray
    cols: np.ndarray  # recomputed exactly: whole columns (n, m_lo, m_hi) ...
    outs: np.ndarray  # ... and single outputs (m, n)
    rows: np.ndarray  # the live flips for the kernels (replay.event_rows)
    ptr: np.ndarray


def plan(ev, xor, ops: Prepared) -> _Plan:
    """Sort the flips ``ev`` into deltas and exact recomputations (see the module docstring)."""
    R, C, M, K, N, byp = ops.R, ops.C, ops.M, ops.K, ops.N, ops.byp
    nkf = -(-K // R)
    e = locate(ev, xor, (R, C), M, K, N, byp)
    lin = linear_pes(ops.masks, byp)
    # weight flips: deltas on linear PEs; else the column is recomputed from the flip on
    wf = e.live & (e.site == _WEIGHT)
    wd = np.nonzero(wf & lin[e.r, e.c])[0]
    cum_and, cum_or = act_masks(ops)
    pieces, w_cols = _weight_pieces(e, wd, ops, cum_and, cum_or)
    lo = np.full(N, M, np.int64)
    wr = wf & ~lin[e.r, e.c]
    np.minimum.at(lo, e.n[wr], e.m[wr])
    # act and product flips: the terms (f, r, c, m) they change; none on a bypassed PE
    act = np.nonzero(e.live & (e.site == _ACT))[0]
    ai, an = act_reach(e, act, C, N)
    prod = np.nonzero(e.live & (e.site == _PRODUCT))[0]
    pi, pn = np.concatenate([ai, prod]), np.concatenate([an, e.n[prod]])
    ok = ~byp[e.r[pi], pn % C]
    pi, pn = pi[ok], pn[ok]
    pf, pr, pc, pm = e.f[pi], e.r[pi], pn % C, e.m[pi]
    is_lin = lin[pr, pc]
    key = np.unique(((pf[is_lin] * R + pr[is_lin]) * C + pc[is_lin]) * M + pm[is_lin])
    km, kc, kr, kf = key % M, (key // M) % C, (key // (M * C)) % R, key // (M * C * R)
    kn = (kf // nkf) * C + kc
    points, p_ptr = _by_column(kn, kf, kr, kc, km, kn, (kf % nkf) * R + kr)
    # psum flips: one delta per chain where the chain only adds below its lowest psum flip
    ps = np.nonzero(e.live & (e.site == _PSUM))[0]
    ch, inv = np.unique((e.f[ps] * M + e.m[ps]) * C + e.c[ps], return_inverse=True)
    r1 = np.full(ch.size, -1, np.int64)
    np.maximum.at(r1, inv.ravel(), e.r[ps])
    cc, cm, cf = ch % C, (ch // C) % M, ch // (C * M)
    cn = (cf // nkf) * C + cc
    ok = lin[r1 + 1, cc]
    chains, c_ptr = _by_column(cn[ok], cf[ok], cm[ok], cn[ok], r1[ok])
    cols, outs = column_ranges(lo, np.concatenate([pm[~is_lin], cm[~ok]]), np.concatenate([pn[~is_lin], cn[~ok]]),
                               M, N)
    rows, ptr = event_rows(e, np.nonzero(e.live)[0], R, nkf * -(-N // C))
    return _Plan(pieces, w_cols, points, p_ptr, chains, c_ptr, cols, outs, rows, ptr)


def replay_flips_modular(ops: Prepared, kernels, ev, xor, res):
    """``res`` (result patterns without flips, int32 or int64) with the flips ``ev`` applied, in
    place, for a precision whose sums are modular integers (see the module docstring)."""
    p = plan(ev, xor, ops)
    M, byp = ops.M, ops.byp
    cum_and, cum_or = act_masks(ops)
    am, wm, pm, sm = ops.masks.astype(np.int64)
    if len(p.pieces):
        with threads_for(int((p.pieces[:, 3] - p.pieces[:, 2]).sum()) + M * len(p.w_cols), _PARALLEL_WORK):
            _weight_deltas(kernels, ops.x, p.pieces, p.w_cols, res)
    if len(p.points):
        with threads_for(64 * len(p.points), _PARALLEL_WORK):
            _point_deltas(kernels, ops.x, ops.w, byp, am, wm, pm, cum_and, cum_or, p.rows, p.ptr, p.points, p.p_ptr,
                          res)
    if len(p.chains):
        with threads_for(int(p.chains[:, 3].sum()) * 2 + len(p.chains), _PARALLEL_WORK):
            _psum_deltas(kernels, ops.x, ops.w, byp, am, wm, pm, sm, cum_and, cum_or, p.rows, p.ptr, p.chains,
                         p.c_ptr, res)
    return replay(ops, kernels, p.cols, p.outs, p.rows, p.ptr, res, _PARALLEL_WORK)
