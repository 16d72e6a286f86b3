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

The arithmetic is the precision's (:mod:`simulator.precision.kernels`): registers hold
bit patterns, the kernels turn them into values and back. Transient flips (XOR of a
register's bits in one cycle, before its stuck-at masks) are applied in the cycle they
name: a weight flip before the cycle's MACs (after the latch when it falls in the load
cycles), an act, product or psum flip by recomputing that PE's outputs of the cycle.

Folds are independent, so workers take contiguous runs of folds (``prange``), each
with its own registers. Fold results are added in fold order whatever the number of
workers (float addition does not reassociate): a worker accumulates the column folds
whose first row fold it ran, and keeps the raw results of the row folds it ran of a
column fold begun by an earlier worker; these are added after, in order. The result is
the same bits for any number of threads.

Speed: each cycle first sweeps every PE as if it had no mask and no bypass (a
branch-free loop over int32 registers that runs in SIMD lanes, :func:`~simulator.engines.cycle_kernels.sweep`), then
recomputes, from the same previous-cycle registers, the few PEs that have a stuck bit in
their act, product or psum register or are bypassed, and the PEs hit by a flip in this
cycle. The registers are double-buffered, so a PE's new registers depend only on the
previous cycle's: recomputing one PE after the sweep is the same as computing it in place.
Registers no kept result depends on are not computed (:func:`_stream`): PEs holding no
valid input vector in a cycle (the fill and drain of each fold), columns of discarded
outputs, and idle rows that pass psums on unchanged. The per-cycle kernels live in
:mod:`simulator.engines.cycle_kernels`; all but the sweep are inlined into the fold loop
(``inline="always"``): compiled as separate functions, their speed depended on what else the
process had compiled first (measured with ``bench/bench_cycle.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..precision.kernels import acc, pat, val
from .cycle_kernels import WEIGHT, fix_up, flip_weight, load_weights, sweep
from .cycle_layout import busy_rows, column_cuts, constants, special_pes
from .cycle_rows import run_rows

__all__ = ["run_cycle"]

@njit(cache=True)
def _stream(k, x, k0, n0, c_lo, c_hi, c_end, r_hi, wreg, wv, wm, cst, fix, acc_out, own, head, trace, t0, ev, e, e_hi,
            n_load):
    """Stream all M inputs through the loaded array; put the fold result into ``acc_out``
    (added, when ``own``) or ``head`` (raw). Returns the number of cycles run.

    ``ev[e:e_hi]`` are the fold's transient flips from cycle ``n_load`` on, in cycle order.
    Only the columns ``[c_lo, c_hi)`` of the array are run in full (and emit); the columns
    left of them run their act registers only (see :func:`_run_cycle`). Of those, only the
    columns below ``c_end`` and the rows above ``r_hi`` are computed: columns from ``c_end``
    on hold discarded outputs (no register of theirs reaches a kept one: acts move right,
    psums down), and rows from ``r_hi`` on are idle rows that pass every psum on unchanged
    (:func:`~simulator.engines.cycle_layout.busy_rows`); a column's result leaves row
    ``r_hi - 1`` when it is ready, and is
    counted as emitted when it would reach the bottom row, so the cycles run are the same.
    And in each cycle only the PEs holding a valid input vector are computed: every register
    value belongs to one input vector (the act of vector ``m`` reaches PE ``(r, c)`` in
    cycle ``m + r + c``, and so does its psum), so values of the cycles before the first
    vector and after the last never meet a valid one; they are never emitted, and a flip
    in them reaches nothing (docs/semantics.md, "Transient faults"). In the fill and drain
    of a fold that skips most of the array.
    ``trace`` (cycles x R x C bool) is filled from row ``t0`` when it has more than one row.

    Registers, double-buffered (``ap``, ``pp`` this cycle's inputs; ``an``, ``pn`` what
    the PEs latch): ``a[r, c + 1]`` is the act register of PE ``(r, c)`` and ``a[r, 0]``
    the input at row ``r``'s left edge; ``p[r + 1, c]`` is the psum register of PE
    ``(r, c)`` and ``p[0, :]`` the zeros entering the top. Patterns are held sign-extended
    in int32. A valid bit moves right with each act, so PE ``(r, c)`` holds a valid one in
    stream cycle ``t`` exactly when ``0 <= t - r - c < M``: that is computed, not stepped
    (stepping it cost each thread a copy of every PE's bit per cycle). The PE loop indexes
    the 2-d arrays directly and has no branch, so it runs in SIMD lanes (row views, which
    Numba reference-counts, made it 4x slower; measured).
    """
    M, K = x.shape
    R, C = wreg.shape
    ap = np.zeros((R, C + 1), np.int32)
    an = np.zeros((R, C + 1), np.int32)
    pp = np.zeros((R + 1, C), np.int32)
    pn = np.zeros((R + 1, C), np.int32)
    n_left = M * (c_hi - c_lo)
    tracing = trace.shape[0] > 1
    t = 0
    while n_left > 0:
        now = n_load + t
        e0 = e
        while e < e_hi and ev[e, 0] == now:
            if ev[e, 3] == WEIGHT:  # used by this cycle's MAC on
                flip_weight(k, e, ev, wm, wreg, wv)
            e += 1
        for r in range(r_hi):  # the left edge: row r gets input vector t - r (the skew)
            mi = t - r
            kk = k0 + r
            ap[r, 0] = np.int32(x[mi, kk]) if 0 <= mi < M and kk < K else np.int32(0)
        sweep(k, ap, an, pp, pn, wv, c_lo, c_end, 0, r_hi, t, M)
        fix_up(k, fix, ev, e0, e, ap, an, pp, pn, wv, cst, c_lo, c_end, 0, r_hi, t, M)
        for c in range(c_lo, c_hi):  # the valid bit travels with the skewed acts
            mo = t - (r_hi - 1) - c  # the input vector whose result leaves row r_hi - 1
            if c < c_end and 0 <= mo < M:
                fv = val(k, pn[r_hi, c])
                if own:
                    acc_out[mo, n0 + c] = acc(k, acc_out[mo, n0 + c], fv)
                else:
                    head[mo, c] = fv
            if 0 <= t - (R - 1) - c < M:  # ... and reaches the bottom row
                n_left -= 1
        if tracing:
            for r in range(R):
                for c in range(C):
                    trace[t0 + t, r, c] = 0 <= t - r - c < M
        ap, an = an, ap
        pp, pn = pn, pp
        t += 1
    return t


@njit(cache=True, parallel=True)
def _run_cycle(k, x, w, wm, cst, fix, cuts, row_hi, wv_zero, n_workers, trace, ev, ev_ptr):
    """Folds, each split into ``len(cuts) - 1`` column parts, over ``n_workers`` workers.

    Work units are ordered ``for nf: for part: for kf`` (a *group* is one column part of
    one column fold); worker ``wk`` runs a contiguous run of ``per`` units with its own
    registers. A part ``[c_lo, c_hi)`` runs its columns in full and the columns left of it
    only as far as their act registers go, so parts of one fold run on different workers
    with no exchange; every register is what the whole array computes. Row fold ``kf``
    computes rows ``[0, row_hi[kf])``.
    """
    M, K = x.shape
    N = w.shape[1]
    R, C = wm.shape[1:]
    n_parts = cuts.size - 1
    nkf = (K + R - 1) // R
    nnf = (N + C - 1) // C
    n_units = nkf * nnf * n_parts
    unit_cycles = np.zeros(n_units, np.int64)
    accs = np.full((n_workers, M, N), k.zero)
    per = (n_units + n_workers - 1) // n_workers
    n_head = max(1, min(per, nkf - 1))
    heads = np.full((n_workers, n_head, M, C), k.zero)
    for wk in prange(n_workers):
        wreg = np.zeros((R, C), w.dtype)
        wv = np.full((R, C), wv_zero)
        chain = np.zeros((R, C), w.dtype)
        t0 = 0
        lo = wk * per
        for u in range(lo, min(n_units, lo + per)):
            g = u // nkf
            kf = u % nkf
            nf = g // n_parts
            part = g % n_parts
            f = nf * nkf + kf
            own = u - kf >= lo  # this worker ran the group's first row fold
            e, e_hi = ev_ptr[f], ev_ptr[f + 1]
            n_load, e = load_weights(k, w, kf * R, nf * C, R, C, wm, wreg, wv, chain, ev, e, e_hi)
            head = heads[wk, min(u - lo, n_head - 1)]
            c_lo, c_hi = cuts[part], cuts[part + 1]
            c_end = max(c_lo, min(c_hi, N - nf * C))
            n_stream = _stream(k, x, kf * R, nf * C, c_lo, c_hi, c_end, row_hi[kf], wreg, wv, wm, cst, fix,
                               accs[wk], own, head, trace, t0 + n_load, ev, e, e_hi, n_load)
            unit_cycles[u] = n_load + n_stream
            t0 += n_load + n_stream
    out = np.zeros((M, N), np.int64)
    fold_cycles = np.zeros(nkf * nnf, np.int64)
    for g in range(nnf * n_parts):
        u0 = g * nkf
        owner = u0 // per
        nf = g // n_parts
        c_lo, c_hi = cuts[g % n_parts], cuts[g % n_parts + 1]
        for kf in range(nkf):  # a fold lasts until its last part (the one with the last column) ends
            f = nf * nkf + kf
            fold_cycles[f] = max(fold_cycles[f], unit_cycles[u0 + kf])
        n_lo, n_hi = nf * C + c_lo, min(N, nf * C + c_hi)
        for m in range(M):
            for n in range(n_lo, n_hi):
                s = accs[owner, m, n]
                for u in range(u0 + 1, u0 + nkf):  # later row folds run by later workers, in order
                    wk = u // per
                    if wk != owner:
                        s = acc(k, s, heads[wk, u - wk * per, m, n - nf * C])
                out[m, n] = pat(k, s)
    return out, fold_cycles


def run_cycle(x, w, masks, bypass, kernels, n_workers=1, trace=None, events=None, min_part_cols=16,
              min_part_rows=16, stage=256):
    """Run a GEMM on the register-level model.

    Parameters
    ----------
    x : int array (M, K); w : int array (K, N)
        Operand register patterns (sign-extended from the operand width).
    masks : int32 array (4, 2, R, C)
        AND / OR masks per site (``SITES`` order), sign-extended to the site width.
    bypass : uint8 array (R, C)
        1 where the PE is bypassed.
    kernels : the precision's kernel tuple
    n_workers : int
        Folds are split over this many workers (threads). With fewer folds than workers,
        each fold's rows are split over the workers, pipelined
        (:mod:`simulator.engines.cycle_rows`), when every fold computes at least
        ``min_part_rows`` rows per worker; with folds that do not divide evenly among few
        workers, each fold is split by columns
        (:func:`~simulator.engines.cycle_layout.column_cuts`). Must be 1 when tracing.
    trace : bool array (cycles, R, C) or None
        Filled with the per-cycle valid-MAC activity of every PE.
    events : (int64 array (E, 5), int64 array (folds + 1)) or None
        Transient flips as rows ``(cycle in fold, r, c, site, xor pattern)`` sorted by
        fold, cycle, r, c, with each fold's range in the second array
        (:func:`simulator.flips.by_fold`).
    min_part_cols, min_part_rows : int
        Narrowest column part, and band of rows, worth a worker of its own (tests set 1).
    stage : int
        Cycles per pipeline stage when rows are split (tests set a few).

    Returns
    -------
    out : int64 array (M, N) of result patterns.
    fold_cycles : int64 array (folds,) in execution order (``for nf: for kf``).
    """
    if trace is None:
        trace = np.zeros((1, 1, 1), np.bool_)
    elif n_workers != 1:
        raise ValueError("tracing needs n_workers=1")
    R, C = bypass.shape
    n_folds = -(-x.shape[1] // R) * -(-w.shape[1] // C)
    if events is None:
        events = (np.zeros((0, 5), np.int64), np.zeros(n_folds + 1, np.int64))
    ev, ev_ptr = events
    wm = masks[1].astype(w.dtype)
    cst = constants(masks, bypass)
    row_hi = busy_rows(kernels, masks, bypass, x.shape[1], n_folds, ev, ev_ptr)
    # decoded weights: integer operand values (at most 8 bits) are held in int32, so the
    # sweep runs 8 PEs per AVX2 vector instead of 4; other value types as they are
    wv_zero = np.int32(0) if isinstance(kernels.zero, np.integer) else kernels.zero
    if n_folds < n_workers and row_hi.min() >= min_part_rows * n_workers:  # a fold's rows over the threads
        return run_rows(kernels, x, w, wm, cst, special_pes(masks, bypass), row_hi, wv_zero, n_workers, ev, ev_ptr,
                        stage)
    cuts = column_cuts(C, n_folds, n_workers, min_part_cols)
    n_units = n_folds * (cuts.size - 1)
    per = -(-n_units // n_workers)
    n_workers = -(-n_units // per)  # no idle workers (their accumulators would cost memory)
    return _run_cycle(kernels, x, w, wm, cst, special_pes(masks, bypass), cuts, row_hi, wv_zero, np.int64(n_workers),
                      trace, ev, ev_ptr)
