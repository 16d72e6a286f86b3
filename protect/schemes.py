"""ABFT on a whole model: a scheme per layer, chosen by name or by arithmetic intensity.

``run_model(model, data, array, protect=Abft("global"))`` runs every lowered layer's GEMM through
a scheme of :mod:`protect.abft`, on the same (possibly faulty) array, and records per layer the
scheme, its detections and corrections, and its cost on the memory-aware timing model
(docs/semantics.md, "ABFT", "Memory and timing"). ``Abft("intensity")`` picks per layer the
scheme with the least time overhead on that model (Kosaian & Rashmi, SC21: memory-bound layers
can afford redundant compute almost for free).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator import gemm_timing, memory_timing, operand_bytes

from .abft import AbftResult, fold_abft, global_abft, replicate
from .digits import n_digits

__all__ = ["Abft", "AbftLayerStats", "SchemeTiming", "scheme_timing", "CHECKSUMS", "scheme_cost", "choose_scheme",
           "run_scheme", "PROTECTING"]

#: The schemes that protect a GEMM (``"none"`` is the baseline).
PROTECTING = ("global", "fold", "replication")
#: Where global ABFT sums its checksums: at the array's ports, or in separate passes over DRAM.
CHECKSUMS = ("array", "host")
_IMPOSSIBLE = 10 ** 18  # the cost of a scheme that does not fit the array
_RUN = {"global": global_abft, "replication": replicate}


def _digits(precision, count: int) -> int:
    """Worst-case checksum digits of a sum of ``count`` operands (1 for floats)."""
    return 1 if precision.output_dtype.kind == "f" else n_digits(128 * count)


@dataclass(frozen=True)
class SchemeTiming:
    """A GEMM under a scheme on the timing model: compute cycles, DRAM bytes, total cycles."""

    compute_cycles: int
    bytes_moved: int  # 0 when the array has no memory side
    total_cycles: int


def _compose(cfg, compute: int, nbytes: int, fill: int) -> SchemeTiming:
    if cfg.memory is None:
        return SchemeTiming(compute, 0, compute)
    return SchemeTiming(compute, nbytes, fill + max(compute, math.ceil(nbytes / cfg.memory.bandwidth)))


def _gemm(cfg, m, k, n):
    """(compute cycles, memory timing or None) of one GEMM."""
    if cfg.memory is None:
        return gemm_timing(cfg, m, k, n).n_cycles, None
    t = memory_timing(cfg, m, k, n)
    return t.compute_cycles, t


def scheme_timing(scheme: str, cfg, m: int, k: int, n: int, checksums: str = "array") -> SchemeTiming:
    """A GEMM under a scheme on ``cfg`` (memory-aware when it has a memory side).

    * ``none``: the GEMM (:func:`simulator.memory_timing`);
    * ``global``: one GEMM of ``m + dx`` input vectors and ``n + dw`` columns (checksum digits),
      its checksum rows and columns moved like data. With ``checksums="array"`` the input
      checksums are summed as ``X`` streams in and the output sums as ``Y`` streams out (adders
      at the array's ports); with ``checksums="host"`` they are separate passes over ``X`` and
      ``Y`` in DRAM before and after the GEMM (as global ABFT's kernels on a GPU), adding
      ``ceil((M K a_bytes + M N o_bytes) / bandwidth)`` cycles;
    * ``fold``: ``ceil(n / (C - d)) * C`` columns of compute; DRAM moves the ``n`` data columns
      and ``d`` checksum columns per fold (no padding);
    * ``replication``: the GEMM and its shifted replica (``n + 1`` columns) in compute; the
      replica of each fold runs from the operands already on chip, so DRAM moves again only
      what the buffers could not hold (inputs streamed per column fold, spilled partial sums).
    """
    if checksums not in CHECKSUMS:
        raise ValueError(f"checksums must be one of {list(CHECKSUMS)}; got {checksums!r}.")
    p = cfg.precision
    if scheme == "none":
        c, t = _gemm(cfg, m, k, n)
        return _compose(cfg, c, t.bytes_moved if t else 0, t.fill_cycles if t else 0)
    if scheme == "global":
        c, t = _gemm(cfg, m + _digits(p, m), k, n + _digits(p, n))
        timing = _compose(cfg, c, t.bytes_moved if t else 0, t.fill_cycles if t else 0)
        if checksums == "array" or t is None:
            return timing
        a_bytes, _, o_bytes = operand_bytes(p)
        passes = m * k * a_bytes + m * n * o_bytes
        return SchemeTiming(c, timing.bytes_moved + passes,
                            timing.total_cycles + math.ceil(passes / cfg.memory.bandwidth))
    if scheme == "fold":
        d = _digits(p, min(n, cfg.cols))
        per = cfg.cols - d
        if per < 1:
            return SchemeTiming(_IMPOSSIBLE, 0, _IMPOSSIBLE)  # no room for data beside the digits
        folds = -(-n // per)
        c, t = _gemm(cfg, m, k, folds * cfg.cols)
        if t is None:
            return _compose(cfg, c, 0, 0)
        real = n + d * folds  # columns that hold data or checksums
        w_bytes = k * real * operand_bytes(p)[1]
        out_bytes = t.output_bytes // (folds * cfg.cols) * real
        return _compose(cfg, c, t.input_bytes + w_bytes + out_bytes, t.fill_cycles)
    if scheme == "replication":
        c1, t1 = _gemm(cfg, m, k, n)
        c2, t2 = _gemm(cfg, m, k, n + 1)
        if t1 is None:
            return _compose(cfg, c1 + c2, 0, 0)
        again = (t2.input_bytes if t2.inputs_refetched else 0) + (t2.output_bytes if t2.outputs_spilled else 0)
        return _compose(cfg, c1 + c2, t1.bytes_moved + again, t1.fill_cycles)
    raise ValueError(f"scheme must be one of {['none', *PROTECTING]} or 'intensity'; got {scheme!r}.")


def scheme_cost(scheme: str, cfg, m: int, k: int, n: int, checksums: str = "array") -> int:
    """Total cycles of a GEMM under a scheme on ``cfg`` (see :func:`scheme_timing`)."""
    return scheme_timing(scheme, cfg, m, k, n, checksums).total_cycles


def choose_scheme(cfg, m: int, k: int, n: int, checksums: str = "array") -> str:
    """The protecting scheme with the least cycles for this GEMM on ``cfg`` (ties: global, fold, replication)."""
    return min(PROTECTING, key=lambda s: scheme_cost(s, cfg, m, k, n, checksums))


@dataclass
class AbftLayerStats:
    scheme: str = "none"
    gemms: int = 0
    detected: int = 0  # GEMMs in which a check failed (first run)
    corrected: int = 0  # outputs corrected
    recomputed: int = 0  # runs repeated because a check failed and nothing was corrected
    unresolved: int = 0  # GEMMs still failing their check after every repeat (returned as they are)
    base_cycles: int = 0  # the unprotected GEMMs, on the timing model
    cycles: int = 0  # the scheme's GEMMs, on the timing model

    @property
    def overhead(self) -> float:
        return self.cycles / self.base_cycles - 1 if self.base_cycles else 0.0


@dataclass
class _Stats:
    layers: dict = field(default_factory=dict)

    def total_overhead(self) -> float:
        base = sum(s.base_cycles for s in self.layers.values())
        return sum(s.cycles for s in self.layers.values()) / base - 1 if base else 0.0


class _Session:
    def __init__(self, abft: Abft):
        self.abft = abft
        self.stats = _Stats()

    def run_gemm(self, name, array, x, w, matmul):
        cfg = array.cfg
        (m, k), n = x.shape, w.shape[1]
        scheme = self.abft.scheme_for(name, cfg, m, k, n)
        st = self.stats.layers.setdefault(name, AbftLayerStats(scheme))
        st.gemms += 1
        st.base_cycles += scheme_cost("none", cfg, m, k, n)
        cost = scheme_cost(scheme, cfg, m, k, n, self.abft.checksums)
        st.cycles += cost
        if scheme == "none":
            return matmul(x, w)
        res = run_scheme(scheme, x, w, matmul, cfg)
        st.detected += int(res.detected)
        for _ in range(self.abft.recompute):
            if not res.detected or _resolved(res):
                break
            st.recomputed += 1
            st.cycles += cost
            res = run_scheme(scheme, x, w, matmul, cfg)  # a transient fault does not come back
        st.corrected += res.corrected
        st.unresolved += int(res.detected and not _resolved(res))
        return res.out


def run_scheme(scheme: str, x, w, run, cfg) -> AbftResult:
    """``X @ W`` under ``scheme`` on an array of configuration ``cfg``, each GEMM through ``run(x, w)``
    (``"none"``: one plain run, never an alarm)."""
    if scheme == "none":
        return AbftResult(run(x, w))
    if scheme == "fold":
        return fold_abft(x, w, run, cfg.precision, cfg.cols)
    return _RUN[scheme](x, w, run, cfg.precision)


def _resolved(res) -> bool:
    """A failed check that its correction accounts for: one failing row, one failing column, fixed."""
    return res.corrected == 1 and res.mismatches == 2


class Abft:
    """ABFT for every lowered layer of a model run.

    Parameters
    ----------
    scheme : str or dict
        ``"global"``, ``"fold"``, ``"replication"``, ``"none"`` or ``"intensity"`` (per layer, the
        protecting scheme with the least cycles on the array's timing model), for every layer;
        or a dict from layer names to those, with ``default`` for the others.
    default : str
        The scheme of layers a dict does not name.
    checksums : {"array", "host"}
        Where global ABFT's checksums are summed, for its cost (:func:`scheme_timing`): at the
        array's ports (default), or in separate passes over DRAM.
    recompute : int
        Recovery: when a check fails and the scheme did not correct the error (fold-level and
        replication never do; global ABFT corrects one wrong output), run the GEMM again, up to
        this many times (each run draws its own transient flips and costs its cycles). A fault
        that survives every repeat is permanent: see ``unresolved`` in the layer's stats.
    """

    def __init__(self, scheme="intensity", default: str = "none", checksums: str = "array", recompute: int = 0):
        if isinstance(recompute, bool) or not isinstance(recompute, int) or recompute < 0:
            raise ValueError(f"recompute must be an int >= 0; got {recompute!r}.")
        self.recompute = recompute
        if checksums not in CHECKSUMS:
            raise ValueError(f"checksums must be one of {list(CHECKSUMS)}; got {checksums!r}.")
        allowed = ("none", *PROTECTING, "intensity")
        names = scheme.values() if isinstance(scheme, dict) else [scheme]
        for s in [*names, default]:
            if s not in allowed:
                raise ValueError(f"ABFT scheme must be one of {list(allowed)}; got {s!r}.")
        self.scheme, self.default, self.checksums = scheme, default, checksums

    def scheme_for(self, name, cfg, m, k, n) -> str:
        s = self.scheme.get(name, self.default) if isinstance(self.scheme, dict) else self.scheme
        return choose_scheme(cfg, m, k, n, self.checksums) if s == "intensity" else s

    def session(self) -> _Session:
        return _Session(self)
