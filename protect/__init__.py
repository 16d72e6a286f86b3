"""Run-time protection on the array: checks on GEMM results and their correction.

The range check of mixed-precision fault-injection studies (:class:`RangeCheck`), and ABFT
schemes as array programs (global, fold-level, replication; :class:`Abft` applies them per
layer, or chooses per layer by arithmetic intensity on the memory-aware timing model).
"""

from .abft import AbftResult, fold_abft, global_abft, replicate
from .range_check import MODES, CheckStats, LayerStats, RangeCheck
from .schemes import (CHECKSUMS, PROTECTING, Abft, AbftLayerStats, SchemeTiming, choose_scheme, run_scheme, scheme_cost,
                      scheme_timing)

__all__ = ["RangeCheck", "CheckStats", "LayerStats", "MODES", "Abft", "AbftLayerStats", "AbftResult", "global_abft",
           "fold_abft", "replicate", "choose_scheme", "run_scheme", "scheme_cost", "scheme_timing", "SchemeTiming",
           "PROTECTING", "CHECKSUMS"]
