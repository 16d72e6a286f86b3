"""Analytic weight-stationary timing, and the same counts for SCALE-Sim topologies.

One fold streams ``T = M`` input vectors and takes ``2R + C + T - 2`` cycles: R cycles
of weight load, R - 1 of input skew, T of streaming and C - 1 of drain. A GEMM runs
``ceil(K/R) * ceil(N/C)`` folds one after another. The ``cycle`` engine reproduces
these counts by running the registers; this module states them in closed form.

SCALE-Sim v3 reports, for the same stall-free WS run, one cycle less per *layer* (not
per fold): its ``total_cycles`` is the 0-based index of the last output cycle, we count
cycles. (Read off scalesim 3.0.0: ``systolic_compute_ws`` makes each fold
``2R + C + T - 2`` lines long, and the memory model reports the index of the last one;
``bench/bench_scalesim.py`` confirms it on real runs.) See :mod:`simulator.scalesim` for
how SCALE-Sim topologies become GEMMs; note SCALE-Sim's output size rule
``ceil((ifmap - filter + stride) / stride)``, which differs from PyTorch's
``(ifmap - filter) // stride + 1`` when ``ifmap - filter`` is not a multiple of the stride.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ArrayConfig
from .errors import OperandError

__all__ = ["GemmTiming", "gemm_timing"]


@dataclass(frozen=True)
class GemmTiming:
    """Cycles and utilisation of one GEMM ``(M x K) @ (K x N)`` on an array.

    Attributes
    ----------
    m, k, n : int
        GEMM shape.
    row_folds, col_folds : int
        ``ceil(K/R)`` and ``ceil(N/C)``.
    n_cycles : int
        ``folds * (2R + C + M - 2)``.
    pe_utilisation : float
        Fraction of PEs holding a real weight, averaged over folds: ``K*N / (folds*R*C)``.
    mac_utilisation : float
        Useful MACs per PE-cycle, fill and drain included: ``M*K*N / (n_cycles*R*C)``.
    """

    m: int
    k: int
    n: int
    row_folds: int
    col_folds: int
    n_cycles: int
    pe_utilisation: float
    mac_utilisation: float

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    @property
    def scalesim_cycles(self) -> int:
        """The number SCALE-Sim v3 reports for this run: one less than ``n_cycles``."""
        return self.n_cycles - 1


def gemm_timing(cfg: ArrayConfig, m: int, k: int, n: int) -> GemmTiming:
    """Closed-form weight-stationary timing of a GEMM on ``cfg``.

    Examples
    --------
    >>> gemm_timing(ArrayConfig(4, 4), m=10, k=6, n=4).n_cycles
    40
    """
    for name, v in (("M", m), ("K", k), ("N", n)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise OperandError(f"GEMM dimension {name} must be a positive int; got {v!r}.")
    kf, nf = cfg.folds(k, n)
    folds = kf * nf
    n_cycles = folds * cfg.fold_cycles(m)
    return GemmTiming(
        m=m,
        k=k,
        n=n,
        row_folds=kf,
        col_folds=nf,
        n_cycles=n_cycles,
        pe_utilisation=k * n / (folds * cfg.n_pes),
        mac_utilisation=m * k * n / (n_cycles * cfg.n_pes),
    )
