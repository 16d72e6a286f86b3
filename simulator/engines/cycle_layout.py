"""What the ``cycle`` engine precomputes for a GEMM, in Python: the PEs its sweep cannot take
as they are, the masks in the layout its loops read, how many rows of each fold must be
computed, and how a fold's columns are split over workers."""

from __future__ import annotations

import math

import numpy as np

from ..precision.integer import IntKernels

__all__ = ["special_pes", "busy_rows", "constants", "column_cuts"]


def special_pes(masks, bypass):
    """``(F, 2)`` positions of the PEs whose act, product or psum register has a stuck bit,
    or that are bypassed: the ones the sweep (:mod:`simulator.engines.cycle`) does not compute
    as they are."""
    R, C = bypass.shape
    ident = np.array([-1, 0], np.int32)[:, None, None]
    odd = bypass.astype(bool)
    for site in (0, 2, 3):
        odd |= (masks[site] != ident).any(axis=0)
    return np.argwhere(odd).astype(np.int64).reshape(-1, 2)


def busy_rows(kernels, masks, bypass, K, n_folds, ev, ev_ptr):
    """Per row fold, how many rows from the top must be computed: all, unless the fold's last
    rows are idle (beyond ``K``) and pass every psum on unchanged. An idle row's PEs see act
    0; with integer arithmetic their product is 0 whatever the weight, and adding 0 changes
    no psum, unless a PE there has a stuck act, product or psum bit, is bypassed, or is hit by
    a flip. Float psums can change by adding zero (``-0.0 + +0.0``) and a table may map
    ``(w, 0)`` to anything, so other precisions compute every row."""
    R, C = bypass.shape
    nkf = -(-K // R)
    row_hi = np.full(nkf, R, np.int64)
    if not isinstance(kernels, IntKernels):
        return row_hi
    special = np.zeros(R, bool)
    special[special_pes(masks, bypass)[:, 0]] = True
    fold_kf = np.repeat(np.arange(n_folds) % nkf, np.diff(ev_ptr))  # folds run nf-major
    for kf in range(nkf):
        idle = K - kf * R
        if idle < R and not special[idle:].any() and not (ev[fold_kf == kf, 1] >= idle).any():
            row_hi[kf] = idle
    return row_hi


def constants(masks, bypass):
    """Per row ``r``: ``cst[r]`` = act AND/OR, product AND/OR, psum AND/OR masks and the
    bypass bits, as int32 rows of length C (one array, so the row loop reads one block)."""
    R, C = bypass.shape
    cst = np.empty((R, 7, C), np.int32)
    for i, (site, j) in enumerate(((0, 0), (0, 1), (2, 0), (2, 1), (3, 0), (3, 1))):
        cst[:, i] = masks[site, j]
    cst[:, 6] = bypass
    return cst


def column_cuts(C, n_folds, n_workers, min_cols=16):
    """Column parts per fold: one, unless there are fewer folds than workers (or they do not
    divide evenly among few): then enough parts that every worker gets the same number of
    units, at least ``min_cols`` columns each. Parts further right are narrower, as they also pass
    the acts of the columns to their left on (about a tenth of a full column's work)."""
    n_parts = 1
    if n_workers > 1 and n_folds % n_workers and n_folds < 8 * n_workers:
        n_parts = min(n_workers // math.gcd(n_folds, n_workers), max(1, C // min_cols))
    width = np.ones(n_parts)
    for _ in range(20):  # equal work per part: width_i + 0.1 * (columns left of i) = const
        left = np.concatenate([[0.0], np.cumsum(width)[:-1]])
        width = np.maximum(1.0, (C + 0.1 * left.sum()) / n_parts - 0.1 * left)
        width *= C / width.sum()
    cuts = np.concatenate([[0], np.round(np.cumsum(width)).astype(np.int64)])
    cuts[-1] = C
    return np.maximum.accumulate(cuts).astype(np.int64)
