"""The ``fast`` engine's order-preserving path: any precision, the array's order of additions.

Where a precision's sums do not reassociate (float), BLAS cannot be used: this kernel adds
exactly as the array does, one psum chain per (input vector, column, fold), row after row,
fold results added outside in fold order, but without stepping cycles. What makes it fast:

* **Vectorised over input vectors.** For one PE, every input vector adds
  ``w[r, c] * a[m]`` to its own chain: ``s[c, m] = s[c, m] + w * a[m]`` over ``m`` has no
  dependence between lanes, so it runs in SIMD lanes without reordering any sum. Weights
  are decoded once (they are stationary), activations once per row and segment.
* **Stuck-at faults without branches in that loop.** A weight fault is in the decoded
  weights. An act fault at PE ``(r, c0)`` changes what PEs ``(r, c >= c0)`` see: masks
  compose (``((v & a1) | o1) & a2 | o2 = v & (a1 & a2) | ((o1 & a2) | o2)``), so each row
  is cut into *segments* of columns that see one composed mask of the input. PEs whose
  product or psum register is stuck, and bypassed PEs, are *exceptions*: their chain's
  value before the row is kept, the vector loop runs over the whole row, and each
  exception is then recomputed exactly from the kept value (register patterns, masks,
  canonical NaN) and written back.
* **Idle rows are run.** Rows beyond K see activation 0 and weight 0 (or a stuck
  weight); adding their ``+0`` products can change a chain (``-0.0 + +0.0 = +0.0``), so
  they are computed like any other row.

Threads take blocks of 64 input vectors and a column fold, each writing its own part of
the result. Within a block the loops run over columns, then input vectors: one PE's MACs
for the 64 vectors are one SIMD loop, so an exception (a few masks and a NaN check per
lane) is vectorised too and costs about what a plain column does.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..masks import composed_act_masks, faulty_pes, stuck
from ..precision.kernels import acc, add, dec, mul, pat, val

__all__ = ["run_ordered", "row_segments", "Prepared"]

_BLOCK = 64  # input vectors per block


@njit(cache=True)
def _decode(k, wp, out):
    for i in range(wp.shape[0]):
        for j in range(wp.shape[1]):
            out[i, j] = dec(k, wp[i, j])


@njit(cache=True, parallel=True)
def _ordered(k, xT, wv, seg_ptr, seg, exc_ptr, exc, pm, sm, out):
    """``out[m, n]`` (values) of the array for every input vector ``m``.

    ``xT`` (K, M) operand patterns; ``wv`` (nkf*R, N) decoded weights as latched;
    ``seg[j] = (lo, hi, and, or)``: row ``r``'s segments ``seg_ptr[r]:seg_ptr[r+1]``;
    ``exc[j] = (c, bypassed, segment)``: row ``r``'s exceptions ``exc_ptr[r]:exc_ptr[r+1]``
    (``segment``: which of the row's segments holds ``c``);
    ``pm``, ``sm`` product and psum masks ``(2, R, C)``.
    """
    K, M = xT.shape
    N = out.shape[1]
    R = seg_ptr.shape[0] - 1
    C = pm.shape[2]
    B = _BLOCK
    nkf = wv.shape[0] // R
    nnf = (N + C - 1) // C
    n_exc_max = 1
    n_seg_max = 1
    for r in range(R):
        n_exc_max = max(n_exc_max, exc_ptr[r + 1] - exc_ptr[r])
        n_seg_max = max(n_seg_max, seg_ptr[r + 1] - seg_ptr[r])
    n_blocks = (M + B - 1) // B
    for b in prange(n_blocks * nnf):
        nf = b % nnf
        m0 = (b // nnf) * B
        nb = min(M, m0 + B) - m0
        n0 = nf * C
        cn = min(C, N - n0)
        s = np.empty((C, B), wv.dtype)  # s[c, i]: the chain of column c for input vector m0 + i
        total = np.full((C, B), k.zero)
        av = np.empty((n_seg_max, B), wv.dtype)
        old = np.empty((n_exc_max, B), wv.dtype)
        for kf in range(nkf):
            s[:, :] = k.zero
            for r in range(R):
                kk = kf * R + r
                g0, g1 = seg_ptr[r], seg_ptr[r + 1]
                for g in range(g0, g1):  # the act each segment of the row sees, per input vector
                    a = av[g - g0]
                    if kk < K:
                        xr = xT[kk, m0 : m0 + nb]
                        for i in range(nb):
                            a[i] = dec(k, (np.int64(xr[i]) & seg[g, 2]) | seg[g, 3])
                    else:
                        a[:] = dec(k, np.int64(seg[g, 3]))
                e0, e1 = exc_ptr[r], exc_ptr[r + 1]
                for j in range(e0, e1):
                    if exc[j, 0] < cn:
                        old[j - e0, :] = s[exc[j, 0]]
                for g in range(g0, g1):
                    a = av[g - g0]
                    for c in range(seg[g, 0], min(seg[g, 1], cn)):
                        w = wv[kk, n0 + c]
                        sc = s[c]
                        for i in range(nb):
                            sc[i] = add(k, sc[i], mul(k, w, a[i]))
                for j in range(e0, e1):
                    c = exc[j, 0]
                    if c >= cn:
                        continue
                    sc = s[c]
                    o = old[j - e0]
                    if exc[j, 1]:  # bypassed: the chain passes unchanged
                        sc[:] = o
                        continue
                    a = av[exc[j, 2]]
                    w = wv[kk, n0 + c]
                    pa, po, sa, so = pm[0, r, c], pm[1, r, c], sm[0, r, c], sm[1, r, c]
                    for i in range(nb):
                        p = (pat(k, mul(k, w, a[i])) & pa) | po
                        sc[i] = val(k, (pat(k, add(k, o[i], val(k, p))) & sa) | so)
            for c in range(cn):
                for i in range(nb):
                    total[c, i] = acc(k, total[c, i], val(k, pat(k, s[c, i])))
        for i in range(nb):
            for c in range(cn):
                out[m0 + i, n0 + c] = total[c, i]


@njit(cache=True)
def _patterns(k, v, out):
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            out[i, j] = pat(k, v[i, j])


def row_segments(act_masks, live):
    """Per array row, the column segments that see one composed act mask.

    ``act_masks`` is ``(2, R, C)``; ``live`` (bool ``(R, C)``) says which PEs' act latch is
    in the path (a bypassed PE forwards its input). Returns ``(seg_ptr, seg)`` with
    ``seg[j] = (lo, hi, and, or)``: the act of PE ``(r, c)`` for input pattern ``v`` is
    ``(v & and) | or`` of the segment holding ``c``; the composed masks at every PE
    (:func:`simulator.masks.composed_act_masks`) come third.
    """
    R, C = live.shape
    cum_and, cum_or = composed_act_masks(act_masks, live)
    cut = live & stuck(act_masks[0], act_masks[1])  # where a row's segment changes
    seg_ptr = np.zeros(R + 1, np.int64)
    seg = []
    for r in range(R):
        starts = [0, *np.nonzero(cut[r])[0].tolist()]
        starts = sorted(set(starts))
        for lo, hi in zip(starts, [*starts[1:], C]):
            seg.append((lo, hi, int(cum_and[r, lo]), int(cum_or[r, lo])))
        seg_ptr[r + 1] = len(seg)
    return seg_ptr, np.array(seg, np.int64).reshape(-1, 4), (cum_and, cum_or)


class Prepared:
    """The layouts of one GEMM that the order-preserving and replay kernels share, each
    computed once, on first use: ``x.T``, the latched weight patterns ``(nkf*R, N)`` (idle
    rows: pattern 0), the bypassed PEs and the act segments of every row."""

    def __init__(self, x, w, masks, bypass):
        self.x, self.w, self.masks = x, w, masks
        self.R, self.C = masks.shape[2:]
        self.M, self.K = x.shape
        self.N = w.shape[1]
        self.nkf = -(-self.K // self.R)
        self.byp = faulty_pes(masks) if bypass else np.zeros((self.R, self.C), bool)
        self._cache = {}

    def _get(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def xT(self):
        return self._get("xT", lambda: np.ascontiguousarray(self.x.T))

    def xv(self, kernels):
        """``x.T`` decoded into values (what a PE with no act fault upstream sees)."""
        def make():
            out = np.full(self.xT.shape, kernels.zero)
            _decode(kernels, self.xT, out)
            return out

        return self._get("xv", make)

    @property
    def segments(self):
        """``(seg_ptr, seg, (cum_and, cum_or))`` of :func:`row_segments`."""
        return self._get("seg", lambda: row_segments(self.masks[0], ~self.byp))

    @property
    def wp(self):
        def make():
            R, C, nkf = self.R, self.C, self.nkf
            wp = np.zeros((nkf * R, self.N), np.int64)
            wp[: self.K] = self.w
            rows, cols = np.arange(nkf * R) % R, np.arange(self.N) % C
            return (wp & self.masks[1, 0][np.ix_(rows, cols)]) | self.masks[1, 1][np.ix_(rows, cols)]

        return self._get("wp", make)


def run_ordered(ops: Prepared, kernels):
    """The array's result patterns (int64 ``(M, N)``) of a prepared GEMM."""
    R, M, N, masks, byp = ops.R, ops.M, ops.N, ops.masks, ops.byp
    seg_ptr, seg, _ = ops.segments
    nonlin = stuck(masks[2, 0], masks[2, 1]) | stuck(masks[3, 0], masks[3, 1])
    exc_r, exc_c = np.nonzero(byp | (nonlin & ~byp))
    exc_ptr = np.searchsorted(exc_r, np.arange(R + 1)).astype(np.int64)
    exc_seg = np.array([np.searchsorted(seg[seg_ptr[r]:seg_ptr[r + 1], 1], c, side="right")
                        for r, c in zip(exc_r, exc_c)], np.int64)
    exc = np.stack([exc_c, byp[exc_r, exc_c], exc_seg], axis=1).astype(np.int64)
    wv = np.full(ops.wp.shape, kernels.zero)
    _decode(kernels, ops.wp, wv)
    out = np.full((M, N), kernels.zero)
    _ordered(kernels, ops.xT, wv, seg_ptr, seg, exc_ptr, exc.reshape(-1, 3),
             np.ascontiguousarray(masks[2], dtype=np.int64), np.ascontiguousarray(masks[3], dtype=np.int64), out)
    res = np.empty((M, N), np.int64)
    _patterns(kernels, out, res)
    return res
