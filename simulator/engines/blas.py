"""The ``fast`` engine's path for integer precisions (``blas_exact``): BLAS plus exact replay.

Bit-identical to the ``cycle`` engine at close to GEMM cost. How it stays exact while
using BLAS:

* **Exact integer GEMM on floating-point BLAS.** A sum of at most ``2**24 / max|product|``
  integer products (1,024 for int8) never leaves the range in which float32 represents
  every integer, whatever order BLAS adds in. Longer reductions are cut into chunks of
  that length, each rounded to int32 and added. Sums wrap modulo ``2**acc_bits`` (at most
  32): addition modulo ``2**32`` is associative, so where the wrap happens does not change
  a bit, and int32 arithmetic wraps by itself.
* **Linear faults go into the operands.** A stuck-at fault in a *weight* register just
  changes that PE's weight. A stuck-at fault in an *act* latch at PE ``(r, c0)`` changes
  the activation seen by PEs ``(r, c >= c0)``: it becomes ``f(x)`` with ``f`` the masking.
  That is still linear in the products, so the engine appends a virtual reduction row
  carrying ``f(x)`` whose weights are the row's weights on columns ``>= c0`` (and zeroes
  the original row there). Several act faults in a row give one segment each
  (:mod:`simulator.engines.blas_layout`).
* **A stuck product register is linear too**, unless a stuck psum register follows it in
  its column: the chain then just adds ``f(p) - p`` to the column's output, ``p`` the
  fault-free product, computed elementwise.
* **A stuck psum register is replayed exactly.** Masking the psum of PE ``(r, c)`` needs
  the exact psum arriving there: the fault-free prefix sum of column ``c``'s rows above
  ``r`` in that fold, one more GEMM column per faulty PE and fold, computed by BLAS in
  the same exact way (events sorted by row, so rows below the deepest event of a group
  are not multiplied). A small Numba kernel then walks each column's chain of faulty PEs
  in SIMD lanes over the input vectors and adds the difference between the faulty and the
  fault-free chain to the main GEMM's result.
* **Bypass** equals the fault-free array with the weights on faulty PEs set to zero
  (docs/semantics.md, "Bypass"); that is what this engine computes. The test-suite checks
  the equivalence against the ``cycle`` engine, which models the bypass multiplexers.

Work runs in an order that keeps OpenBLAS's threads (which spin for a while after each
call) from slowing Numba's: the parallel Numba conversion of the operand first, then the
BLAS calls, with only single-threaded kernels between and after them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..masks import faulty_pes, stuck
from .blas_layout import augment, chains, gather_rows, tile
from .scratch import scratch

__all__ = ["run_blas", "exact_matmul"]

_F32_EXACT = 1 << 24
_GROUPS = 4  # prefix-sum GEMMs per fold, events grouped by depth (measured: 3..6 are all close)
_TRANSPOSE_ABOVE = 0.25  # fraction of rows with a stuck product or psum register (see run_blas)


def _chunk(max_abs_product):
    return _F32_EXACT // max(1, int(max_abs_product))


@njit(cache=True)
def _add_rounded(out, part, first):
    """``out += part`` (or ``=`` if ``first``), ``part`` float32 holding integers, ``out``
    int32 wrapping modulo ``2**32``."""
    o = out.reshape(-1)
    p = part.reshape(-1)
    if first:
        for i in range(o.size):
            o[i] = np.int32(p[i])
    else:
        for i in range(o.size):
            o[i] += np.int32(p[i])


def _gemm_into(out, a, b, cuts, name="part"):
    """``out = a @ b`` exactly, ``out`` int32 (modulo ``2**32``), ``a``, ``b`` float32 holding
    small integers, one float32 GEMM per reduction range ``cuts[i]:cuts[i + 1]`` (each short
    enough to be exact)."""
    part = scratch(name, out.shape, np.float32)
    if len(cuts) < 2:
        out[:] = 0
    for d0, d1 in zip(cuts[:-1], cuts[1:]):
        np.matmul(a[:, d0:d1], b[d0:d1], out=part)
        _add_rounded(out, part, d0 == cuts[0])
    return out


def _cuts(D, chunk):
    return list(range(0, D, chunk)) + [D] if D else []


def exact_matmul(a, b, max_abs_product):
    """``a @ b`` of small integers, as int32 modulo ``2**32``, computed with float BLAS.

    Parameters
    ----------
    a : integer array (M, K); b : integer array (K, N)
    max_abs_product : int
        Bound on ``|a[m, k] * b[k, n]|`` (at most ``2**24 / 64``); decides how long a
        float32 reduction may be.
    """
    M, K = a.shape
    af = scratch("a", a.shape, np.float32)
    np.copyto(af, a, casting="unsafe")
    return _gemm_into(np.empty((M, b.shape[1]), np.int32), af, b.astype(np.float32), _cuts(K, _chunk(max_abs_product)))


@njit(cache=True, inline="always")
def _wrap(v, half, mask):
    return ((v + half) & mask) - half


@njit(cache=True)
def _fold_chains(yT, xaT, P, ev, emask, chain_ptr, chain_n, half, mask):
    """Add to ``yT[n]`` the difference between each faulty column chain of one fold and its
    fault-free sum, in int32 lanes over input vectors (sums are modulo ``2**acc_bits``).

    A chain's events are its PEs with a stuck product or psum register, in row order:
    ``ev[e] = (act row, weight, slot)``, the augmented row feeding the PE, its weight and,
    for a psum event, the row of ``P`` holding the fault-free prefix sum above it (``-1``:
    a product-only event). ``emask[e]`` = product AND/OR, psum AND/OR.
    """
    M = yT.shape[1]
    B = 512
    s = np.empty(B, np.int32)  # chain value after the last psum event
    pin = np.empty(B, np.int32)  # fault-free prefix through the last psum event's row
    dsum = np.empty(B, np.int32)  # product deltas since the last psum event
    for m0 in range(0, M, B):
        nb = min(B, M - m0)
        for g in range(chain_n.shape[0]):
            s[:nb] = 0
            pin[:nb] = 0
            dsum[:nb] = 0
            for e in range(chain_ptr[g], chain_ptr[g + 1]):
                xr = xaT[ev[e, 0], m0 : m0 + nb]
                w = np.int32(ev[e, 1])
                pa, po, sa, so = emask[e, 0], emask[e, 1], emask[e, 2], emask[e, 3]
                if ev[e, 2] >= 0:
                    pr = P[ev[e, 2], m0 : m0 + nb]
                    for i in range(nb):
                        pf = np.int32(xr[i]) * w
                        p = np.int32(pr[i])
                        sb = s[i] + (p - pin[i]) + dsum[i] + ((pf & pa) | po)
                        s[i] = (_wrap(sb, half, mask) & sa) | so
                        pin[i] = p + pf
                        dsum[i] = 0
                else:
                    for i in range(nb):
                        pf = np.int32(xr[i]) * w
                        dsum[i] += ((pf & pa) | po) - pf
            yr = yT[chain_n[g], m0 : m0 + nb]
            for i in range(nb):
                yr[i] += s[i] - pin[i] + dsum[i]


@njit(cache=True)
def _transpose_wrapped(yT, half, mask, out):
    """``out[m, n] = wrap(yT[n, m])`` to ``acc_bits``, in cache blocks."""
    N, M = yT.shape
    B = 64
    for m0 in range(0, M, B):
        for n0 in range(0, N, B):
            for m in range(m0, min(M, m0 + B)):
                for n in range(n0, min(N, n0 + B)):
                    out[m, n] = _wrap(yT[n, m], half, mask)


def _int32_constants(acc_bits):
    """``half``, ``mask`` of the add/AND/subtract wrap as int32 patterns (for 32 bits the
    wrap is the identity modulo ``2**32``, and so are these constants)."""
    half, mask = np.array([1 << (acc_bits - 1), (1 << acc_bits) - 1]).astype(np.uint32).view(np.int32)
    return half, mask


def _fault_free(x, w, precision):
    """The fault-free array (or bypass, with ``w`` zeroed on faulty PEs): one exact GEMM."""
    out = exact_matmul(x, w, precision.max_abs_product())
    if precision.acc_bits < 32:
        half, mask = _int32_constants(precision.acc_bits)
        out = ((out + half) & mask) - half
    return out


def run_blas(x, w, masks, bypass, precision):
    """Compute the array's GEMM result (int32, wrapped to ``acc_bits``) for an integer precision.

    ``x``, ``w`` are int8 operands, ``masks`` the ``(4, 2, R, C)`` stuck-at masks and
    ``bypass`` a bool telling whether faulty PEs are bypassed.
    """
    R, C = masks.shape[2:]
    M, K = x.shape
    N = w.shape[1]
    faulty = faulty_pes(masks)
    nkf = -(-K // R)
    if bypass or not faulty.any():
        if faulty.any():
            w = np.where(tile(faulty, nkf, N)[:K], 0, w).astype(np.int8)
        return _fault_free(x, w, precision)

    ident = ~stuck(masks[:, 0], masks[:, 1])  # (4, R, C): registers without a stuck bit
    wp = np.zeros((nkf * R, N), np.int16)
    wp[:K] = w
    w_eff = (wp & tile(masks[1, 0], nkf, N)) | tile(masks[1, 1], nkf, N)
    if ident[[0, 2, 3]].all():  # weight faults only: the fault-free array with other weights
        return _fault_free(x, w_eff[:K].astype(np.int8), precision)  # (idle rows multiply inputs of 0)
    maxp = precision.max_abs_product()
    chunk = _chunk(maxp)
    half, mask = _int32_constants(precision.acc_bits)
    nonlin = ~(ident[2] & ident[3])
    # transposing the whole operand pays where the chain kernel reads most rows (measured: psum faults on
    # 72% of the rows, 33 ms against 39 ms in place); a layer whose columns hold few faulty rows reads x in
    # place (LeNet-5's first conv uses 6 columns of 128)
    rows_hit = nonlin[:, : min(C, N)].any(axis=1).mean()
    act_ok = ident[0].copy()
    act_ok[:, min(C, N) :] = True  # an act fault right of the last used column reaches no kept output
    aug = augment(x, w_eff, masks[0], act_ok, R, C, transpose=rows_hit > _TRANSPOSE_ABOVE)
    rows = aug.xT  # the reduction rows as float32, (rows, M); without act faults x's columns in place:
    if rows is None:
        xf = scratch("xf", (M, K), np.float32)
        np.copyto(xf, x, casting="unsafe")
        rows = xf.T
    waT = np.ascontiguousarray(aug.w.T).astype(np.float32)
    yT = _gemm_into(scratch("yT", (N, M), np.int32), waT, rows, _main_cuts(aug, nkf, R, chunk))
    lay = chains(nonlin, ~ident[3], masks, aug, N)
    ev = lay.ev
    if aug.n_rows == 0:  # every row dropped: events read a row of zeros, with weight 0
        xaT = np.zeros((1, M), np.float32)
    elif aug.xT is None:  # the chain kernel reads rows in SIMD lanes: the ones it needs, transposed
        need, ev = np.unique(ev[:, 0]), ev.copy()
        ev[:, 0] = np.searchsorted(need, ev[:, 0])
        xaT = gather_rows(x, need)
    else:
        xaT = aug.xT
    one_gemm = R * maxp <= _F32_EXACT  # a prefix sum adds at most R products: one float32 GEMM is exact
    for kf in range(nkf):
        g0, g1 = lay.fold_ptr[kf], lay.fold_ptr[kf + 1]
        if g0 == g1:
            continue
        P = _prefix_sums(lay.psum_of_fold(kf), aug, rows, waT, kf, one_gemm, chunk, M)
        e0, e1 = lay.chain_ptr[g0], lay.chain_ptr[g1]
        _fold_chains(yT, xaT, P, ev[e0:e1], lay.emask[e0:e1], lay.chain_ptr[g0 : g1 + 1] - e0,
                     lay.chain_n[g0:g1], half, mask)
    out = np.empty((M, N), np.int32)
    _transpose_wrapped(yT, half, mask, out)
    return out


def _main_cuts(aug, nkf, R, chunk):
    """Reduction ranges of the main GEMM: whole folds, as many as keep every column's sum
    exact in float32. A column has at most ``R`` non-zero weights per fold however many act
    faults add rows (one act segment per array row feeds it); with ``R`` over ``chunk``,
    ranges of ``chunk`` rows."""
    if R > chunk:
        return _cuts(aug.n_rows, chunk)
    per = chunk // R
    return sorted({int(aug.pos[kf * aug.per_fold]) for kf in range(0, nkf, per)} | {aug.n_rows})


def _prefix_sums(psum, aug, rows, waT, kf, one_gemm, chunk, M):
    """``P[j]``: fault-free prefix sums above fold ``kf``'s psum events ``psum = (n, depth)``
    (sorted by depth; augmented rows of the fold above the event's row), over all vectors:
    float32 if ``one_gemm`` (fewer than ``chunk`` non-zero products per sum), else int32."""
    n, depth = psum
    P = scratch("P", (len(n), M), np.float32 if one_gemm else np.int32)
    if len(n) == 0:
        return P
    row0 = aug.pos[kf * aug.per_fold]
    wT = scratch("wP", (len(n), int(depth[-1])), np.float32)
    cols = np.arange(wT.shape[1])
    np.copyto(wT, np.where(cols[None, :] < depth[:, None], waT[n, row0 : row0 + wT.shape[1]], 0))
    cuts = np.unique(np.linspace(0, len(n), _GROUPS + 1).astype(np.int64))
    for g0, g1 in zip(cuts[:-1], cuts[1:]):
        d = int(depth[g1 - 1])
        if one_gemm:
            np.matmul(wT[g0:g1, :d], rows[row0 : row0 + d], out=P[g0:g1])
        else:
            _gemm_into(P[g0:g1], wT[g0:g1, :d], rows[row0 : row0 + d], _cuts(d, chunk), name="partP")
    return P
