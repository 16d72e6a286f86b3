"""Run-time protection on the array: checks on GEMM results and their correction.

Today: the range check of mixed-precision fault-injection studies (:class:`RangeCheck`).
ABFT schemes (global, fold-level, replication) join it as array programs.
"""

from .range_check import MODES, CheckStats, LayerStats, RangeCheck

__all__ = ["RangeCheck", "CheckStats", "LayerStats", "MODES"]
