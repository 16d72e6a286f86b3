"""Register-level ``cycle`` engine: steps every PE register in every cycle.

Timeline of one fold ``(kf, nf)`` (docs/semantics.md, "Timing"):

* **weight load**, R cycles: the fold's weights shift down a load chain one row per
  cycle, the bottom row's first; at the end every PE latches its stationary weight
  through its ``weight`` register (stuck-at masks applied there). The load chain is
  fault-free, so a faulty weight register corrupts only its own PE.
* **stream**: row ``r`` receives ``X[m, kf*R + r]`` at stream cycle ``m + r`` (the
  skew), together with a *valid* bit. Each cycle every PE, from the registers of the
  previous cycle (double-buffered), latches ``a = act(a_in)``, multiplies
  ``p = product(w * a)`` and latches ``psum = psum(psum_in + p)``; ``a`` and the valid
  bit move right, the psum moves down. A bypassed PE forwards ``a_in`` and
  ``psum_in`` unchanged.
* The bottom PE of column ``c`` emits a fold result whenever its valid bit is set;
  the fold ends in the cycle in which the last column has emitted all its ``M``
  outputs. Nothing about the cycle count is computed: it is what the loop ran.

Folds are independent, so workers take contiguous runs of folds (``prange``), each
with its own registers and its own int64 accumulator; the accumulators are summed
at the end. Integer addition modulo ``2**acc_bits`` is associative, so the result is
the same bits whatever the number of threads.

The fold kernels are inlined into ``_run_cycle`` (``inline="always"``): compiled as
separate functions, their speed depended on what else the process had compiled first
(2.0e9 against 4.9e9 PE-cycles/s on 2 threads, cached either way), measured with
``bench/bench_cycle.py``; inlined, it is 4.3e9 whatever the order.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["run_cycle"]


@njit(cache=True, inline="always")
def _wrap(v, shift):
    return (v << shift) >> shift


@njit(cache=True, inline="always")
def _pe(a_in, p_in, r, c, wreg, am, pm, sm, byp, shift, a2, p2):
    """One PE, one cycle: latch act, multiply, latch psum (or bypass both)."""
    a_reg = (a_in & am[0, r, c]) | am[1, r, c]
    prod = (np.int64(wreg[r, c]) * a_reg & pm[0, r, c]) | pm[1, r, c]
    s = (_wrap(np.int64(p_in) + prod, shift) & sm[0, r, c]) | sm[1, r, c]
    b = byp[r, c] != 0
    a2[r, c] = a_in if b else a_reg
    p2[r, c] = p_in if b else s


@njit(cache=True, inline="always")
def _load_weights(w, k0, n0, R, C, wm, wreg, chain):
    """Shift the fold's weights down the load chain for R cycles, then latch."""
    K, N = w.shape
    chain[:, :] = 0
    for t in range(R):
        for r in range(R - 1, 0, -1):
            for c in range(C):
                chain[r, c] = chain[r - 1, c]
        k = k0 + R - 1 - t
        for c in range(C):
            n = n0 + c
            chain[0, c] = w[k, n] if (k < K and n < N) else 0
    for r in range(R):
        for c in range(C):
            wreg[r, c] = (chain[r, c] & wm[0, r, c]) | wm[1, r, c]
    return R


@njit(cache=True, inline="always")
def _stream(x, k0, n0, wreg, am, pm, sm, byp, shift, acc, trace, t0):
    """Stream all M inputs through the loaded array; add the fold result into ``acc``.

    Returns the number of cycles run. ``trace`` (cycles x R x C bool) is filled
    from row ``t0`` when it has more than one row.
    """
    M, K = x.shape
    N = acc.shape[1]
    R, C = wreg.shape
    a = np.zeros((R, C), np.int8)
    p = np.zeros((R, C), np.int32)
    v = np.zeros((R, C), np.uint8)
    a2 = np.zeros((R, C), np.int8)
    p2 = np.zeros((R, C), np.int32)
    v2 = np.zeros((R, C), np.uint8)
    emitted = np.zeros(C, np.int64)
    n_left = M * C
    tracing = trace.shape[0] > 1
    t = 0
    while n_left > 0:
        for r in range(R):
            mi = t - r
            k = k0 + r
            if 0 <= mi < M:
                a_edge = x[mi, k] if k < K else np.int8(0)
                v_edge = np.uint8(1)
            else:
                a_edge = np.int8(0)
                v_edge = np.uint8(0)
            v2[r, 0] = v_edge
            _pe(a_edge, p[r - 1, 0] if r > 0 else np.int32(0), r, 0, wreg, am, pm, sm, byp, shift, a2, p2)
            for c in range(1, C):
                v2[r, c] = v[r, c - 1]
            if r == 0:
                for c in range(1, C):
                    _pe(a[0, c - 1], np.int32(0), 0, c, wreg, am, pm, sm, byp, shift, a2, p2)
            else:
                for c in range(1, C):
                    _pe(a[r, c - 1], p[r - 1, c], r, c, wreg, am, pm, sm, byp, shift, a2, p2)
        for c in range(C):
            if v2[R - 1, c]:
                n = n0 + c
                if n < N:
                    mo = emitted[c]
                    acc[mo, n] = _wrap(acc[mo, n] + p2[R - 1, c], shift)
                emitted[c] += 1
                n_left -= 1
        if tracing:
            for r in range(R):
                for c in range(C):
                    trace[t0 + t, r, c] = v2[r, c] != 0
        a, a2 = a2, a
        p, p2 = p2, p
        v, v2 = v2, v
        t += 1
    return t


@njit(cache=True, parallel=True)
def _run_cycle(x, w, wm, am, pm, sm, byp, shift, n_workers, trace):
    M, K = x.shape
    N = w.shape[1]
    R, C = byp.shape
    nkf = (K + R - 1) // R
    nnf = (N + C - 1) // C
    n_folds = nkf * nnf
    fold_cycles = np.zeros(n_folds, np.int64)
    accs = np.zeros((n_workers, M, N), np.int64)
    per = (n_folds + n_workers - 1) // n_workers
    for wk in prange(n_workers):
        wreg = np.zeros((R, C), np.int8)
        chain = np.zeros((R, C), np.int8)
        t0 = 0
        for f in range(wk * per, min(n_folds, (wk + 1) * per)):
            nf = f // nkf
            kf = f % nkf
            n_load = _load_weights(w, kf * R, nf * C, R, C, wm, wreg, chain)
            n_stream = _stream(x, kf * R, nf * C, wreg, am, pm, sm, byp, shift, accs[wk], trace, t0 + n_load)
            fold_cycles[f] = n_load + n_stream
            t0 += n_load + n_stream
    out = np.zeros((M, N), np.int64)
    for wk in range(n_workers):
        for m in range(M):
            for n in range(N):
                out[m, n] = _wrap(out[m, n] + accs[wk, m, n], shift)
    return out, fold_cycles


def run_cycle(x, w, masks, bypass, acc_bits, n_workers=1, trace=None):
    """Run a GEMM on the register-level model.

    Parameters
    ----------
    x : int8 array (M, K); w : int8 array (K, N)
    masks : int32 array (4, 2, R, C)
        AND / OR masks per site (``SITES`` order), sign-extended to the site width
        (so act and weight masks fit int8).
    bypass : uint8 array (R, C)
        1 where the PE is bypassed.
    acc_bits : int
    n_workers : int
        Folds are split over this many workers (threads). Must be 1 when tracing.
    trace : bool array (cycles, R, C) or None
        Filled with the per-cycle valid-MAC activity of every PE.

    Returns
    -------
    out : int64 array (M, N), values already wrapped to ``acc_bits``.
    fold_cycles : int64 array (folds,) in execution order (``for nf: for kf``).
    """
    if trace is None:
        trace = np.zeros((1, 1, 1), np.bool_)
    elif n_workers != 1:
        raise ValueError("tracing needs n_workers=1")
    wm = masks[1].astype(np.int8)
    am = masks[0].astype(np.int8)
    pm = np.ascontiguousarray(masks[2], dtype=np.int32)
    sm = np.ascontiguousarray(masks[3], dtype=np.int32)
    shift = np.int64(64 - acc_bits)
    return _run_cycle(x, w, wm, am, pm, sm, bypass, shift, np.int64(n_workers), trace)
