"""Transient bit flips as the engines take them: validation and layout of event lists.

An event ``(cycle, r, c, site, bit)`` flips (XORs) bit ``bit`` of register ``site`` of PE
``(r, c)`` in cycle ``cycle`` of one GEMM, counted from 0 as the cycle engine counts them
(docs/semantics.md, "Transient faults"): in fold ``f`` (execution order) PE ``(r, c)`` does
the MAC of input vector ``m`` in cycle ``f * L + R + r + c + m`` with ``L = 2R + C + M - 2``.
Random event lists are drawn by :func:`faults.random_flips`; this module only checks and
arranges what the user passes. Output flips ``(m, n, bit)`` flip a bit of a result as it
leaves the array.
"""

from __future__ import annotations

from numbers import Integral
from typing import NamedTuple

import numpy as np

from .errors import OperandError
from .precision import SITES, sext

__all__ = ["Flip", "OutputFlip", "check_flips", "check_output_flips", "by_fold", "xor_patterns", "FLIP_DTYPE"]

#: Structured dtype of an event array (what :func:`faults.random_flips` returns).
FLIP_DTYPE = np.dtype([("cycle", np.int64), ("r", np.int64), ("c", np.int64), ("site", np.int64), ("bit", np.int64)])


class Flip(NamedTuple):
    """One transient flip: bit ``bit`` of ``site`` of PE ``(r, c)`` in cycle ``cycle``."""

    cycle: int
    r: int
    c: int
    site: str
    bit: int


class OutputFlip(NamedTuple):
    """Bit ``bit`` of result ``(m, n)`` flipped as it leaves the array."""

    m: int
    n: int
    bit: int


def _tuples(items, n, what, one, form):
    """``items`` as a list of ``n``-tuples; an ``OperandError`` naming ``what`` and ``form`` if not."""
    try:
        rows = [tuple(f) for f in items]
    except TypeError:
        raise OperandError(f"{what} must be a list of {form} tuples; got {items!r}.") from None
    for f in rows:
        if len(f) != n:
            raise OperandError(f"{one} is {form}; got {f!r}.")
    return rows


def _int_column(rows, i, name):
    col = [row[i] for row in rows]
    for v in col:
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise OperandError(f"flip {name} must be an int; got {v!r}.")
    return np.array(col, np.int64)


def check_flips(flips, cfg, n_cycles: int) -> np.ndarray:
    """Validate ``flips`` for a GEMM of ``n_cycles`` on ``cfg``; returns an ``(E, 5)`` int64 array
    ``(cycle, r, c, site index, bit)``.

    ``flips`` may be a sequence of ``(cycle, r, c, site, bit)`` tuples (``site`` a name of
    :data:`SITES` or its index) or a structured array of :data:`FLIP_DTYPE`.
    """
    if isinstance(flips, np.ndarray) and flips.dtype.names is not None:
        if flips.dtype != FLIP_DTYPE or flips.ndim != 1:
            raise OperandError(f"a flip array must be 1-d with dtype {FLIP_DTYPE}; got {flips.dtype} {flips.shape}.")
        ev = np.stack([flips[f] for f in FLIP_DTYPE.names], axis=1).astype(np.int64)
    else:
        rows = _tuples(flips, 5, "flips", "a flip", "(cycle, r, c, site, bit)")
        sites = []
        for f in rows:
            s = f[3]
            if isinstance(s, str) and s in SITES:
                sites.append(SITES.index(s))
            elif isinstance(s, Integral) and not isinstance(s, bool) and 0 <= s < len(SITES):
                sites.append(int(s))
            else:
                raise OperandError(f"flip site must be one of {list(SITES)} (or its index); got {s!r}.")
        ev = np.zeros((len(rows), 5), np.int64)
        for i, name in ((0, "cycle"), (1, "r"), (2, "c"), (4, "bit")):
            ev[:, i] = _int_column(rows, i, name)
        ev[:, 3] = sites
    if len(ev) == 0:
        return ev.reshape(0, 5)
    for i, name, hi in ((0, "cycle", n_cycles), (1, "r", cfg.rows), (2, "c", cfg.cols), (3, "site", len(SITES))):
        bad = (ev[:, i] < 0) | (ev[:, i] >= hi)
        if bad.any():
            j = int(np.argmax(bad))
            what = "this GEMM has cycles" if name == "cycle" else "allowed"
            raise OperandError(f"flip {tuple(ev[j].tolist())}: {name} {ev[j, i]} is out of range; {what}: [0, {hi - 1}].")
    widths = np.array(cfg.precision.widths())[ev[:, 3]]
    bad = (ev[:, 4] < 0) | (ev[:, 4] >= widths)
    if bad.any():
        j = int(np.argmax(bad))
        site = SITES[ev[j, 3]]
        raise OperandError(f"flip {tuple(ev[j].tolist())}: bit {ev[j, 4]} does not exist in the {widths[j]}-bit "
                           f"{site} register of {cfg.precision.name}; allowed: [0, {widths[j] - 1}].")
    return ev


def check_output_flips(flips, M: int, N: int, bits: int) -> np.ndarray:
    """Validate output flips ``(m, n, bit)``; returns an ``(E, 3)`` int64 array."""
    rows = _tuples(flips, 3, "out_flips", "an output flip", "(m, n, bit)")
    ev = np.zeros((len(rows), 3), np.int64)
    for i, (name, hi) in enumerate((("m", M), ("n", N), ("bit", bits))):
        ev[:, i] = _int_column(rows, i, name)
        bad = (ev[:, i] < 0) | (ev[:, i] >= hi)
        if bad.any():
            j = int(np.argmax(bad))
            raise OperandError(f"output flip {tuple(ev[j].tolist())}: {name} {ev[j, i]} is out of range; "
                               f"allowed: [0, {hi - 1}].")
    return ev


def xor_patterns(ev: np.ndarray, widths) -> np.ndarray:
    """The XOR pattern of each event: bit ``bit`` of its site, sign-extended from the site's width."""
    w = np.asarray(widths, np.int64)[ev[:, 3]]
    return np.array([sext(1 << int(b), int(wb)) for b, wb in zip(ev[:, 4], w)], np.int64)


def by_fold(ev: np.ndarray, widths, fold_len: int, n_folds: int):
    """Events for the cycle engine: rows ``(cycle in fold, r, c, site, xor pattern)`` sorted by
    fold, cycle, r, c, site; and the start of each fold's rows (``n_folds + 1``)."""
    fold = ev[:, 0] // fold_len
    out = np.stack([ev[:, 0] - fold * fold_len, ev[:, 1], ev[:, 2], ev[:, 3], xor_patterns(ev, widths)], axis=1)
    order = np.lexsort((out[:, 3], out[:, 2], out[:, 1], out[:, 0], fold))
    ptr = np.searchsorted(fold[order], np.arange(n_folds + 1)).astype(np.int64)
    return np.ascontiguousarray(out[order]).reshape(-1, 5), ptr
