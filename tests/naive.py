"""Slow, obviously correct reference of the array semantics (docs/semantics.md, normative).

Plain Python integers, one PE at a time, no cleverness: both engines must match it bit
for bit. Only for tiny shapes.
"""

from __future__ import annotations

import numpy as np

from simulator import SITES

ACT, WEIGHT, PRODUCT, PSUM = (SITES.index(s) for s in ("act", "weight", "product", "psum"))


def sext(v: int, bits: int) -> int:
    """Two's-complement value of the low ``bits`` bits of ``v``."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def register(v: int, masks, site: int, r: int, c: int, bits: int) -> int:
    """A register of PE (r, c) at ``site`` latching ``v``: stuck bits forced."""
    return sext((v & int(masks[site, 0, r, c])) | int(masks[site, 1, r, c]), bits)


def naive_matmul(x, w, masks, bypass: bool, precision) -> np.ndarray:
    """``Y = x @ w`` on an R x C weight-stationary array with the given stuck-at masks."""
    a_bits, w_bits, p_bits, acc_bits = precision.widths()
    R, C = masks.shape[2:]
    M, K = x.shape
    N = w.shape[1]
    faulty = ~((masks[:, 0] == -1) & (masks[:, 1] == 0)).all(axis=0)
    y = [[0] * N for _ in range(M)]
    for nf in range(-(-N // C)):
        for kf in range(-(-K // R)):
            # weights as latched by each PE's weight register
            wreg = [[0] * C for _ in range(R)]
            for r in range(R):
                for c in range(C):
                    k, n = kf * R + r, nf * C + c
                    raw = int(w[k, n]) if k < K and n < N else 0
                    wreg[r][c] = register(raw, masks, WEIGHT, r, c, w_bits)
            for m in range(M):
                # activations flow right along each row through the act latches
                act = [[0] * C for _ in range(R)]
                for r in range(R):
                    k = kf * R + r
                    a_in = int(x[m, k]) if k < K else 0
                    for c in range(C):
                        if bypass and faulty[r, c]:
                            act[r][c] = a_in  # bypass path: forwarded unchanged
                        else:
                            act[r][c] = register(a_in, masks, ACT, r, c, a_bits)
                        a_in = act[r][c]
                # partial sums flow down each column through every row
                for c in range(C):
                    n = nf * C + c
                    s = 0
                    for r in range(R):
                        if bypass and faulty[r, c]:
                            continue
                        p = register(wreg[r][c] * act[r][c], masks, PRODUCT, r, c, p_bits)
                        s = register(sext(s + p, acc_bits), masks, PSUM, r, c, acc_bits)
                    if n < N:
                        y[m][n] = sext(y[m][n] + s, acc_bits)
    return np.array(y, dtype=np.int64).reshape(M, N)
