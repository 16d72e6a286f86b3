"""ApproxABFT: recover only the checksum blocks whose mismatch is large (docs/semantics.md,
"ApproxABFT, as this project implements it").

Xue et al., "ApproxABFT: Approximate Algorithm-Based Fault Tolerance for Vision Transformers"
(2023): classic ABFT recomputes a GEMM on any checksum mismatch, but most errors a soft error
leaves are too small to change a prediction. ApproxABFT measures how large the mismatch is and
recomputes only when it exceeds the layer's threshold.

* **Blocks.** A GEMM ``Y = X @ W`` (``M x N``) is split into checksum blocks of ``rows`` input
  vectors x ``cols`` output columns (the last ones smaller); ``block=None`` is one block, the
  whole GEMM. Every block gets global ABFT's checksums (:mod:`protect.abft`): the digits of
  ``W_j 1`` as extra columns of ``W`` and of ``1^T X_i`` as extra rows of ``X``, all in ONE run
  of ``[X; ck_X] @ [W, ck_W]`` on the same array (exact for integers; floats within
  :func:`protect.abft.float_tolerance` of the block). One block is exactly :func:`global_abft`.
* **Mismatch magnitude** of a block: the largest ``|row sum - row checksum|`` over its rows and
  ``|column sum - column checksum|`` over its columns, only checks that fail counting (0 when
  every check passes; integers: the difference wrapped to the accumulator, in accumulator LSBs;
  floats: in output units, beyond the tolerance, non-finite = inf). Raw GEMM units: the guard
  never sees a layer's scales, and the thresholds are per layer anyway.
* **Recovery**: the blocks whose magnitude exceeds the layer's threshold are recomputed on the
  array through the layer's ``matmul`` (drawing their own transient flips; a stuck-at fault hits
  them again): one run per column block, of that column block's weights and the input vectors of
  its blocks to recover, each block with its own checksums, so it is checked again; up to
  ``recompute`` rounds while a block still exceeds the threshold; the last run's outputs are kept.
  Threshold 0 recovers on any mismatch (classic ABFT with recomputation), ``inf`` never
  (detection only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from mapping import MappingError

from .abft import _combine, _is_float, _wrap, float_tolerance, tolerance_factor
from .digits import n_digits, to_digits
from .schemes import _digits, scheme_cost

__all__ = ["ApproxAbft", "ApproxLayerStats", "ApproxStats", "BlockCheck", "blocked_abft", "block_shapes",
           "APPROX_SCHEMES"]

#: The checksum schemes ApproxABFT checks its blocks with.
APPROX_SCHEMES = ("global",)


@dataclass
class BlockCheck:
    """One checked run of a GEMM: the outputs and, per block, what its checks saw."""

    out: np.ndarray
    rows: np.ndarray  # first input vector of each row block
    cols: np.ndarray  # first output column of each column block
    magnitude: np.ndarray  # (row blocks, column blocks): mismatch magnitude, 0 where every check passes
    failing: np.ndarray  # (row blocks, column blocks): failed row and column checks
    corrected: np.ndarray  # (row blocks, column blocks) bool: a single located error fixed on the host

    def span(self, i, j):
        """``(r0, r1, c0, c1)`` of block ``(i, j)``."""
        r1 = self.rows[i + 1] if i + 1 < len(self.rows) else self.out.shape[0]
        c1 = self.cols[j + 1] if j + 1 < len(self.cols) else self.out.shape[1]
        return int(self.rows[i]), int(r1), int(self.cols[j]), int(c1)


def _block_sum(a, starts, axis):
    """Sums of ``a`` over the blocks starting at ``starts`` along ``axis`` (one block: ``a.sum``)."""
    if len(starts) == 1:
        return a.sum(axis=axis, keepdims=True)
    return np.add.reduceat(a, starts, axis=axis)


def _sizes(starts, total):
    return np.diff(np.append(starts, total))


def _checksum_operands(x, w, rs, cs, precision):
    """Column-checksum rows ``(len(rs) * dx, K)`` and row-checksum columns ``(K, len(cs) * dw)``,
    block by block, the digits of a block together (one block: global ABFT's operands)."""
    if _is_float(precision):
        dt = precision.operand_dtypes[0]
        with np.errstate(over="ignore", invalid="ignore"):  # beyond the format: inf, and the check fails
            xr = _block_sum(x.astype(np.float64), rs, 0).astype(dt)
            wc = _block_sum(w.astype(np.float64), cs, 1).astype(dt)
        return xr, 1, wc, 1
    sx, sw = _block_sum(x.astype(np.int64), rs, 0), _block_sum(w.astype(np.int64), cs, 1)
    dx, dw = n_digits(int(np.abs(sx).max(initial=0))), n_digits(int(np.abs(sw).max(initial=0)))
    xr = to_digits(sx, dx).transpose(1, 0, 2).reshape(len(rs) * dx, x.shape[1])
    wc = to_digits(sw, dw).transpose(1, 2, 0).reshape(w.shape[0], len(cs) * dw)
    return xr, dx, wc, dw


def _starts(block, m, n):
    br, bc = (m, n) if block is None else (min(block[0], m), min(block[1], n))
    return np.arange(0, m, max(br, 1)), np.arange(0, n, max(bc, 1))


def blocked_abft(x, w, run, precision, block=None, correct_above=None) -> BlockCheck:
    """``X @ W`` in one array run ``run(x, w)`` with the checksums of every block (see the module).

    ``block``: ``(rows, cols)`` or None (the whole GEMM). ``correct_above``: if not None, a block
    whose magnitude exceeds it and whose failed checks are one row and one column (a single
    located error) gets that output replaced by the row checksum less the block row's other
    outputs, as :func:`protect.abft.global_abft` does.
    """
    return _checked(x, w, run, precision, *_starts(block, x.shape[0], w.shape[1]), correct_above)


def _checked(x, w, run, precision, rs, cs, correct_above) -> BlockCheck:
    """:func:`blocked_abft` with the blocks' first rows ``rs`` and first columns ``cs``."""
    M, K = x.shape
    N = w.shape[1]
    xr, dx, wc, dw = _checksum_operands(x, w, rs, cs, precision)
    y_aug = run(np.concatenate([x, xr]), np.concatenate([w, wc], axis=1))
    y = y_aug[:M, :N].copy()
    row_ck = _combine(y_aug[:M, N:].reshape(M, len(cs), dw), precision, axis=2)  # (M, col blocks)
    col_ck = _combine(y_aug[M:, :N].reshape(len(rs), dx, N), precision, axis=1)  # (row blocks, N)
    with np.errstate(invalid="ignore", over="ignore"):  # float sums of inf and -inf: NaN, a failed check
        return _judge(x, w, y, row_ck, col_ck, precision, rs, cs, correct_above)


def _judge(x, w, y, row_ck, col_ck, precision, rs, cs, correct_above) -> BlockCheck:
    M, K = x.shape
    N = w.shape[1]
    is_f = _is_float(precision)
    acc = y.astype(np.float64 if is_f else np.int64)
    row_sum = _wrap(_block_sum(acc, cs, 1), precision)
    col_sum = _wrap(_block_sum(acc, rs, 0), precision)
    if is_f:
        nr, nc = _sizes(rs, M), _sizes(cs, N)
        if len(cs) == 1:
            tol_r = float_tolerance(x, w, precision)[:, None]
        else:
            tol_r = np.abs(x.astype(np.float64)) @ _block_sum(np.abs(w.astype(np.float64)), cs, 1)
            tol_r *= tolerance_factor(K, nc, precision)[None, :]
        if len(rs) == 1:
            tol_c = float_tolerance(w.T, x.T, precision)[None, :]
        else:
            tol_c = _block_sum(np.abs(x.astype(np.float64)), rs, 0) @ np.abs(w.astype(np.float64))
            tol_c *= tolerance_factor(K, nr, precision)[:, None]
        dr, dc = np.abs(row_sum - row_ck), np.abs(col_sum - col_ck)
        bad_r, bad_c = ~(dr <= tol_r), ~(dc <= tol_c)
        mag_r = np.where(bad_r, np.where(np.isnan(dr), np.inf, dr), 0.0)  # non-finite: inf
        mag_c = np.where(bad_c, np.where(np.isnan(dc), np.inf, dc), 0.0)
    else:
        mag_r = np.abs(_wrap(row_sum - row_ck, precision)).astype(np.float64)
        mag_c = np.abs(_wrap(col_sum - col_ck, precision)).astype(np.float64)
        bad_r, bad_c = mag_r > 0, mag_c > 0
    magnitude = np.maximum(np.maximum.reduceat(mag_r, rs, axis=0), np.maximum.reduceat(mag_c, cs, axis=1))
    n_bad_r, n_bad_c = _block_sum(bad_r.astype(np.int64), rs, 0), _block_sum(bad_c.astype(np.int64), cs, 1)
    res = BlockCheck(y, rs, cs, magnitude, n_bad_r + n_bad_c, np.zeros(magnitude.shape, bool))
    if correct_above is None:
        return res
    for i, j in zip(*np.nonzero((n_bad_r == 1) & (n_bad_c == 1) & (magnitude > correct_above))):
        r0, r1, c0, c1 = res.span(i, j)
        m = r0 + int(np.argmax(bad_r[r0:r1, j]))
        n = c0 + int(np.argmax(bad_c[i, c0:c1]))
        others = np.delete(y[m, c0:c1], n - c0).astype(np.float64 if is_f else np.int64).sum()
        fix = row_ck[m, j] - others  # the checksum less the block row's other outputs
        if is_f:
            y[m, n] = np.float32(fix) if np.isfinite(fix) else y[m, n]
        else:
            y[m, n] = _wrap(fix, precision)
        res.corrected[i, j] = True
    return res


def _checked_cost(cfg, row_sizes, k, col_sizes) -> int:
    """Cycles of one array run of blocks of these row and column sizes with their checksums: the GEMM
    of ``sum_i (rows_i + dx_i)`` input vectors and ``sum_j (cols_j + dw_j)`` columns, worst-case
    digits ``dx_i = n_digits(128 rows_i)``, ``dw_j = n_digits(128 cols_j)`` (1 for floats)."""
    p = cfg.precision
    m = sum(int(s) + _digits(p, int(s)) for s in row_sizes)
    n = sum(int(s) + _digits(p, int(s)) for s in col_sizes)
    return scheme_cost("none", cfg, m, int(k), n)


def checksum_cost(cfg, m, k, n, block=None) -> tuple[int, int]:
    """``(base cycles, checksum cycles)`` of an ``(m, k, n)`` GEMM with ``block``'s checksums on the
    timing model (:func:`protect.scheme_cost`, memory-aware when ``cfg`` has a memory side): the
    checked run (:func:`_checked_cost`) less the plain GEMM. One block: global ABFT's cost."""
    m, k, n = int(m), int(k), int(n)
    rs, cs = _starts(block, m, n)
    base = scheme_cost("none", cfg, m, k, n)
    return base, _checked_cost(cfg, _sizes(rs, m), k, _sizes(cs, n)) - base


def block_shapes(gemms, target_macs) -> dict:
    """Per layer a block of about ``target_macs`` multiply-accumulates: ``{name: (rows, cols)}``.

    ``gemms``: ``{name: (k, n)}`` or ``{name: (m, k, n)}`` (``m`` is not used: blocks do not depend on
    the batch). A block of ``rows`` input vectors x ``cols`` columns does ``rows * cols * k`` MACs;
    with ``o = max(1, round(target_macs / k))`` outputs per block, as square as the layer allows:
    ``cols = min(n, max(1, round(sqrt(o))))`` and ``rows = max(1, round(o / cols))`` (a block's
    checksums cost about ``dx / rows + dw / cols`` of its cycles, least for a square block).
    """
    if isinstance(target_macs, bool) or not isinstance(target_macs, Real) or not 0 < target_macs < math.inf:
        raise ValueError(f"target_macs must be a number > 0 (multiply-accumulates per block); got {target_macs!r}.")
    out = {}
    for name, shape in gemms.items():
        k, n = int(shape[-2]), int(shape[-1])
        o = max(1, round(target_macs / max(k, 1)))
        cols = min(n, max(1, round(math.sqrt(o))))
        out[name] = (max(1, round(o / cols)), cols)
    return out


def _check_threshold(t, where):
    if isinstance(t, bool) or not isinstance(t, Real) or math.isnan(t) or t < 0:
        raise ValueError(f"{where} must be a number >= 0 (0: recover on any mismatch, inf: never recover); "
                         f"got {t!r}.")
    return float(t)


def _check_block(b, where):
    if b is None:
        return None
    if (not isinstance(b, (tuple, list)) or len(b) != 2
            or any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1 for v in b)):
        raise ValueError(f"{where} must be None (the whole GEMM) or (rows, cols), two positive ints "
                         f"(input vectors x output columns per block); got {b!r}.")
    return int(b[0]), int(b[1])


@dataclass
class ApproxLayerStats:
    """What ApproxABFT did in one layer's GEMMs (cycles on the timing model, :func:`checksum_cost`)."""

    threshold: float = 0.0
    block: tuple | None = None  # (rows, cols) per block, or None: the whole GEMM
    gemms: int = 0
    blocks: int = 0
    mismatched: int = 0  # blocks with a failed check (first run)
    tolerated: int = 0  # mismatched blocks at or below the threshold: left as they are
    corrected: int = 0  # blocks whose single located error was fixed on the host (correct=True)
    recovered: int = 0  # blocks above the threshold (first run), recomputed
    recomputed: int = 0  # recovery runs on the array (one per column block with blocks to recompute, per round)
    unresolved: int = 0  # blocks still above the threshold after every recomputation
    base_cycles: int = 0  # the unprotected GEMMs
    checksum_cycles: int = 0  # the checksums' extra rows and columns
    recovery_cycles: int = 0  # the recomputations (each block with its checksums)
    magnitudes: list = field(default_factory=list, repr=False)  # session(record=True): of every mismatched block

    @property
    def cycles(self) -> int:
        return self.base_cycles + self.checksum_cycles + self.recovery_cycles

    @property
    def overhead(self) -> float:
        """``(checksum + recovery cycles) / base cycles``."""
        return (self.checksum_cycles + self.recovery_cycles) / self.base_cycles if self.base_cycles else 0.0


_COUNTS = ("gemms", "blocks", "mismatched", "tolerated", "corrected", "recovered", "recomputed", "unresolved",
           "base_cycles", "checksum_cycles", "recovery_cycles")


@dataclass
class ApproxStats:
    """Per-layer :class:`ApproxLayerStats` of one run (``RunResult.protection``)."""

    layers: dict = field(default_factory=dict)

    def total(self) -> ApproxLayerStats:
        t = ApproxLayerStats(threshold=float("nan"))
        for s in self.layers.values():
            for k in _COUNTS:
                setattr(t, k, getattr(t, k) + getattr(s, k))
        return t

    def total_overhead(self) -> float:
        return self.total().overhead


class _Session:
    def __init__(self, approx: ApproxAbft, record: bool = False, recover=None):
        self.approx, self.record, self.recover = approx, record, recover
        self.stats = ApproxStats()

    def run_gemm(self, name, array, x, w, matmul):
        a = self.approx
        cfg, p = array.cfg, array.cfg.precision
        (m, k), n = x.shape, w.shape[1]
        thr, block = a.threshold_for(name), a.block_for(name)
        st = self.stats.layers.setdefault(name, ApproxLayerStats(thr, block))
        base, ck = checksum_cost(cfg, m, k, n, block)
        st.gemms += 1
        st.base_cycles += base
        st.checksum_cycles += ck
        above = thr if a.correct else None
        res = blocked_abft(x, w, matmul, p, block, above)
        bad = res.failing > 0
        st.blocks += bad.size
        st.mismatched += int(bad.sum())
        st.tolerated += int((bad & ~(res.magnitude > thr)).sum())
        st.corrected += int(res.corrected.sum())
        if self.record:
            st.magnitudes.extend(res.magnitude[bad].tolist())
        pending = (res.magnitude > thr) & ~res.corrected
        st.recovered += int(pending.sum())
        rerun = matmul if self.recover is None else self.recover
        for _ in range(a.recompute):
            for j in np.nonzero(pending.any(axis=0))[0]:  # one run per column block, in order
                blocks = np.nonzero(pending[:, j])[0]
                spans = [res.span(i, j) for i in blocks]
                sizes = np.array([r1 - r0 for r0, r1, _, _ in spans])
                rows = np.concatenate([np.arange(r0, r1) for r0, r1, _, _ in spans])
                c0, c1 = spans[0][2:]
                again = _checked(x[rows], w[:, c0:c1], rerun, p, np.cumsum(sizes) - sizes, np.zeros(1, np.int64),
                                 above)
                res.out[rows, c0:c1] = again.out
                st.recomputed += 1
                st.recovery_cycles += _checked_cost(cfg, sizes, k, [c1 - c0])
                st.corrected += int(again.corrected.sum())
                pending[blocks, j] = (again.magnitude[:, 0] > thr) & ~again.corrected[:, 0]
        st.unresolved += int(pending.sum())
        return res.out


class ApproxAbft:
    """ApproxABFT for every GEMM of a model run: ``run_model(..., protect=ApproxAbft(...))``.

    Parameters
    ----------
    thresholds : None, number or dict
        Per layer, the mismatch magnitude above which a block is recovered (raw GEMM units, see
        the module): one number for every layer, or ``{layer name: number}`` (others:
        ``default_threshold``). 0 recovers on any mismatch (classic ABFT), ``math.inf`` never.
    block : None, (rows, cols) or dict
        Checksum blocks: None (the whole GEMM), one shape for every layer, or ``{layer name: shape
        or None}`` (others: the whole GEMM), e.g. from :func:`block_shapes`.
    scheme : {"global"}
        The checks of a block (global ABFT's row and column checksums).
    default_threshold : number
    recompute : int
        Recomputations of a block while it still exceeds its threshold (default 1).
    correct : bool
        Fix a block above the threshold whose failed checks locate a single error on the host
        instead of recomputing it (global ABFT's correction; default False: recompute).
    layers : iterable of str, optional
        The model's layer names (e.g. ``calibrate_thresholds(...).layers``); when given, a
        ``thresholds`` or ``block`` dict naming another layer is refused.
    """

    def __init__(self, thresholds=None, block=None, scheme: str = "global", default_threshold: float = 0.0,
                 recompute: int = 1, correct: bool = False, layers=None):
        if scheme not in APPROX_SCHEMES:
            raise ValueError(f"scheme must be one of {list(APPROX_SCHEMES)} (the checks of each block); "
                             f"got {scheme!r}.")
        if isinstance(recompute, bool) or not isinstance(recompute, Integral) or recompute < 0:
            raise ValueError(f"recompute must be an int >= 0; got {recompute!r}.")
        self.scheme, self.recompute, self.correct = scheme, int(recompute), bool(correct)
        self.default_threshold = _check_threshold(default_threshold, "default_threshold")
        if isinstance(thresholds, dict):
            self.thresholds = {n: _check_threshold(t, f"threshold of layer {n!r}") for n, t in thresholds.items()}
        else:
            self.thresholds = {}
            if thresholds is not None:
                self.default_threshold = _check_threshold(thresholds, "thresholds")
        if isinstance(block, dict):
            self.blocks = {n: _check_block(b, f"block of layer {n!r}") for n, b in block.items()}
            self.default_block = None
        else:
            self.blocks, self.default_block = {}, _check_block(block, "block")
        self.layers = None if layers is None else tuple(layers)
        if self.layers is not None:
            self.check_layers(self.layers)

    def check_layers(self, names) -> None:
        """Refuse a ``thresholds`` or ``block`` dict entry for a layer not in ``names``."""
        names = list(names)
        for what, d in (("thresholds", self.thresholds), ("block", self.blocks)):
            for n in d:
                if n not in names:
                    raise MappingError(f"{what} names layer {n!r}, which the model does not have; its layers: "
                                       f"{', '.join(map(repr, names))}.")

    def threshold_for(self, name) -> float:
        return self.thresholds.get(name, self.default_threshold)

    def block_for(self, name):
        return self.blocks.get(name, self.default_block)

    def session(self, record: bool = False, recover=None) -> _Session:
        """A guard for one run. ``record``: keep every mismatched block's magnitude in the layer's
        stats. ``recover``: a ``run(x, w)`` for recomputations instead of the layer's ``matmul``
        (calibration: a fault-free array, so recovery is ideal and draws no flips)."""
        return _Session(self, record, recover)
