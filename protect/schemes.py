"""ABFT on a whole model: a scheme per layer, chosen by name or by arithmetic intensity.

``run_model(model, data, array, protect=Abft("global"))`` runs every lowered layer's GEMM through
a scheme of :mod:`protect.abft`, on the same (possibly faulty) array, and records per layer the
scheme, its detections and corrections, and its cost on the memory-aware timing model
(docs/semantics.md, "ABFT", "Memory and timing"). ``Abft("intensity")`` picks per layer the
scheme with the least time overhead on that model (Kosaian & Rashmi, SC21: memory-bound layers
can afford redundant compute almost for free).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator import gemm_timing, memory_timing

from .abft import fold_abft, global_abft, replicate
from .digits import n_digits

__all__ = ["Abft", "AbftLayerStats", "scheme_cost", "choose_scheme", "PROTECTING"]

#: The schemes that protect a GEMM (``"none"`` is the baseline).
PROTECTING = ("global", "fold", "replication")
_RUN = {"global": global_abft, "replication": replicate}


def _digits(precision, count: int) -> int:
    """Worst-case checksum digits of a sum of ``count`` operands (1 for floats)."""
    return 1 if precision.output_dtype.kind == "f" else n_digits(128 * count)


def _timing(cfg, m, k, n):
    """Total cycles of a GEMM: memory-aware when the array has a memory side, else compute only."""
    if cfg.memory is None:
        return gemm_timing(cfg, m, k, n).n_cycles
    return memory_timing(cfg, m, k, n).total_cycles


def scheme_cost(scheme: str, cfg, m: int, k: int, n: int) -> int:
    """Cycles of a GEMM under a scheme on ``cfg`` (memory-aware when it has a memory side).

    * ``none``: the GEMM;
    * ``global``: one GEMM of ``m + dx`` input vectors and ``n + dw`` columns (checksum digits);
    * ``fold``: one GEMM of ``ceil(n / (C - d)) * C`` columns;
    * ``replication``: the GEMM (``n + 1`` columns: shifted by one) twice.
    """
    p = cfg.precision
    if scheme == "none":
        return _timing(cfg, m, k, n)
    if scheme == "global":
        return _timing(cfg, m + _digits(p, m), k, n + _digits(p, n))
    if scheme == "fold":
        d = _digits(p, min(n, cfg.cols))
        per = cfg.cols - d
        if per < 1:
            return 10 ** 18  # not possible on this array
        return _timing(cfg, m, k, -(-n // per) * cfg.cols)
    if scheme == "replication":
        return _timing(cfg, m, k, n) + _timing(cfg, m, k, n + 1)
    raise ValueError(f"scheme must be one of {['none', *PROTECTING]} or 'intensity'; got {scheme!r}.")


def choose_scheme(cfg, m: int, k: int, n: int) -> str:
    """The protecting scheme with the least cycles for this GEMM on ``cfg`` (ties: global, fold, replication)."""
    return min(PROTECTING, key=lambda s: scheme_cost(s, cfg, m, k, n))


@dataclass
class AbftLayerStats:
    scheme: str = "none"
    gemms: int = 0
    detected: int = 0  # GEMMs in which a check failed
    corrected: int = 0  # outputs corrected
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
        st.cycles += scheme_cost(scheme, cfg, m, k, n)
        if scheme == "none":
            return matmul(x, w)
        if scheme == "fold":
            res = fold_abft(x, w, matmul, cfg.precision, cfg.cols)
        else:
            res = _RUN[scheme](x, w, matmul, cfg.precision)
        st.detected += int(res.detected)
        st.corrected += res.corrected
        return res.out


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
    """

    def __init__(self, scheme="intensity", default: str = "none"):
        allowed = ("none", *PROTECTING, "intensity")
        names = scheme.values() if isinstance(scheme, dict) else [scheme]
        for s in [*names, default]:
            if s not in allowed:
                raise ValueError(f"ABFT scheme must be one of {list(allowed)}; got {s!r}.")
        self.scheme, self.default = scheme, default

    def scheme_for(self, name, cfg, m, k, n) -> str:
        s = self.scheme.get(name, self.default) if isinstance(self.scheme, dict) else self.scheme
        return choose_scheme(cfg, m, k, n) if s == "intensity" else s

    def session(self) -> _Session:
        return _Session(self)
