"""Checksum operands as signed base-256 digits, so an integer checksum is exact on the array.

A checksum of int8 operands (a row sum of ``W``, a column sum of ``X``) does not fit an 8-bit
register. It is split into signed base-256 digits ``d_0, d_1, ...`` (each in ``[-128, 127]``,
``v = sum_i 256**i d_i``), one array column or input vector per digit, and the digits' results
are recombined on the host modulo ``2**acc_bits`` (docs/semantics.md, "ABFT"). Because the
array's integer arithmetic is exact modulo ``2**acc_bits``, so is the recombined checksum.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_digits", "from_digits", "n_digits"]


def n_digits(max_abs: int) -> int:
    """How many signed base-256 digits hold every value of magnitude up to ``max_abs``."""
    d, reach = 1, 127
    while reach < max_abs:
        d += 1
        reach = reach * 256 + 127
    return d


def to_digits(v: np.ndarray, count: int) -> np.ndarray:
    """``count`` signed base-256 digits of the int64 array ``v``, stacked on a new first axis (int8)."""
    v = np.asarray(v, np.int64).copy()
    out = np.empty((count, *v.shape), np.int8)
    for i in range(count):
        d = ((v + 128) % 256) - 128
        out[i] = d
        v = (v - d) // 256
    if (v != 0).any():
        raise ValueError(f"{count} base-256 digits do not hold these checksums.")
    return out


def from_digits(parts: np.ndarray, acc_bits: int) -> np.ndarray:
    """``sum_i 256**i parts[i]`` modulo ``2**acc_bits``, sign-extended (int64)."""
    total = np.zeros(parts.shape[1:], np.int64)
    for i in range(parts.shape[0] - 1, -1, -1):
        total = total * 256 + parts[i].astype(np.int64)
    shift = 64 - acc_bits
    return (total << shift) >> shift
