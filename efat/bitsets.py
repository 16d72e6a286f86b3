"""Faulty PEs as bits: what makes grouping fast, and the population fingerprint.

Each chip's faulty PEs ``r*C + c`` become bits of a row of 64-bit words; the faulty PEs
of a fusion (the OR of fault maps) are the popcount of the ORed rows.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["popcount", "faulty_pe_lists", "pack", "unpack", "population_fingerprint"]

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per row of a uint64 array ``(..., W)`` -> int64 ``(...)``."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(words).sum(axis=-1, dtype=np.int64)
    return _POPCOUNT8[words.view(np.uint8)].sum(axis=-1, dtype=np.int64)


def faulty_pe_lists(population) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets (n+1,), flat)``: chip ``i``'s faulty PEs ``r*C + c``, ascending, in
    ``flat[offsets[i]:offsets[i+1]]`` (read from the population's sparse store)."""
    rc = population.pe_rc.astype(np.int64)
    return population.offsets.astype(np.int64), rc[:, 0] * population.cfg.cols + rc[:, 1]


def pack(offsets: np.ndarray, flat: np.ndarray, chips: np.ndarray, n_pes: int) -> np.ndarray:
    """uint64 ``(len(chips), ceil(n_pes / 64))``: bit ``p`` set where PE ``p`` is faulty."""
    n_words = -(-n_pes // 64)
    out = np.zeros((len(chips), n_words * 8), np.uint8)
    row_of = np.full(len(offsets) - 1, -1)
    row_of[chips] = np.arange(len(chips))
    rows = np.repeat(row_of, np.diff(offsets))
    keep = rows >= 0
    pes = flat[keep]
    np.bitwise_or.at(out, (rows[keep], pes >> 3), np.left_shift(1, pes & 7).astype(np.uint8))
    return out.view(np.uint64)


def unpack(words: np.ndarray, n_pes: int) -> np.ndarray:
    """Flat indices of the set bits of one packed row."""
    return np.flatnonzero(np.unpackbits(words.view(np.uint8), bitorder="little")[:n_pes])


def population_fingerprint(population) -> str:
    """sha256 over the array shape, the chip ids and each chip's faulty PEs.

    Only what a plan depends on is hashed: which PEs are faulty, not which bits are stuck.
    """
    offsets, flat = faulty_pe_lists(population)
    h = hashlib.sha256()
    h.update("{}x{}\n".format(*population.cfg.shape).encode())
    h.update("\n".join(population.ids).encode() + b"\0")
    h.update(offsets.astype("<i8").tobytes())
    h.update(flat.astype("<i8").tobytes())
    return h.hexdigest()
