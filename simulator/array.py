"""The systolic array: operands in, results and run statistics out."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import numba

from .config import ArrayConfig
from .engines.cycle import run_cycle
from .engines.fast import run_fast
from .engines.replay import many_small
from .errors import ConfigError, OperandError
from .flips import by_fold, check_flips, check_output_flips, xor_patterns
from .masks import faulty_pes, identity_masks, masks_of
from .precision import sext
from .timing import gemm_timing

__all__ = ["SystolicArray", "MatmulResult", "BatchResult", "ENGINES", "MITIGATIONS"]

ENGINES = ("fast", "cycle")
MITIGATIONS = (None, "bypass")
#: Largest trace (cycles x R x C booleans) the cycle engine will record.
MAX_TRACE = 50_000_000
#: Below this much work (MACs, or PE-cycles for the cycle engine) a GEMM runs on one thread: waking
#: Numba's workers costs more than it saves, and on a loaded machine far more (measured: a 4x5x4 GEMM
#: took 49 ms on 2 threads next to two busy processes, 0.07 ms on one).
SMALL_WORK = 1 << 20
#: MACs up to which each GEMM of a batch on a faulty chip is computed PE by PE in one kernel
#: (``matmul_many``): there a GEMM's set-up in the fast engine costs more than its MACs
#: (measured: 294 us for a 17x16x17 GEMM on 32x32 at 1%).
SMALL_GEMM = 1 << 14


@dataclass(frozen=True)
class BatchResult:
    """Outputs ``(G, M, N)`` and total cycles of :meth:`SystolicArray.matmul_many`."""

    out: np.ndarray
    n_cycles: int


@dataclass(frozen=True)
class MatmulResult:
    """Output and statistics of one GEMM on the array.

    Attributes
    ----------
    out : array (M, N)
        ``int32`` for integer precisions, ``float32`` for float ones.
    n_cycles : int
        Cycles of the whole GEMM. The ``cycle`` engine counts them by running; the
        ``fast`` engine states the closed form, which the tests pin to the former.
    fold_cycles : int64 array
        Cycles of each fold in execution order (``for nf: for kf``).
    folds, pe_utilisation, mac_utilisation
        See :class:`simulator.timing.GemmTiming`.
    engine : str
    trace : bool array (n_cycles, R, C) or None
        Which PEs performed a valid MAC in each cycle (``cycle`` engine, ``trace=True``).
    """

    out: np.ndarray
    n_cycles: int
    fold_cycles: np.ndarray
    folds: int
    pe_utilisation: float
    mac_utilisation: float
    engine: str
    trace: np.ndarray | None = field(default=None, repr=False)

    @property
    def cycles(self) -> int:
        """Alias of ``n_cycles``."""
        return self.n_cycles


@contextlib.contextmanager
def _threads(n):
    """Numba on ``n`` threads inside the block (``None``: as set)."""
    if n is None:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(min(n, before))
    try:
        yield
    finally:
        numba.set_num_threads(before)


class SystolicArray:
    """A weight-stationary systolic array, possibly with stuck-at faults.

    Parameters
    ----------
    cfg : ArrayConfig
    faults : object with a ``masks`` attribute, or None
        Per-PE stuck-at masks: an int32 array ``(4, 2, R, C)`` (sites in
        :data:`simulator.SITES` order; AND then OR mask), each sign-extended to its
        site's width. :class:`faults.FaultMap` is the usual provider. ``None`` means
        a fault-free chip.
    mitigation : None or "bypass"
        ``"bypass"`` routes ``psum_in`` and ``a_in`` around every faulty PE.

    Examples
    --------
    >>> import numpy as np
    >>> arr = SystolicArray(ArrayConfig(4, 4))
    >>> x = np.ones((3, 5), np.int8); w = np.ones((5, 2), np.int8)
    >>> res = arr.matmul(x, w)
    >>> res.out.tolist(), res.n_cycles
    ([[5, 5], [5, 5], [5, 5]], 26)
    """

    def __init__(self, cfg: ArrayConfig, faults=None, mitigation: str | None = None):
        if not isinstance(cfg, ArrayConfig):
            raise ConfigError(f"cfg must be an ArrayConfig; got {type(cfg).__name__}.")
        if mitigation not in MITIGATIONS:
            raise ConfigError(f"mitigation must be one of {list(MITIGATIONS)}; got {mitigation!r}.")
        self.cfg = cfg
        self.faults = faults
        self.mitigation = mitigation
        self._masks = identity_masks(cfg) if faults is None else masks_of(cfg, faults)
        self._faulty = faulty_pes(self._masks)

    @property
    def masks(self) -> np.ndarray:
        """The validated ``(4, 2, R, C)`` masks (a copy)."""
        return self._masks.copy()

    @property
    def faulty(self) -> np.ndarray:
        """Bool ``(R, C)``: PEs with any stuck-at fault."""
        return self._faulty.copy()

    def __repr__(self):
        n = int(self._faulty.sum())
        return f"SystolicArray({self.cfg.rows}x{self.cfg.cols}, {n} faulty PEs, mitigation={self.mitigation!r})"

    def matmul(self, x, w, engine: str = "fast", trace: bool = False, flips=None, out_flips=None) -> MatmulResult:
        """Run ``Y = x @ w`` on the array.

        Parameters
        ----------
        x : array (M, K)
            Activations, one row per input vector, in the precision's operand dtype
            (``int8`` for integer precisions; ``float32``, ``float16``,
            ``ml_dtypes.bfloat16``, ``ml_dtypes.float8_e4m3fn``, ``ml_dtypes.float8_e5m2``).
        w : array (K, N)
            Weights, same dtype; K is mapped onto array rows, N onto columns.
        engine : {"fast", "cycle"}
        trace : bool
            Record the per-cycle PE activity (``cycle`` engine only, small runs).
        flips : sequence of ``(cycle, r, c, site, bit)``, or a structured array, optional
            Transient bit flips during this GEMM (docs/semantics.md, "Transient faults");
            :func:`faults.random_flips` draws them at a bit-error rate.
        out_flips : sequence of ``(m, n, bit)``, optional
            Bits of results flipped as they leave the array (after the fold accumulator).

        Returns
        -------
        MatmulResult
        """
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {list(ENGINES)}; got {engine!r}.")
        x, w = self._check_operands(x, w)
        (M, K), N = x.shape, w.shape[1]
        timing = gemm_timing(self.cfg, M, K, N)
        prec = self.cfg.precision
        ev = None if flips is None else check_flips(flips, self.cfg, timing.n_cycles)
        oflips = None if out_flips is None else check_output_flips(out_flips, M, N, prec.widths()[3])
        xp, wp = prec.patterns(x), prec.patterns(w)
        kernels = prec.kernels()
        work = timing.n_cycles * self.cfg.n_pes if engine == "cycle" else M * K * N
        with _threads(1 if work < SMALL_WORK else None):
            out, fold_cycles, n_cycles, tr = self._run(engine, xp, wp, kernels, timing, M, trace, ev, prec)
        if oflips is not None and len(oflips):
            out = out.astype(np.int64, copy=True)
            bits = prec.widths()[3]
            for m, n, bit in oflips:
                out[m, n] = sext(int(out[m, n]) ^ (1 << int(bit)), bits)
        return MatmulResult(
            out=prec.output(out),
            n_cycles=n_cycles,
            fold_cycles=fold_cycles,
            folds=timing.folds,
            pe_utilisation=timing.pe_utilisation,
            mac_utilisation=timing.mac_utilisation,
            engine=engine,
            trace=tr,
        )

    def matmul_many(self, x, w, engine: str = "fast") -> BatchResult:
        """Run ``G`` independent GEMMs ``x[g] @ w[g]`` one after another (each loading its own
        stationary ``w[g]``), as ``G`` calls of :meth:`matmul` would.

        ``x`` is ``(G, M, K)`` and ``w`` ``(G, K, N)``. Where the array's result is the exact
        integer product (an integer precision on a fault-free chip, or with bypass, which
        zeroes the weights on faulty PEs) the fast engine computes all of them in one batched
        product; small GEMMs (at most ``SMALL_GEMM`` MACs each, a transformer's per-head
        products) otherwise go through one kernel that computes every output's chains PE by
        PE; larger ones each run through :meth:`matmul`. Same bits either way (tested).
        """
        if not isinstance(x, np.ndarray) or not isinstance(w, np.ndarray) or x.ndim != 3 or w.ndim != 3 \
                or len(x) != len(w) or len(x) == 0:
            raise OperandError(f"x and w must be 3-D arrays (G, M, K) and (G, K, N) with the same G >= 1; got "
                               f"{getattr(x, 'shape', type(x).__name__)} and {getattr(w, 'shape', type(w).__name__)}.")
        prec = self.cfg.precision
        exact = engine == "fast" and getattr(prec, "blas_exact", False) and \
            (self.mitigation == "bypass" or not self._faulty.any())
        if not exact and (engine != "fast" or x.shape[1] * x.shape[2] * w.shape[2] > SMALL_GEMM):
            runs = [self.matmul(x[g], w[g], engine) for g in range(len(x))]
            return BatchResult(np.stack([r.out for r in runs]), sum(r.n_cycles for r in runs))
        self._check_operands(x[0], w[0])  # dtypes and shapes, as matmul checks them
        prec.check_operand("x", x, 0)
        prec.check_operand("w", w, 1)
        (G, M, K), N = x.shape, w.shape[2]
        n_cycles = G * gemm_timing(self.cfg, M, K, N).n_cycles
        if not exact:  # small GEMMs on a faulty chip: every output's chains in one kernel
            byp = self._faulty if self.mitigation == "bypass" else np.zeros(self.cfg.shape, bool)
            with _threads(1 if G * M * K * N < SMALL_WORK else None):
                out = many_small(prec.kernels(), prec.patterns(x), prec.patterns(w), self._masks, byp)
            return BatchResult(prec.output(out), n_cycles)
        w = w.astype(np.int64)
        if self.mitigation == "bypass" and self._faulty.any():
            R, C = self.cfg.shape
            w = np.where(self._faulty[np.arange(K)[:, None] % R, np.arange(N)[None, :] % C], 0, w)
        out = np.matmul(x.astype(np.float64), w.astype(np.float64))  # exact: |sums| < 2**53
        shift = 64 - prec.acc_bits
        acc = (out.astype(np.int64) << shift) >> shift
        return BatchResult(prec.output(acc), n_cycles)

    def _run(self, engine, xp, wp, kernels, timing, M, trace, ev, prec):
        tr = None
        if engine == "cycle":
            bypass = self._faulty.astype(np.uint8) if self.mitigation == "bypass" else np.zeros(self.cfg.shape, np.uint8)
            if trace:
                size = timing.n_cycles * self.cfg.n_pes
                if size > MAX_TRACE:
                    raise OperandError(
                        f"trace would hold {size:,} entries (cycles x R x C); at most {MAX_TRACE:,} are allowed. "
                        "Trace a smaller GEMM."
                    )
                tr = np.zeros((timing.n_cycles, *self.cfg.shape), np.bool_)
            n_workers = 1 if trace else numba.get_num_threads()  # the engine splits folds, or columns
            events = None if ev is None else by_fold(ev, prec.widths(), self.cfg.fold_cycles(M), timing.folds)
            out, fold_cycles = run_cycle(xp, wp, self._masks, bypass, kernels, n_workers, tr, events)
            n_cycles = int(fold_cycles.sum())
        else:
            if trace:
                raise ConfigError("trace=True needs engine='cycle'; the fast engine does not step cycles.")
            xor = None if ev is None else xor_patterns(ev, prec.widths())
            out = run_fast(xp, wp, self._masks, self.mitigation == "bypass", prec, kernels, ev, xor)
            fold_cycles = np.full(timing.folds, self.cfg.fold_cycles(M), np.int64)
            n_cycles = timing.n_cycles
        return out, fold_cycles, n_cycles, tr

    def _check_operands(self, x, w):
        prec = self.cfg.precision
        for i, (name, a) in enumerate((("x", x), ("w", w))):
            if not isinstance(a, np.ndarray):
                raise OperandError(f"{name} must be a numpy {prec.operand_dtypes[i].name} array; got {type(a).__name__}.")
            if a.ndim != 2:
                raise OperandError(f"{name} must be 2-D; got shape {a.shape}.")
            if 0 in a.shape:
                raise OperandError(f"{name} must not be empty; got shape {a.shape}.")
            prec.check_operand(name, a, i)
        if x.shape[1] != w.shape[0]:
            raise OperandError(f"x is {x.shape} and w is {w.shape}: x.shape[1] must equal w.shape[0].")
        return np.ascontiguousarray(x), np.ascontiguousarray(w)

