"""The ``fast`` engine's path for integer precisions (``blas_exact``): BLAS plus exact replay.

Bit-identical to the ``cycle`` engine at close to GEMM cost. How it stays exact while
using BLAS:

* **Exact integer GEMM on floating-point BLAS.** A sum of at most ``2**24 / max|product|``
  integer products (1,024 for int8) never leaves the range in which float32 represents
  every integer, whatever order BLAS adds in. Longer reductions are cut into chunks of
  that length, each converted to int64 and added. Wrap-around to ``acc_bits`` is applied
  at the end: addition modulo ``2**acc_bits`` is associative, so where the wrap happens
  does not change a bit.
* **Linear faults go into the operands.** A stuck-at fault in a *weight* register just
  changes that PE's weight. A stuck-at fault in an *act* latch at PE ``(r, c0)`` changes
  the activation seen by PEs ``(r, c >= c0)``: it becomes ``f(x)`` with ``f`` the masking.
  That is still linear in the products, so the engine appends a virtual reduction row
  carrying ``f(x)`` whose weights are the row's weights on columns ``>= c0`` (and zeroes
  the original row there). Several act faults in a row give one segment each.
* **Nonlinear faults are replayed exactly.** A faulty *product* or *psum* register at PE
  ``(r, c)`` masks a value in the middle of column ``c``'s chain. The engine needs the
  fault-free partial sum of the rows above ``r`` (one more GEMM column per faulty PE and
  column fold, computed in the same exact way) and then replays the column's chain of
  faulty PEs in a small Numba kernel. The difference between the replayed and the
  fault-free chain is added to the main GEMM.
* **Bypass** equals the fault-free array with the weights on faulty PEs set to zero
  (docs/semantics.md, "Bypass"); that is what this engine computes. The test-suite checks the equivalence
  against the ``cycle`` engine, which models the bypass multiplexers themselves.
"""

from __future__ import annotations

import contextlib

import numpy as np
from numba import njit, prange
from threadpoolctl import ThreadpoolController

from ..masks import faulty_pes, stuck

__all__ = ["run_blas", "exact_matmul"]

_F32_EXACT = 1 << 24
_BLOCK = 128  # input vectors per replay block (measured: 64..256 are all close)
_BIG = 1 << 20  # MACs from which BLAS may spawn threads worth limiting


def exact_matmul(a, b, max_abs_product):
    """``a @ b`` of small integers, exact, as int64, computed with float BLAS.

    Parameters
    ----------
    a : integer array (M, K); b : integer array (K, N)
    max_abs_product : int
        Bound on ``|a[m, k] * b[k, n]|``; decides how long a float32 reduction may be.
    """
    M, K = a.shape
    N = b.shape[1]
    chunk = _F32_EXACT // max(1, int(max_abs_product))
    if K == 0 or M == 0 or N == 0:
        return np.zeros((M, N), np.int64)
    if chunk < 64:  # wide operands: float64 is exact up to 2**53
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    if K <= chunk:
        return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.int64)
    out = np.zeros((M, N), np.int64)
    for k0 in range(0, K, chunk):
        k1 = min(K, k0 + chunk)
        out += (a[:, k0:k1].astype(np.float32) @ b[k0:k1].astype(np.float32)).astype(np.int64)
    return out


@njit(cache=True, inline="always")
def _wrap(v, shift):
    return (v << shift) >> shift


@njit(cache=True, parallel=True)
def _replay_chains(y, xaT, waT, ev, emask, chain_ptr, chain_n, shift):
    """Add to ``y`` the difference between each faulty column chain and its fault-free sum.

    A chain is one output column ``n`` in one row fold; its events (faulty product or
    psum PEs) are in row order. ``ev[e] = (lo, hi, aug_idx, w)``: the augmented
    reduction columns ``[lo, hi)`` of the fault-free rows since the previous event, the
    column feeding the event's PE and its (effective) weight. ``emask[e]`` holds the
    PE's product AND/OR and psum AND/OR masks. Inputs are processed in blocks of
    ``_BLOCK`` vectors so each weight is loaded once per block (and SIMD runs over m).
    """
    M = y.shape[0]
    B = _BLOCK
    n_chains = chain_n.shape[0]
    for b in prange((M + B - 1) // B):
        m0 = b * B
        nb = min(M, m0 + B) - m0
        s = np.zeros(B, np.int64)
        pp = np.zeros(B, np.int64)
        seg = np.zeros(B, np.int32)
        for g in range(n_chains):
            n = chain_n[g]
            s[:] = 0
            pp[:] = 0
            for e in range(chain_ptr[g], chain_ptr[g + 1]):
                seg[:] = 0
                if nb == B:  # constant trip count: vectorises
                    for k in range(ev[e, 0], ev[e, 1]):
                        wk = np.int32(waT[n, k])
                        xr = xaT[k, m0 : m0 + B]
                        for i in range(B):
                            seg[i] += np.int32(xr[i]) * wk
                else:
                    for k in range(ev[e, 0], ev[e, 1]):
                        wk = np.int32(waT[n, k])
                        for i in range(nb):
                            seg[i] += np.int32(xaT[k, m0 + i]) * wk
                a = ev[e, 2]
                for i in range(nb):
                    pf = np.int64(xaT[a, m0 + i]) * ev[e, 3]
                    prod = (pf & emask[e, 0]) | emask[e, 1]
                    s[i] = (_wrap(s[i] + seg[i] + prod, shift) & emask[e, 2]) | emask[e, 3]
                    pp[i] += seg[i] + pf
            for i in range(nb):
                y[m0 + i, n] += s[i] - pp[i]


def _tile(a, nkf, N):
    R, C = a.shape
    return np.tile(a, (nkf, -(-N // C)))[:, :N]


def run_blas(x, w, masks, bypass, precision):
    """Compute the array's GEMM result (int64, wrapped to ``acc_bits``) for an integer precision.

    ``x``, ``w`` are int8 operands, ``masks`` the ``(4, 2, R, C)`` stuck-at masks and
    ``bypass`` a bool telling whether faulty PEs are bypassed.
    """
    R, C = masks.shape[2:]
    M, K = x.shape
    N = w.shape[1]
    shift = np.int64(64 - precision.acc_bits)
    maxp = precision.max_abs_product()
    ident = ~stuck(masks[:, 0], masks[:, 1])  # (4, R, C): registers without a stuck bit
    faulty = faulty_pes(masks)
    nkf = -(-K // R)
    if bypass or not faulty.any():
        if faulty.any():
            w = np.where(_tile(faulty, nkf, N)[:K], 0, w).astype(np.int8)
        if K * maxp < min(_F32_EXACT, 1 << (precision.acc_bits - 1)):  # one exact float32 GEMM, no wrap
            return (x.astype(np.float32) @ w.astype(np.float32)).astype(np.int32)
        return _wrap_np(exact_matmul(x, w, maxp), shift)

    wp = np.zeros((nkf * R, N), np.int16)
    wp[:K] = w
    w_eff = (wp & _tile(masks[1, 0], nkf, N)) | _tile(masks[1, 1], nkf, N)
    aug = _augment(x, w_eff, masks[0], ident[0], R, C)
    nonlin = ~(ident[2] & ident[3])
    if not nonlin.any():
        return _wrap_np(exact_matmul(aug.xT.T, aug.w, maxp), shift)
    # OpenBLAS worker threads spin for ~0.1 s after a call and halve the speed of Numba
    # threads that run next to them (measured); one BLAS thread has no workers.
    with _blas_single_thread() if M * K * N >= _BIG else contextlib.nullcontext():  # small: BLAS uses one thread
        y = exact_matmul(aug.xT.T, aug.w, maxp)
    ev, emask, chain_ptr, chain_n = _chains(nonlin, masks, aug, N)
    xaT, waT = aug.xT, np.ascontiguousarray(aug.w.T)
    if xaT.shape[0] == 0:  # every row dropped: events point at row 0 with weight 0, so give them one
        xaT, waT = np.zeros((1, M), np.int8), np.zeros((N, 1), np.int8)
    _replay_chains(y, xaT, waT, ev, emask, chain_ptr, chain_n, shift)
    return _wrap_np(y, shift)


_controller = None


def _blas_single_thread():
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def _wrap_np(v, shift):
    return (v << shift) >> shift


class _Augmented:
    """Augmented operands and the bookkeeping that maps array positions into them.

    Index space: a *full* augmented row ``i = kf * per_fold + row_pos[r] + j`` exists for
    every row fold ``kf``, array row ``r`` and act segment ``j`` of that row. Rows whose
    weights are all zero contribute nothing and are dropped; ``pos[i]`` is the number of
    kept rows before ``i``, so a range ``[lo, hi)`` of full rows is ``[pos[lo], pos[hi])``
    of kept ones.
    """

    def __init__(self, xT, w, keep, per_fold, row_pos, seg_of):
        self.xT, self.w, self.keep = xT, w, keep
        self.per_fold, self.row_pos, self.seg_of = per_fold, row_pos, seg_of
        self.pos = np.concatenate([[0], np.cumsum(keep)])


def _augment(x, w_eff, act_masks, act_ident, R, C):
    """Append one virtual reduction row per act fault (see module docstring).

    Reduction rows beyond ``K`` (idle rows of the last row fold) see activation 0, which
    an act fault can still turn into a constant; they are kept only if some weight there
    is non-zero (a weight stuck at 1 on an idle PE).
    """
    M, K = x.shape
    N = w_eff.shape[1]
    nkf = w_eff.shape[0] // R
    seg_of = np.cumsum(~act_ident, axis=1)
    n_seg = 1 + seg_of[:, -1]
    row_pos = np.concatenate([[0], np.cumsum(n_seg)])
    per_fold = int(row_pos[-1])
    # one entry per augmented row of a fold: array row, column range, activation LUT
    src_r = np.repeat(np.arange(R), n_seg)
    lo = np.zeros(per_fold, np.int64)
    hi = np.full(per_fold, C, np.int64)
    luts = np.tile(np.arange(-128, 128, dtype=np.int64), (per_fold, 1))
    for r in np.nonzero(n_seg > 1)[0]:
        cuts = np.nonzero(~act_ident[r])[0]
        base = row_pos[r]
        lo[base + 1 : base + n_seg[r]] = cuts
        hi[base : base + n_seg[r] - 1] = cuts
        for j, c0 in enumerate(cuts, start=1):
            luts[base + j] = (luts[base + j - 1] & act_masks[0, r, c0]) | act_masks[1, r, c0]
    entry = np.tile(np.arange(per_fold), nkf)
    src_k = np.repeat(np.arange(nkf) * R, per_fold) + src_r[entry]
    col = np.arange(N) % C
    in_seg = (col[None, :] >= lo[entry, None]) & (col[None, :] < hi[entry, None])
    wa = np.where(in_seg, w_eff[src_k], 0).astype(np.int8)
    live = src_k < K  # idle rows see activation 0, which only an act fault can change
    live |= luts[entry, 128] != 0
    keep = wa.any(axis=1) & live
    entry, src_k, wa = entry[keep], src_k[keep], wa[keep]
    first_seg = np.arange(per_fold) == row_pos[src_r]  # the segment before any act fault
    plain = first_seg[entry] & (src_k < K)  # ... of a real row: the input itself
    # built transposed (one row per reduction row): row gathers are cheap, the replay
    # kernel wants this layout, and BLAS takes the transposed view as it is
    xT = np.ascontiguousarray(x.T)
    if plain.all() and np.array_equal(src_k, np.arange(K)):
        xaT = xT  # no act faults, no live idle rows: the operand itself
    else:
        xaT = np.empty((src_k.size, M), np.int8)
        xaT[plain] = xT[src_k[plain]]
        for j in np.nonzero(~plain)[0]:  # virtual rows: the act-fault LUT applied to the input
            col = xT[src_k[j]].astype(np.int16) + 128 if src_k[j] < K else np.full(M, 128, np.int16)
            xaT[j] = luts[entry[j]][col]
    return _Augmented(xaT, wa, keep, per_fold, row_pos[:-1], seg_of)


def _chains(nonlin, masks, aug, N):
    """Lay out the faulty-PE chains of every (row fold, output column) for the replay kernel."""
    R, C = nonlin.shape
    nkf = len(aug.keep) // aug.per_fold
    ev_r, ev_c = np.nonzero(nonlin)
    # one chain per (kf, n): instances ordered by kf, n, r
    n_cf = -(-N // C)
    kf_i, nf_i, e_i = np.meshgrid(np.arange(nkf), np.arange(n_cf), np.arange(ev_r.size), indexing="ij")
    kf_i, nf_i, e_i = kf_i.ravel(), nf_i.ravel(), e_i.ravel()
    n_i = nf_i * C + ev_c[e_i]
    ok = n_i < N
    kf_i, n_i, e_i = kf_i[ok], n_i[ok], e_i[ok]
    order = np.lexsort((ev_r[e_i], n_i, kf_i))
    kf_i, n_i, e_i = kf_i[order], n_i[order], e_i[order]
    r_i, c_i = ev_r[e_i], ev_c[e_i]
    new_chain = np.ones(n_i.size, bool)
    new_chain[1:] = (kf_i[1:] != kf_i[:-1]) | (n_i[1:] != n_i[:-1])
    base = kf_i * aug.per_fold
    hi = base + aug.row_pos[r_i]  # fault-free rows above this event's row
    prev_r = np.where(new_chain, -1, np.concatenate([[-1], r_i[:-1]]))
    lo = base + aug.row_pos[prev_r + 1]  # ... starting after the previous event's row
    full = hi + aug.seg_of[r_i, c_i]  # the row feeding the event's PE
    kept = aug.keep[full]
    a_idx = np.where(kept, aug.pos[full], 0)
    wv = np.zeros(n_i.size, np.int64)  # a dropped row has weight 0
    wv[kept] = aug.w[a_idx[kept], n_i[kept]]
    ev = np.stack([aug.pos[lo], aug.pos[hi], a_idx, wv], axis=1).astype(np.int64)
    emask = np.stack([masks[2, 0, r_i, c_i], masks[2, 1, r_i, c_i], masks[3, 0, r_i, c_i], masks[3, 1, r_i, c_i]], axis=1)
    starts = np.nonzero(new_chain)[0]
    chain_ptr = np.append(starts, n_i.size).astype(np.int64)
    return ev, emask.astype(np.int64), chain_ptr, n_i[starts].astype(np.int64)
