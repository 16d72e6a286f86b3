"""Transient flips in the ``fast`` engine: recompute exactly the outputs they can reach.

A flip reaches few outputs (docs/semantics.md, "Transient faults"): a ``product`` or
``psum`` flip of PE ``(r, c)`` in the MAC of input vector ``m`` reaches output ``(m, n)``
of its column; an ``act`` flip reaches ``(m, n')`` for the columns from ``c`` to the end of
the column fold; a ``weight`` flip reaches ``(m', n)`` for every ``m'`` whose MAC on that
PE comes at or after the flip, until the next weight load. Flips on bypassed PEs, in
cycles without a valid input vector, or in discarded columns reach nothing.

The engine computes the result without flips, then recomputes each reached output from
scratch, one chain per fold, with every register's masks and the flips that fall on that
chain. Where a column has many reached outputs (a weight flip reaches every later input
vector), the column is recomputed for that range of input vectors at once, in SIMD lanes
over the vectors except in the rows that hold flips. The cost grows with the number of
reached outputs (times K), not with the GEMM. Kernels with little work run on one thread
(:func:`threads_for`): on busy cores, waking the pool costs more than the work.

Where sums are modular integers, :mod:`simulator.engines.flip_deltas` takes most flips as
exact deltas first and leaves only the rest to these kernels.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from ..masks import composed_act_masks
from ..precision.kernels import acc, add, dec, mul, pat, val
from .ordered import Prepared

__all__ = ["replay_flips", "reached_outputs", "many_small"]

_ACT, _WEIGHT, _PRODUCT, _PSUM = 0, 1, 2, 3


@njit(cache=True, inline="always")
def _latched(w, wm, kk, n, r, c):
    """The weight pattern PE ``(r, c)`` latches for reduction row ``kk`` and output column ``n``
    (an idle row, ``kk >= K``, loads 0): ``w`` the operand patterns, ``wm`` the weight masks."""
    v = np.int64(w[kk, n]) if kk < w.shape[0] else np.int64(0)
    return (v & wm[0, r, c]) | wm[1, r, c]


@njit(cache=True, inline="always")
def _flipped(xp, m, r, c, w, byp, am, wm, cum_and, cum_or, ev, e0, e1):
    """PE ``(r, c)``'s operands for input vector ``m`` of one fold with the fold's flips of row
    ``r`` (``ev[e0:e1]``) that fall on this chain: ``(act, weight, product xor, psum xor)``,
    the act and weight as patterns. ``xp`` is the row's input pattern, ``w`` the latched weight."""
    R = byp.shape[0]
    seq = False
    fw = np.int64(0)
    fp = np.int64(0)
    fs = np.int64(0)
    fa = np.int64(0)
    for e in range(e0, e1):
        ec, site = ev[e, 1], ev[e, 2]
        if site == _ACT and ec <= c and ev[e, 4] == m:
            seq = True
            fa ^= ev[e, 3]
        elif ec == c:
            if site == _WEIGHT and ev[e, 0] <= R + r + c + m:
                fw ^= ev[e, 3]
            elif site == _PRODUCT and ev[e, 4] == m:
                fp ^= ev[e, 3]
            elif site == _PSUM and ev[e, 4] == m:
                fs ^= ev[e, 3]
    if seq and cum_and[r, c] == -1 and cum_or[r, c] == 0:  # no stuck act bit up to c: the flips add up
        a = xp ^ fa
    elif seq:  # the act travels the row through the flipped latches
        a = xp
        for cc in range(c + 1):
            if byp[r, cc]:
                continue
            fa = np.int64(0)
            for e in range(e0, e1):
                if ev[e, 2] == _ACT and ev[e, 1] == cc and ev[e, 4] == m:
                    fa ^= ev[e, 3]
            a = ((a ^ fa) & am[0, r, cc]) | am[1, r, cc]
    else:
        a = (xp & cum_and[r, c]) | cum_or[r, c]
    if fw != 0:
        w = ((w ^ fw) & wm[0, r, c]) | wm[1, r, c]
    return a, w, fp, fs


@njit(cache=True, inline="always")
def _pe_with_flips(k, xp, m, r, c, n, kk, s, w, byp, am, wm, pm, sm, cum_and, cum_or, ev, e0, e1):
    """The chain value after PE ``(r, c)`` for input vector ``m`` of one fold, with the fold's
    flips of row ``r`` (``ev[e0:e1]``) that fall on this chain; ``s`` the value before it."""
    a, wf, fp, fs = _flipped(xp, m, r, c, _latched(w, wm, kk, n, r, c), byp, am, wm, cum_and, cum_or, ev, e0, e1)
    p = ((pat(k, mul(k, dec(k, wf), dec(k, a))) ^ fp) & pm[0, r, c]) | pm[1, r, c]
    return val(k, ((pat(k, add(k, s, val(k, p))) ^ fs) & sm[0, r, c]) | sm[1, r, c])


@njit(cache=True, inline="always")
def _output(k, x, w, byp, am, wm, pm, sm, cum_and, cum_or, ev, ptr, m, n):
    """Output ``(m, n)``'s pattern, its chains computed PE by PE over every fold."""
    M, K = x.shape
    R, C = byp.shape
    nkf = (K + R - 1) // R
    c = n % C
    nf = n // C
    total = k.zero
    for kf in range(nkf):
        f = nf * nkf + kf
        s = k.zero
        for r in range(R):
            if byp[r, c]:
                continue
            kk = kf * R + r
            xp = np.int64(x[m, kk]) if kk < K else np.int64(0)
            s = _pe_with_flips(k, xp, m, r, c, n, kk, s, w, byp, am, wm, pm, sm, cum_and, cum_or, ev,
                               ptr[f * R + r], ptr[f * R + r + 1])
        total = acc(k, total, val(k, pat(k, s)))
    return pat(k, total)


@njit(cache=True, parallel=True)
def _replay(k, x, w, byp, am, wm, pm, sm, cum_and, cum_or, ev, ptr, outs, res):
    """Recompute ``res[m, n]`` (patterns) for every ``(m, n)`` in ``outs``, one chain at a time.

    ``x``, ``w`` are the operand patterns; ``ev`` rows ``(cycle in fold, c, site, xor, m)``
    grouped by (fold, row) with ``ptr``.
    """
    for q in prange(outs.shape[0]):
        m, n = outs[q, 0], outs[q, 1]
        res[m, n] = _output(k, x, w, byp, am, wm, pm, sm, cum_and, cum_or, ev, ptr, m, n)


@njit(cache=True, parallel=True)
def _every_output(k, X, W, byp, am, wm, pm, sm, cum_and, cum_or, ev, ptr, res):
    """``res[g, m, n]``: every output of the GEMMs ``X[g] @ W[g]`` (no flips: ``ev`` empty)."""
    G, M, _ = X.shape
    N = W.shape[2]
    for g in prange(G):
        x, w = X[g], W[g]
        for m in range(M):
            for n in range(N):
                res[g, m, n] = _output(k, x, w, byp, am, wm, pm, sm, cum_and, cum_or, ev, ptr, m, n)


@njit(cache=True, inline="always")
def _mac_run(k, s, a, w, lo, hi, pa, po, sa, so):
    """``s[i] = psum(s[i] + product(w * a[i]))`` for ``i`` in ``[lo, hi)``: independent lanes."""
    ss = s[lo:hi]
    aa = a[lo:hi]
    if pa == -1 and po == 0 and sa == -1 and so == 0:
        for i in range(ss.size):
            ss[i] = add(k, ss[i], mul(k, w, aa[i]))
    else:
        for i in range(ss.size):
            p = (pat(k, mul(k, w, aa[i])) & pa) | po
            ss[i] = val(k, (pat(k, add(k, ss[i], val(k, p))) & sa) | so)


@njit(cache=True, parallel=True)
def _replay_columns(k, xT, xv, w, byp, am, wm, pm, sm, cum_and, cum_or, ev, ptr, cols, res):
    """Recompute ``res[m_lo:m_hi, n]`` for every ``(n, m_lo, m_hi)`` in ``cols``: a column's
    chains for a range of input vectors at once, in SIMD lanes over the vectors.

    ``xv`` is ``xT`` decoded (the acts of a PE without act faults to its left). In a row with
    weight flips for this column the lanes run piecewise, the weight changing at each flip's
    first input vector; the few vectors an act, product or psum flip reaches are recomputed
    one by one afterwards from their kept chain values.
    """
    K, M = xT.shape
    R, C = byp.shape
    nkf = (K + R - 1) // R
    n_ev = 1
    for i in range(ptr.shape[0] - 1):
        n_ev = max(n_ev, ptr[i + 1] - ptr[i])
    for q in prange(cols.shape[0]):
        n, m_lo, m_hi = cols[q, 0], cols[q, 1], cols[q, 2]
        L = m_hi - m_lo
        c = n % C
        nf = n // C
        s = np.empty(L, type(k.zero))
        a = np.empty(L, type(k.zero))
        total = np.full(L, k.zero)
        cut = np.empty(n_ev + 2, np.int64)  # first lane of each weight piece
        flip_at = np.empty(n_ev + 2, np.int64)  # XOR pattern starting there
        one = np.empty(n_ev, np.int64)  # lanes to redo one by one
        kept = np.empty(n_ev, type(k.zero))
        for kf in range(nkf):
            f = nf * nkf + kf
            s[:] = k.zero
            for r in range(R):
                if byp[r, c]:
                    continue
                kk = kf * R + r
                e0, e1 = ptr[f * R + r], ptr[f * R + r + 1]
                n_cut = 0
                n_one = 0
                for e in range(e0, e1):
                    ec, site = ev[e, 1], ev[e, 2]
                    if site == _WEIGHT and ec == c:
                        cut[n_cut] = min(max(ev[e, 0] - R - r - c, m_lo), m_hi) - m_lo
                        flip_at[n_cut] = ev[e, 3]
                        n_cut += 1
                    elif (ec == c or (site == _ACT and ec < c)) and m_lo <= ev[e, 4] < m_hi:
                        one[n_one] = ev[e, 4] - m_lo
                        kept[n_one] = s[ev[e, 4] - m_lo]
                        n_one += 1
                ca, co = cum_and[r, c], cum_or[r, c]
                if kk < K and ca == -1 and co == 0:
                    a[:] = xv[kk, m_lo:m_hi]
                elif kk < K:
                    xr = xT[kk, m_lo:m_hi]
                    for i in range(L):
                        a[i] = dec(k, (np.int64(xr[i]) & ca) | co)
                else:
                    a[:] = dec(k, co)
                pa, po, sa, so = pm[0, r, c], pm[1, r, c], sm[0, r, c], sm[1, r, c]
                w0 = _latched(w, wm, kk, n, r, c)
                if n_cut == 0:
                    _mac_run(k, s, a, dec(k, w0), 0, L, pa, po, sa, so)
                else:
                    order = np.argsort(cut[:n_cut])
                    lo = 0
                    x_or = np.int64(0)
                    for j in range(n_cut + 1):
                        hi = cut[order[j]] if j < n_cut else L
                        wj = w0
                        if x_or != 0:
                            wj = ((w0 ^ x_or) & wm[0, r, c]) | wm[1, r, c]
                        if hi > lo:
                            _mac_run(k, s, a, dec(k, wj), lo, hi, pa, po, sa, so)
                            lo = hi
                        if j < n_cut:
                            x_or ^= flip_at[order[j]]
                for j in range(n_one):  # vectors an act, product or psum flip reaches: exactly, from the kept value
                    i = one[j]
                    xp = np.int64(xT[kk, m_lo + i]) if kk < K else np.int64(0)
                    s[i] = _pe_with_flips(k, xp, m_lo + i, r, c, n, kk, kept[j], w, byp, am, wm, pm, sm,
                                          cum_and, cum_or, ev, e0, e1)
            for i in range(L):
                total[i] = acc(k, total[i], val(k, pat(k, s[i])))
        for i in range(L):
            res[m_lo + i, n] = pat(k, total[i])


#: A column with at least this many reached outputs is recomputed as one SIMD column.
_COLUMN_THRESHOLD = 32
#: Below this many PE steps a kernel runs on one thread: waking the pool costs more (measured:
#: 6 outputs of K = 1152 took 12 ms on two busy threads, 0.1 ms on one).
_PARALLEL_WORK = 1 << 16


@contextlib.contextmanager
def threads_for(work, threshold=_PARALLEL_WORK):
    """Numba on one thread inside the block if ``work`` (PE steps) is below ``threshold``."""
    if work >= threshold:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


class Events(NamedTuple):
    """Flips located in the GEMM, one entry per event (arrays of length E)."""

    f: np.ndarray  # fold (execution order: f = nf * nkf + kf)
    local: np.ndarray  # cycle within the fold
    r: np.ndarray
    c: np.ndarray
    site: np.ndarray
    xor: np.ndarray
    n: np.ndarray  # output column of the PE in that fold (may be >= N: discarded)
    kk: np.ndarray  # reduction row of the PE in that fold (may be >= K: an idle row)
    m: np.ndarray  # input vector of the PE's MAC in that cycle (a weight flip: the first it reaches)
    live: np.ndarray  # whether the flip reaches an output


def locate(ev, xor, cfg_shape, M, K, N, byp) -> Events:
    """Where each flip ``ev`` (``(cycle, r, c, site, bit)``) falls: see :class:`Events`."""
    R, C = cfg_shape
    L = 2 * R + C + M - 2
    nkf = -(-K // R)
    f = ev[:, 0] // L
    local = ev[:, 0] - f * L
    r, c, site = ev[:, 1], ev[:, 2], ev[:, 3]
    n = (f // nkf) * C + c
    m = local - R - r - c
    live = ~byp[r, c] & (n < N)
    is_weight = site == _WEIGHT
    live &= np.where(is_weight, np.maximum(m, 0) < M, (m >= 0) & (m < M))
    return Events(f, local, r, c, site, xor, n, (f % nkf) * R + r, np.where(is_weight, np.maximum(m, 0), m), live)


def event_rows(e: Events, keep, R, n_folds):
    """Rows ``(cycle in fold, c, site, xor, m)`` of the events ``keep`` (indices) for the
    kernels, grouped by (fold, row) with ``ptr`` (``n_folds * R + 1``)."""
    rows = np.stack([e.local[keep], e.c[keep], e.site[keep], e.xor[keep], e.m[keep]], axis=1).astype(np.int64)
    key = e.f[keep] * R + e.r[keep]
    order = np.argsort(key, kind="stable")
    ptr = np.searchsorted(key[order], np.arange(n_folds * R + 1)).astype(np.int64)
    return np.ascontiguousarray(rows[order]).reshape(-1, 5), ptr


def act_reach(e: Events, i, C, N):
    """For act flips ``i`` (indices): the output columns each reaches (from its PE to the end of
    its column fold) as ``(event index, column)`` pairs."""
    ends = np.minimum(N, e.n[i] - e.c[i] + C)
    cnt = np.maximum(ends - e.n[i], 0)
    idx = np.repeat(i, cnt)
    first = np.repeat(np.cumsum(cnt) - cnt, cnt)
    return idx, e.n[idx] + np.arange(idx.size) - first


def column_ranges(lo, sm, sn, M, N):
    """Split the reached outputs: ``lo[n] < M`` marks a column reached from vector ``lo[n]`` on
    (a weight flip); ``(sm, sn)`` are single reached outputs. Returns ``(cols, outs)``: the
    columns recomputed whole, ``(n, m_lo, m_hi)`` (those with a weight flip, or with at least
    :data:`_COLUMN_THRESHOLD` single outputs), and the other outputs ``(m, n)``."""
    flat = np.unique(sm * N + sn)
    sm, sn = flat // N, flat % N
    per_col = np.bincount(sn, minlength=N)
    whole = (lo < M) | (per_col >= _COLUMN_THRESHOLD)
    lo = lo.copy()
    hi = np.where(lo < M, M, 0)
    np.minimum.at(lo, sn[whole[sn]], sm[whole[sn]])
    np.maximum.at(hi, sn[whole[sn]], sm[whole[sn]] + 1)
    n_w = np.nonzero(whole)[0]
    cols = np.stack([n_w, lo[n_w], hi[n_w]], axis=1).astype(np.int64).reshape(-1, 3)
    outs = np.stack([sm[~whole[sn]], sn[~whole[sn]]], axis=1).astype(np.int64).reshape(-1, 2)
    return cols, outs


def reached_outputs(ev, xor, cfg_shape, M, K, N, byp):
    """What the flips can reach, and the flips re-laid out for the kernels.

    Returns ``(cols (Q, 3), outs (P, 2), rows (E', 5), ptr)``: the columns recomputed whole
    over a range of input vectors and the other reached outputs (:func:`column_ranges`; a
    weight flip reaches every vector of its column from its first on), and the rows of the
    flips that reach something (:func:`event_rows`).
    """
    R, C = cfg_shape
    e = locate(ev, xor, cfg_shape, M, K, N, byp)
    lo = np.full(N, M, np.int64)  # per column: the first vector a weight flip reaches
    wf = e.live & (e.site == _WEIGHT)
    np.minimum.at(lo, e.n[wf], e.m[wf])
    act = np.nonzero(e.live & (e.site == _ACT))[0]
    one = np.nonzero(e.live & (e.site != _ACT) & (e.site != _WEIGHT))[0]
    ai, an = act_reach(e, act, C, N)
    sm, sn = np.concatenate([e.m[ai], e.m[one]]), np.concatenate([an, e.n[one]])
    cols, outs = column_ranges(lo, sm, sn, M, N)
    rows, ptr = event_rows(e, np.nonzero(e.live)[0], R, -(-K // R) * -(-N // C))
    return cols, outs, rows, ptr


def act_masks(ops: Prepared):
    """``(cum_and, cum_or)``: the act masks composed along each row (what a PE sees of its row's
    input); cheaper than ``ops.segments``, which also cuts the rows into segments."""
    return composed_act_masks(ops.masks[0], ~ops.byp)


def replay(ops: Prepared, kernels, cols, outs, rows, ptr, res, threshold=_PARALLEL_WORK):
    """Recompute exactly the columns ``cols`` and outputs ``outs`` of ``res`` (in place); with
    less work than ``threshold`` (PE steps) on one thread."""
    K, byp = ops.K, ops.byp
    cum_and, cum_or = act_masks(ops)
    m64 = ops.masks.astype(np.int64)
    if len(cols):  # whole columns over a range of vectors, in SIMD lanes
        with threads_for(int((cols[:, 2] - cols[:, 1]).sum()) * K, threshold):
            _replay_columns(kernels, ops.xT, ops.xv(kernels), ops.w, byp, m64[0], m64[1], m64[2], m64[3], cum_and,
                            cum_or, rows, ptr, cols, res)
    if len(outs):
        with threads_for(len(outs) * K, threshold):
            _replay(kernels, ops.x, ops.w, byp, m64[0], m64[1], m64[2], m64[3], cum_and, cum_or, rows, ptr, outs, res)
    return res


def many_small(kernels, X, W, masks, bypass):
    """Result patterns ``(G, M, N)`` of the GEMMs ``X[g] @ W[g]`` (operand patterns) on an array
    with stuck-at ``masks`` (bypassed where ``bypass``), each output's chains computed PE by
    PE in one parallel kernel: for many small GEMMs (a transformer's per-head products) this
    costs a few PE steps per MAC and no per-GEMM set-up, where the ``fast`` engine's paths pay
    a set-up in Python for each GEMM."""
    G, M, K = X.shape
    R, C = bypass.shape
    byp = bypass.astype(bool)
    m64 = masks.astype(np.int64)
    cum_and, cum_or = composed_act_masks(masks[0], ~byp)
    n_folds = -(-K // R) * -(-W.shape[2] // C)
    res = np.empty((G, M, W.shape[2]), np.int64)
    _every_output(kernels, X, W, byp, m64[0], m64[1], m64[2], m64[3], cum_and, cum_or, np.zeros((0, 5), np.int64),
                  np.zeros(n_folds * R + 1, np.int64), res)
    return res


def replay_flips(ops: Prepared, kernels, ev, xor, res):
    """``res`` (result patterns without flips) with the flips ``ev`` applied, in place."""
    cols, outs, rows, ptr = reached_outputs(ev, xor, (ops.R, ops.C), ops.M, ops.K, ops.N, ops.byp)
    return replay(ops, kernels, cols, outs, rows, ptr, res)
