"""Slow, obviously correct reference of the array semantics (docs/semantics.md, normative).

Plain Python integers for register patterns, the precision's own slow reference for the
arithmetic (``ref_mul``, ``ref_add``, ``ref_acc``: Python ints, or Python floats rounded
to float32), one PE at a time, no cleverness. Transient flips are applied from the
closed-form cycle of each MAC (``fold * L + R + r + c + m``), not by stepping cycles, so
this is a second derivation of what the cycle engine does. Only for tiny shapes.
"""

from __future__ import annotations

import numpy as np

from simulator import SITES
from simulator.precision import register, sext

ACT, WEIGHT, PRODUCT, PSUM = (SITES.index(s) for s in ("act", "weight", "product", "psum"))


def _site_index(s):
    return SITES.index(s) if isinstance(s, str) else int(s)


def naive_matmul(x, w, masks, bypass: bool, precision, flips=(), out_flips=()) -> np.ndarray:
    """``Y = x @ w`` on an R x C weight-stationary array with the given masks and flips.

    ``x``, ``w`` are operands in the precision's dtype; ``flips`` are ``(cycle, r, c, site,
    bit)`` and ``out_flips`` ``(m, n, bit)``. Returns the result in the output dtype.
    """
    a_bits, w_bits, p_bits, s_bits = precision.widths()
    R, C = masks.shape[2:]
    M, K = x.shape
    N = w.shape[1]
    xp = precision.patterns(x).astype(np.int64)
    wq = precision.patterns(w).astype(np.int64)
    L = 2 * R + C + M - 2
    nkf = -(-K // R)
    faulty = ~((masks[:, 0] == -1) & (masks[:, 1] == 0)).all(axis=0)
    byp = faulty if bypass else np.zeros((R, C), bool)
    widths = precision.widths()
    events = {}  # (site, r, c) -> list of (cycle, xor pattern)
    for cycle, r, c, site, bit in flips:
        s = _site_index(site)
        events.setdefault((s, int(r), int(c)), []).append((int(cycle), sext(1 << int(bit), widths[s])))

    def flip_at(site, r, c, t):
        out = 0
        for cycle, pattern in events.get((site, r, c), ()):
            if cycle == t:
                out ^= pattern
        return out

    def mask(v, site, r, c, bits):
        return register(v, int(masks[site, 0, r, c]), int(masks[site, 1, r, c]), bits)

    y = [[precision.ref_zero()] * N for _ in range(M)]
    for nf in range(-(-N // C)):
        for kf in range(nkf):
            base = (nf * nkf + kf) * L  # first cycle of this fold (execution order)
            latched = [[0] * C for _ in range(R)]
            for r in range(R):
                for c in range(C):
                    k, n = kf * R + r, nf * C + c
                    raw = int(wq[k, n]) if k < K and n < N else 0
                    latched[r][c] = mask(raw, WEIGHT, r, c, w_bits)
            for m in range(M):
                # activations flow right along each row through the act latches
                act = [[0] * C for _ in range(R)]
                for r in range(R):
                    k = kf * R + r
                    a_in = int(xp[m, k]) if k < K else 0
                    for c in range(C):
                        if byp[r, c]:
                            act[r][c] = a_in  # bypass path: forwarded unchanged
                        else:
                            t = base + R + r + c + m
                            act[r][c] = mask(a_in ^ flip_at(ACT, r, c, t), ACT, r, c, a_bits)
                        a_in = act[r][c]
                # partial sums flow down each column through every row
                for c in range(C):
                    n = nf * C + c
                    s = precision.ref_zero()
                    for r in range(R):
                        if byp[r, c]:
                            continue
                        t = base + R + r + c + m
                        wreg = latched[r][c]
                        for cycle, pattern in events.get((WEIGHT, r, c), ()):
                            if base <= cycle <= t:  # flipped since this fold's load began, before this MAC
                                wreg ^= pattern
                        wreg = mask(wreg, WEIGHT, r, c, w_bits)
                        p = mask(precision.ref_mul(wreg, act[r][c]) ^ flip_at(PRODUCT, r, c, t), PRODUCT, r, c, p_bits)
                        s = mask(precision.ref_add(s, p) ^ flip_at(PSUM, r, c, t), PSUM, r, c, s_bits)
                    if n < N:
                        y[m][n] = precision.ref_acc(y[m][n], s)
    for m, n, bit in out_flips:
        y[m][n] = sext(y[m][n] ^ (1 << int(bit)), s_bits)
    return precision.output(np.array(y, dtype=np.int64).reshape(M, N))


def bits(a: np.ndarray) -> np.ndarray:
    """Results as integer bit patterns, so NaNs and signed zeros compare exactly."""
    return a.view(np.int32) if a.dtype == np.float32 else a
