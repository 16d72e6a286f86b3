"""The ``cycle`` engine with one fold split by rows over the threads, pipelined.

With fewer folds than threads, the folds alone cannot keep the threads busy. Rows of one
fold are coupled only through the psums that flow down: part ``p`` (a band of rows) needs,
in cycle ``t``, the psum its top row receives, which part ``p - 1``'s bottom row latched in
cycle ``t - 1``. So the parts run as a pipeline: in stage ``s`` part ``p`` steps cycles
``[(s - p) T, (s - p + 1) T)``, all parts at once, each a stage behind the one above it;
the psums leaving a part's bottom row go into a ring buffer of ``3 T`` cycles that the part
below reads one stage later (three stages apart, so no slot is read while it is written).
Acts flow right within a row, so a part needs nothing else from the others. Every register
is computed as :func:`simulator.engines.cycle._stream` computes it (same sweep, same fix-up
of stuck and bypassed PEs, same flips); only who computes which row, and when, differs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..precision.kernels import acc, pat, val
from .cycle_kernels import WEIGHT, fix_up, flip_weight, load_weights, sweep

__all__ = ["run_rows", "row_cuts"]

_STAGE = 256  # cycles per pipeline stage (measured: 128..1024 are all close)


@njit(cache=True)
def _part(k, x, k0, n0, r0, r1, c_end, r_hi, t_from, t_to, wreg, wv, wm, cst, fix, a, p, bnd_in, bnd_out, acc_out,
          ev, st, e_hi, n_load):
    """Cycles ``[t_from, t_to)`` of rows ``[r0, r1)`` of one fold (``r1 == r_hi``: the bottom
    part, which emits). Registers ``a`` (act), ``p`` (psum) are double-buffered by the
    cycle's parity; ``st = [next event, outputs still to reach the bottom row]``. Returns the
    number of stream cycles of the fold once the bottom part has seen the last output
    reach the bottom row, else -1."""
    M, K = x.shape
    R, C = wreg.shape
    L = bnd_out.shape[0]
    bottom = r1 == r_hi
    for t in range(t_from, t_to):
        ap, an = a[t & 1], a[(t + 1) & 1]
        pp, pn = p[t & 1], p[(t + 1) & 1]
        now = n_load + t
        e = st[0]
        e0 = e
        while e < e_hi and ev[e, 0] == now:
            if ev[e, 3] == WEIGHT and r0 <= ev[e, 1] < r1:
                flip_weight(k, e, ev, wm, wreg, wv)
            e += 1
        st[0] = e
        for r in range(r0, r1):  # the left edge: row r gets input vector t - r (the skew)
            mi = t - r
            kk = k0 + r
            ap[r, 0] = np.int32(x[mi, kk]) if 0 <= mi < M and kk < K else np.int32(0)
        if r0 > 0:  # the psums entering the top row: latched by the part above in cycle t - 1
            for c in range(c_end):
                pp[r0, c] = bnd_in[(t - 1) % L, c] if t > 0 else 0
        sweep(k, ap, an, pp, pn, wv, 0, c_end, r0, r1, t, M)
        fix_up(k, fix, ev, e0, e, ap, an, pp, pn, wv, cst, 0, c_end, r0, r1, t, M)
        if not bottom:
            for c in range(c_end):
                bnd_out[t % L, c] = pn[r1, c]
            continue
        for c in range(C):
            mo = t - (r_hi - 1) - c  # the input vector whose result leaves row r_hi - 1
            if c < c_end and 0 <= mo < M:
                acc_out[mo, n0 + c] = acc(k, acc_out[mo, n0 + c], val(k, pn[r_hi, c]))
            if 0 <= t - (R - 1) - c < M:  # ... and reaches the bottom row
                st[1] -= 1
                if st[1] == 0:
                    return t + 1
    return -1


@njit(cache=True, parallel=True)
def _run_rows(k, x, w, wm, cst, fix, cuts_of, row_hi, wv_zero, ev, ev_ptr, T):
    """Every fold in turn (``for nf: for kf``), each split into the row parts
    ``cuts_of[kf]`` (``P + 1`` boundaries over ``[0, row_hi[kf])``) and pipelined in stages
    of ``T`` cycles."""
    M, K = x.shape
    N = w.shape[1]
    R, C = wm.shape[1:]
    P = cuts_of.shape[1] - 1
    nkf = (K + R - 1) // R
    nnf = (N + C - 1) // C
    vals = np.full((M, N), k.zero)
    fold_cycles = np.zeros(nkf * nnf, np.int64)
    wreg = np.zeros((R, C), w.dtype)
    wv = np.full((R, C), wv_zero)
    chain = np.zeros((R, C), w.dtype)
    a = np.zeros((P, 2, R, C + 1), np.int32)
    p = np.zeros((P, 2, R + 1, C), np.int32)
    bnd = np.zeros((P, 3 * T, C), np.int32)
    st = np.zeros((P, 2), np.int64)
    done = np.zeros(P, np.int64)
    for f in range(nkf * nnf):
        nf, kf = f // nkf, f % nkf
        e, e_hi = ev_ptr[f], ev_ptr[f + 1]
        n_load, e = load_weights(k, w, kf * R, nf * C, R, C, wm, wreg, wv, chain, ev, e, e_hi)
        a[:] = 0
        p[:] = 0
        st[:, 0] = e
        st[:, 1] = M * C
        done[:] = -1
        c_end = max(0, min(C, N - nf * C))
        s = 0
        while done[P - 1] < 0:
            for q in prange(P):
                t_from = (s - q) * T
                if t_from >= 0:
                    done[q] = _part(k, x, kf * R, nf * C, cuts_of[kf, q], cuts_of[kf, q + 1], c_end, row_hi[kf],
                                    t_from, t_from + T, wreg, wv, wm, cst, fix, a[q], p[q], bnd[max(q - 1, 0)], bnd[q],
                                    vals, ev, st[q], e_hi, n_load)
            s += 1
        fold_cycles[f] = n_load + done[P - 1]
    out = np.empty((M, N), np.int64)
    for m in range(M):
        for n in range(N):
            out[m, n] = pat(k, vals[m, n])
    return out, fold_cycles


def row_cuts(row_hi, n_parts):
    """``(nkf, n_parts + 1)`` row boundaries: each fold's computed rows in equal bands (none
    empty while a fold has at least ``n_parts`` rows)."""
    return np.stack([np.arange(n_parts + 1) * r // n_parts for r in row_hi]).astype(np.int64)


def run_rows(kernels, x, w, wm, cst, fix, row_hi, wv_zero, n_parts, ev, ev_ptr, stage=_STAGE):
    """Result patterns and per-fold cycles, as :func:`simulator.engines.cycle.run_cycle`, with
    each fold's rows ``[0, row_hi[kf])`` split into ``n_parts`` bands pipelined in stages of
    ``stage`` cycles."""
    return _run_rows(kernels, x, w, wm, cst, fix, row_cuts(row_hi, n_parts), row_hi, wv_zero, ev, ev_ptr,
                     np.int64(stage))
