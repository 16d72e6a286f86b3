"""The ``fast`` engine: the array's exact result without stepping cycles.

Three paths, chosen by what the precision allows, never by its type:

* precisions whose products and sums are integers that float BLAS computes exactly in
  any order (``precision.blas_exact``: the integer precisions) take BLAS plus an exact
  replay of the faulty columns (:mod:`simulator.engines.blas`);
* precisions whose products come from a table and whose sums are integers
  (``precision.table_sums``: the LUT precisions) take a gather-add over per-row product
  tables (:mod:`simulator.engines.table`);
* all others keep the array's order of additions in an order-preserving Numba kernel
  (:mod:`simulator.engines.ordered`).

Transient flips are then applied to the outputs they reach: where sums are modular integers
(both integer-sum paths), weight, act and product flips as exact deltas of the terms they change
(:mod:`simulator.engines.flip_deltas`), the rest recomputed (:mod:`simulator.engines.replay`).
"""

from __future__ import annotations

import numpy as np

from .blas import run_blas
from .flip_deltas import replay_flips_modular
from .ordered import Prepared, run_ordered
from .replay import replay_flips
from .table import run_table, table_applies

__all__ = ["run_fast"]


def run_fast(x, w, masks, bypass, precision, kernels, flips=None, xor=None):
    """Result patterns (an integer array ``(M, N)``) of the GEMM of operand patterns ``x``, ``w``.

    ``flips`` is a validated ``(E, 5)`` event array (:func:`simulator.flips.check_flips`)
    with the events' XOR patterns ``xor``, or None.
    """
    ops = Prepared(x, w, masks, bypass)  # layouts built on first use only
    modular = bool(precision.blas_exact) or table_applies(precision, masks, bypass)
    if precision.blas_exact:
        out = run_blas(x, w, masks, bypass, precision)  # int32 or int64
    elif modular:
        out = run_table(ops, precision)
    else:
        out = run_ordered(ops, kernels)
    if flips is not None and len(flips):
        if modular:  # wrapped to acc_bits <= 32: the kernels update int32 results in place
            out = replay_flips_modular(ops, kernels, flips, xor, out)
        else:
            out = replay_flips(ops, kernels, flips, xor, out.astype(np.int64, copy=False))
    return out
