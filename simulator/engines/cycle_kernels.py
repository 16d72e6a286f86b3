"""The per-cycle kernels of the ``cycle`` engine, shared by its fold loop
(:mod:`simulator.engines.cycle`) and its row pipeline (:mod:`simulator.engines.cycle_rows`):
loading a fold's weights, one cycle of every PE without faults (:func:`sweep`), and the
fix-up of the PEs with masks, a bypass or a flip (:func:`fix_up`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..precision.kernels import add, dec, mul, pat, val

__all__ = ["WEIGHT", "load_weights", "flip_weight", "sweep", "fix_up", "pe_flipped"]

WEIGHT = 1


@njit(cache=True, inline="always")
def pe_flipped(k, a_in, p_in, r, c, wv, cst, fa, fp, fs):
    """PE ``(r, c)`` in a cycle with transient flips ``fa``, ``fp``, ``fs`` (XOR patterns):
    its act and psum register patterns."""
    a_reg = ((a_in ^ fa) & cst[r, 0, c]) | cst[r, 1, c]
    prod = ((pat(k, mul(k, wv[r, c], dec(k, a_reg))) ^ fp) & cst[r, 2, c]) | cst[r, 3, c]
    s = ((pat(k, add(k, val(k, p_in), val(k, prod))) ^ fs) & cst[r, 4, c]) | cst[r, 5, c]
    return a_reg, s


@njit(cache=True, inline="always")
def load_weights(k, w, k0, n0, R, C, wm, wreg, wv, chain, ev, e, e_hi):
    """Shift the fold's weights down the load chain for R cycles, then latch; the fold's
    flips ``ev[e:e_hi]`` that fall in the load cycles hit the latched weight. Returns
    ``(R, the first event after the load)``."""
    K, N = w.shape
    chain[:, :] = 0
    for t in range(R):
        for r in range(R - 1, 0, -1):
            for c in range(C):
                chain[r, c] = chain[r - 1, c]
        kk = k0 + R - 1 - t
        for c in range(C):
            n = n0 + c
            chain[0, c] = w[kk, n] if (kk < K and n < N) else 0
    for r in range(R):
        for c in range(C):
            wreg[r, c] = (chain[r, c] & wm[0, r, c]) | wm[1, r, c]
            wv[r, c] = dec(k, wreg[r, c])
    while e < e_hi and ev[e, 0] < R:
        if ev[e, 3] == WEIGHT:
            flip_weight(k, e, ev, wm, wreg, wv)
        e += 1
    return R, e


@njit(cache=True, inline="always")
def flip_weight(k, e, ev, wm, wreg, wv):
    r, c = ev[e, 1], ev[e, 2]
    wreg[r, c] = ((wreg[r, c] ^ ev[e, 4]) & wm[0, r, c]) | wm[1, r, c]
    wv[r, c] = dec(k, wreg[r, c])


@njit(cache=True)
def sweep(k, ap, an, pp, pn, wv, c_lo, c_hi, r_lo, r_hi, t, M):
    """One cycle of every PE as if it had no stuck-at fault and no bypass: latch the act,
    multiply, latch the psum. Reads the registers of the previous cycle (``ap``, ``pp``),
    writes the new ones (``an``, ``pn``); layout in :func:`simulator.engines.cycle._stream`.
    The PEs that do have masks or a bypass are then recomputed by :func:`fix_up` from the
    same inputs, so every register still ends the cycle as its PE computes it.

    One branch-free loop per row over a working set that fits in L2, so it runs in SIMD
    lanes. A function of its own: inlined into the fold loop, LLVM kept it scalar (measured).
    Only rows ``[r_lo, r_hi)`` and columns ``[c_lo, c_hi)`` are computed in full; columns left
    of them only pass their acts on (what the columns from ``c_lo`` on need of them). Of
    those, only the PEs that hold a valid input vector in stream cycle ``t``
    (``0 <= t - r - c < M``, a diagonal band) are computed (see :func:`simulator.engines.cycle._stream`).
    """
    for r in range(max(r_lo, t - M + 1 - c_hi), min(r_hi, t + 1)):
        b_lo, b_hi = max(0, t - r - M + 1), t - r + 1  # the band of row r
        # unsigned bounds: no negative-index wrap-around, so SIMD
        lo, hi = np.uint64(max(b_lo, c_lo)), np.uint64(max(max(b_lo, c_lo), min(b_hi, c_hi)))
        for c in range(np.uint64(b_lo), np.uint64(max(b_lo, min(b_hi, c_lo)))):  # left of this part: acts only
            an[r, c + 1] = ap[r, c]
        for c in range(lo, hi):
            a_in = ap[r, c]
            prod = pat(k, mul(k, wv[r, c], dec(k, a_in)))
            an[r, c + 1] = a_in
            pn[r + 1, c] = pat(k, add(k, val(k, pp[r, c]), val(k, prod)))


@njit(cache=True, inline="always")
def fix_up(k, fix, ev, e0, e1, ap, an, pp, pn, wv, cst, c_lo, c_end, r_lo, r_hi, t, M):
    """After :func:`_sweep`, recompute from the same inputs the PEs of rows ``[r_lo, r_hi)``,
    columns below ``c_end``, in this cycle's valid band, that have masks or a bypass
    (``fix``) or are hit by this cycle's act, product or psum flips (``ev[e0:e1]``, in
    order of PE); columns left of ``c_lo`` only as far as their acts go."""
    for i in range(fix.shape[0]):
        r, c = fix[i, 0], fix[i, 1]
        if c >= c_end or r < r_lo or r >= r_hi or not 0 <= t - r - c < M:
            continue
        if cst[r, 6, c] != 0:
            an[r, c + 1] = ap[r, c]
            pn[r + 1, c] = pp[r, c]
        else:
            a_reg, s = pe_flipped(k, ap[r, c], pp[r, c], r, c, wv, cst, 0, 0, 0)
            an[r, c + 1] = a_reg
            if c >= c_lo:
                pn[r + 1, c] = s
    j = e0
    while j < e1:  # grouped by PE
        r, c = ev[j, 1], ev[j, 2]
        fa = fp = fs = np.int64(0)
        while j < e1 and ev[j, 1] == r and ev[j, 2] == c:
            site = ev[j, 3]
            if site == 0:
                fa ^= ev[j, 4]
            elif site == 2:
                fp ^= ev[j, 4]
            elif site == 3:
                fs ^= ev[j, 4]
            j += 1
        if (fa | fp | fs) != 0 and cst[r, 6, c] == 0 and c < c_end and r_lo <= r < r_hi and 0 <= t - r - c < M:
            a_reg, s = pe_flipped(k, ap[r, c], pp[r, c], r, c, wv, cst, fa, fp, fs)
            an[r, c + 1] = a_reg
            if c >= c_lo:
                pn[r + 1, c] = s
