"""ABFT on the array: checksum schemes as array programs (docs/semantics.md, "ABFT").

Each scheme takes a GEMM ``Y = X @ W`` and a ``run(x, w)`` that computes a GEMM on the (possibly
faulty) array, transforms the GEMM it asks the array for, and checks on the host:

* **global** (:func:`global_abft`): checksum columns ``W @ 1`` appended to ``W`` and checksum
  rows ``1^T X`` appended to ``X`` (one array run); the host compares every row and column sum
  of ``Y`` with its checksum, and locates and corrects a single wrong output;
* **fold** (:func:`fold_abft`): every column fold carries, in its last columns, the checksum of
  its own data columns (``ceil(N / (C - d))`` column folds instead of ``ceil(N / C)``); detection
  is local to a (row, fold);
* **replication** (:func:`replicate`): the GEMM runs a second time with every column shifted by
  one PE column, and the two results are compared.

Integer checksums are split into signed base-256 digits (:mod:`protect.digits`), so the check is
exact. Float checksums are rounded to the operand format, and a mismatch counts only beyond the
tolerance :func:`float_tolerance` (the rounding bounds of both sides).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .digits import from_digits, n_digits, to_digits

__all__ = ["AbftResult", "global_abft", "fold_abft", "replicate", "float_tolerance", "tolerance_factor", "SCHEMES"]

SCHEMES = ("none", "global", "fold", "replication")


@dataclass
class AbftResult:
    """The checked (and, for global ABFT, corrected) result, and what the check saw."""

    out: np.ndarray
    detected: bool = False  # some check failed
    corrected: int = 0  # outputs corrected
    mismatches: int = 0  # failed row/column (or fold) checks
    extra: dict = field(default_factory=dict)  # the extra GEMM shape the scheme ran


def _is_float(precision) -> bool:
    return precision.output_dtype.kind == "f"


def float_tolerance(x: np.ndarray, w: np.ndarray, precision) -> np.ndarray:
    """Per row of ``X @ W``, the largest ``|sum_n Y[m, n] - checksum[m]|`` rounding alone can make.

    Both sides are sums of ``K * N`` products of magnitude at most ``|x| |w|``, each formed and
    added in float32 (at most ``K + N + 1`` roundings of relative size ``2**-24`` on any path),
    and the checksum's weights are rounded once to the operand format (relative ``2**-(p)``, ``p``
    its significand bits): ``tol[m] = (2 (K + N + 2) 2**-24 + 2**-p) sum_k |x_mk| sum_n |w_kn|``.
    """
    K, N = w.shape
    mass = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).sum(axis=1)
    return tolerance_factor(K, N, precision) * mass


def tolerance_factor(k, n, precision):
    """``2 (k + n + 2) 2**-24 + 2**-p``: :func:`float_tolerance` per unit of ``sum_k |x| sum_n |w|``
    (``k``, ``n`` may be arrays: one factor per checksum block)."""
    man = {32: 23, 16: 10 if precision.name == "fp16" else 7, 8: 3 if precision.name == "fp8_e4m3" else 2}
    p = man[precision.widths()[0]] + 1
    return 2 * (np.asarray(k) + np.asarray(n) + 2) * 2.0 ** -24 + 2.0 ** -p


def _row_checksum_operand(w, precision, count=None):
    """``W @ 1`` as operand columns: int digits ``(K, d)`` or the float sum in the format ``(K, 1)``."""
    if _is_float(precision):
        s = w.astype(np.float64).sum(axis=1)
        with np.errstate(over="ignore", invalid="ignore"):  # beyond the format: inf, and the check fails
            return s.astype(precision.operand_dtypes[0])[:, None], 1
    s = w.astype(np.int64).sum(axis=1)
    d = count or n_digits(int(np.abs(s).max(initial=0)))
    return np.ascontiguousarray(to_digits(s, d).T), d


def _col_checksum_operand(x, precision):
    """``1^T X`` as operand rows: int digits ``(d, K)`` or the float sum ``(1, K)``."""
    if _is_float(precision):
        with np.errstate(over="ignore", invalid="ignore"):
            s = x.astype(np.float64).sum(axis=0)
            return s.astype(precision.operand_dtypes[0])[None, :], 1
    s = x.astype(np.int64).sum(axis=0)
    d = n_digits(int(np.abs(s).max(initial=0)))
    return to_digits(s, d), d


def _combine(parts, precision, axis):
    """Recombine digit results along ``axis`` (int), or take the one float column/row."""
    if _is_float(precision):
        return np.take(parts, 0, axis=axis).astype(np.float64)
    return from_digits(np.moveaxis(parts, axis, 0), precision.widths()[3])


def _wrap(v, precision):
    if _is_float(precision):
        return v
    shift = 64 - precision.widths()[3]
    return (np.asarray(v, np.int64) << shift) >> shift


def _sums(y, precision, axis):
    return _wrap(y.astype(np.float64 if _is_float(precision) else np.int64).sum(axis=axis), precision)


def global_abft(x, w, run, precision) -> AbftResult:
    """Global ABFT: one run of ``[X; 1^T X] @ [W, W 1]``; single errors located and corrected."""
    M, K = x.shape
    N = w.shape[1]
    wc, dw = _row_checksum_operand(w, precision)
    xr, dx = _col_checksum_operand(x, precision)
    y_aug = run(np.concatenate([x, xr]), np.concatenate([w, wc], axis=1))
    y = y_aug[:M, :N].copy()
    row_ck = _combine(y_aug[:M, N:], precision, axis=1)  # (M,): X @ (W 1)
    col_ck = _combine(y_aug[M:, :N], precision, axis=0)  # (N,): (1^T X) @ W
    row_sum, col_sum = _sums(y, precision, 1), _sums(y, precision, 0)
    if _is_float(precision):
        tol_r = float_tolerance(x, w, precision)
        tol_c = float_tolerance(w.T, x.T, precision)
        with np.errstate(invalid="ignore"):
            bad_r = ~(np.abs(row_sum - row_ck) <= tol_r)
            bad_c = ~(np.abs(col_sum - col_ck) <= tol_c)
    else:
        bad_r, bad_c = row_sum != row_ck, col_sum != col_ck
    res = AbftResult(y, bool(bad_r.any() or bad_c.any()), 0, int(bad_r.sum() + bad_c.sum()),
                     {"rows": dx, "cols": dw})
    if bad_r.sum() == 1 and bad_c.sum() == 1:  # a single wrong output: locate and correct
        m, n = int(np.argmax(bad_r)), int(np.argmax(bad_c))
        others = np.delete(y[m], n).astype(np.float64 if _is_float(precision) else np.int64).sum()
        fix = row_ck[m] - others  # the checksum less the row's other outputs
        if _is_float(precision):
            y[m, n] = np.float32(fix) if np.isfinite(fix) else y[m, n]
        else:
            y[m, n] = _wrap(fix, precision)
        res.corrected = 1
    return res


def fold_abft(x, w, run, precision, cols: int) -> AbftResult:
    """Fold-level ABFT: each column fold of ``cols`` array columns holds ``C - d`` data columns and
    the ``d`` checksum columns of those; one run; detection per (input vector, fold)."""
    M, K = x.shape
    N = w.shape[1]
    d = 1
    if not _is_float(precision):  # enough digits for the largest checksum of any fold
        while True:
            per = cols - d
            if per < 1:
                break
            biggest = max(int(np.abs(w[:, f0 : f0 + per].astype(np.int64).sum(axis=1)).max(initial=0))
                          for f0 in range(0, N, per))
            if n_digits(biggest) <= d:
                break
            d += 1
    per = cols - d
    if per < 1:
        raise ValueError(f"fold-level ABFT needs more than {d} array columns; the array has {cols}.")
    blocks, layout = [], []
    for f0 in range(0, N, per):
        wf = w[:, f0 : f0 + per]
        wc, _ = _row_checksum_operand(wf, precision, d)
        blocks += [wf, np.zeros((K, per - wf.shape[1]), w.dtype), wc]
        layout.append((f0, wf.shape[1]))
    y_aug = run(x, np.concatenate(blocks, axis=1))
    out = np.empty((M, N), y_aug.dtype)
    mismatches = 0
    for i, (f0, width) in enumerate(layout):
        base = i * cols
        yf = y_aug[:, base : base + width]
        out[:, f0 : f0 + width] = yf
        ck = _combine(y_aug[:, base + per : base + per + d], precision, axis=1)
        s = _sums(yf, precision, 1)
        if _is_float(precision):
            tol = float_tolerance(x, w[:, f0 : f0 + width], precision)
            with np.errstate(invalid="ignore"):
                bad = ~(np.abs(s - ck) <= tol)
        else:
            bad = s != ck
        mismatches += int(bad.sum())
    return AbftResult(out, mismatches > 0, 0, mismatches, {"cols": len(layout) * cols - N})


def replicate(x, w, run, precision) -> AbftResult:
    """Replication: the GEMM again with every column shifted right by one PE column (a zero
    column in front), compared bit for bit (int) or within the float tolerance."""
    first = run(x, w)
    shifted = run(x, np.concatenate([np.zeros((w.shape[0], 1), w.dtype), w], axis=1))[:, 1:]
    if _is_float(precision):
        a, b = first.view(np.int32), shifted.view(np.int32)
    else:
        a, b = first, shifted
    bad = a != b
    return AbftResult(first, bool(bad.any()), 0, int(bad.sum()), {"runs": 2})
