"""Operand and event layouts of the BLAS path (:mod:`simulator.engines.blas`).

* :func:`augment` turns act faults into virtual reduction rows and lays the reduction rows
  out transposed, one row of float32 per reduction row (what BLAS and the chain kernel read);
* :func:`chains` lists, per fold and output column, the PEs whose product or psum register
  is stuck (the *events* of that column's chain), and which prefix sums the psum events need.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .scratch import scratch

__all__ = ["augment", "chains", "gather_rows", "tile", "Augmented", "Chains"]


def tile(a, nkf, N):
    """``a`` (R, C) repeated over ``nkf`` row folds and the column folds of ``N`` outputs."""
    R, C = a.shape
    return np.tile(a, (nkf, -(-N // C)))[:, :N]


class Augmented:
    """Augmented operands and the bookkeeping that maps array positions into them.

    ``xT`` (kept rows, M) float32 and ``w`` (kept rows, N) int8; without act faults ``xT`` is
    None: the kept rows are then ``x``'s columns in order (none dropped). Index space: a *full*
    augmented row ``i = kf * per_fold + row_pos[r] + j`` exists for every row fold ``kf``,
    array row ``r`` and act segment ``j`` of that row. Rows whose weights are all zero
    contribute nothing and are dropped; ``pos[i]`` is the number of kept rows before ``i``,
    so a range ``[lo, hi)`` of full rows is ``[pos[lo], pos[hi])`` of kept ones.
    """

    def __init__(self, xT, w, keep, per_fold, row_pos, seg_of):
        self.xT, self.w, self.keep, self.n_rows = xT, w, keep, len(w)
        self.per_fold, self.row_pos, self.seg_of = per_fold, row_pos, seg_of
        self.pos = np.concatenate([[0], np.cumsum(keep)])


@njit(cache=True)
def _rows(x, src, lut_id, luts, out):
    """``out[j, m]``: reduction row ``j`` for input vector ``m`` as float32, either
    ``x[m, src[j]]`` (``lut_id[j] < 0``) or the act-fault table ``luts[lut_id[j]]`` applied
    to it (``src[j] >= K``: an idle row, whose input is 0)."""
    M, K = x.shape
    B = 64
    for b in range((M + B - 1) // B):
        m0 = b * B
        m1 = min(M, m0 + B)
        for j in range(src.shape[0]):
            k, t = src[j], lut_id[j]
            if t < 0:
                for m in range(m0, m1):
                    out[j, m] = np.float32(x[m, k])
            elif k < K:
                for m in range(m0, m1):
                    out[j, m] = np.float32(luts[t, np.int64(x[m, k]) + 128])
            else:
                for m in range(m0, m1):
                    out[j, m] = np.float32(luts[t, 128])


def augment(x, w_eff, act_masks, act_ident, R, C, transpose=True):
    """Append one virtual reduction row per act fault (see :mod:`simulator.engines.blas`).

    Reduction rows beyond ``K`` (idle rows of the last row fold) see activation 0, which
    an act fault can still turn into a constant; they are kept only if some weight there
    is non-zero (a weight stuck at 1 on an idle PE). ``xT`` is a scratch buffer; without act
    faults and with ``transpose`` False it is not built (None): the rows are ``x``'s columns,
    which BLAS reads in place.
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
    plain_rows = per_fold == R and not transpose  # no act fault, x read in place
    keep = live if plain_rows else wa.any(axis=1) & live
    entry, src_k, wa = entry[keep], src_k[keep], wa[keep]
    if plain_rows:
        return Augmented(None, wa, keep, per_fold, row_pos[:-1], seg_of)
    first_seg = np.arange(per_fold) == row_pos[src_r]  # the segment before any act fault
    plain = first_seg[entry] & (src_k < K)  # ... of a real row: the input itself
    xaT = scratch("xaT", (src_k.size, M), np.float32)
    _rows(x, src_k, np.where(plain, -1, entry), luts, xaT)
    return Augmented(xaT, wa, keep, per_fold, row_pos[:-1], seg_of)


def gather_rows(x, cols, name="rowsT"):
    """``x[:, cols].T`` as float32 (a scratch buffer; ``cols`` not empty)."""
    out = scratch(name, (len(cols), x.shape[0]), np.float32)
    _rows(x, np.asarray(cols, np.int64), np.full(len(cols), -1, np.int64), np.zeros((1, 256), np.int64), out)
    return out


class Chains(NamedTuple):
    """The faulty-PE chains of every (row fold, output column), ordered by fold, column, row.

    ``ev[e] = (act row, weight, slot)``: the kept augmented row feeding event ``e``'s PE,
    its (effective) weight and, for a psum event, its row in the fold's prefix sums (else
    -1); ``emask[e]`` its product AND/OR and psum AND/OR masks (int32). Chain ``g`` holds
    events ``chain_ptr[g]:chain_ptr[g + 1]`` and writes column ``chain_n[g]``; fold ``kf``
    holds chains ``fold_ptr[kf]:fold_ptr[kf + 1]``. The psum events of fold ``kf``, by slot,
    are columns ``psum_n[kf]`` with ``psum_depth[kf]`` kept rows of the fold above them
    (ascending).
    """

    ev: np.ndarray
    emask: np.ndarray
    chain_ptr: np.ndarray
    chain_n: np.ndarray
    fold_ptr: np.ndarray
    psum_n: list
    psum_depth: list

    def psum_of_fold(self, kf):
        return self.psum_n[kf], self.psum_depth[kf]


def chains(nonlin, psum, masks, aug, N):
    """Lay out the chains of the PEs ``nonlin`` (product or psum stuck), ``psum`` (psum stuck)."""
    R, C = nonlin.shape
    nkf = len(aug.keep) // aug.per_fold
    ev_r, ev_c = np.nonzero(nonlin)
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
    full = base + aug.row_pos[r_i] + aug.seg_of[r_i, c_i]  # the row feeding the event's PE
    kept = aug.keep[full]
    a_idx = np.where(kept, aug.pos[full], 0)
    wv = np.zeros(n_i.size, np.int64)  # a dropped row has weight 0
    wv[kept] = aug.w[a_idx[kept], n_i[kept]]
    depth = aug.pos[base + aug.row_pos[r_i]] - aug.pos[base]  # kept rows of the fold above the PE
    slot = np.full(n_i.size, -1, np.int64)
    is_psum = psum[r_i, c_i]
    psum_n, psum_depth = [], []
    for kf in range(nkf):
        idx = np.nonzero(is_psum & (kf_i == kf))[0]
        idx = idx[np.argsort(depth[idx], kind="stable")]
        slot[idx] = np.arange(idx.size)
        psum_n.append(n_i[idx])
        psum_depth.append(depth[idx])
    ev = np.stack([a_idx, wv, slot], axis=1).astype(np.int64).reshape(-1, 3)
    emask = np.stack([masks[2, 0, r_i, c_i], masks[2, 1, r_i, c_i], masks[3, 0, r_i, c_i], masks[3, 1, r_i, c_i]],
                     axis=1).astype(np.int32).reshape(-1, 4)
    starts = np.nonzero(new_chain)[0]
    chain_ptr = np.append(starts, n_i.size).astype(np.int64)
    fold_ptr = np.searchsorted(kf_i[starts], np.arange(nkf + 1)).astype(np.int64)
    return Chains(ev, emask, chain_ptr, n_i[starts].astype(np.int64), fold_ptr, psum_n, psum_depth)
