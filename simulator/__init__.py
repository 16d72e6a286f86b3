"""Cycle-level weight-stationary systolic-array simulator with per-PE stuck-at faults.

See docs/semantics.md ("The array", "Timing", "Engines") for the normative semantics these engines follow.
"""

from .array import ENGINES, MITIGATIONS, MatmulResult, SystolicArray
from .config import ArrayConfig
from .errors import ConfigError, FaultMaskError, OperandError
from .masks import check_masks, faulty_pes, identity_masks, stuck
from .precision import INT8, SITES, IntPrecision
from .scalesim import ConvParams, Layer, ScaleSimReport, layer_timings, read_config, read_topology, scalesim_report
from .timing import GemmTiming, gemm_timing

__all__ = [
    "ArrayConfig",
    "SystolicArray",
    "MatmulResult",
    "IntPrecision",
    "INT8",
    "SITES",
    "ENGINES",
    "MITIGATIONS",
    "identity_masks",
    "check_masks",
    "faulty_pes",
    "stuck",
    "GemmTiming",
    "gemm_timing",
    "ConvParams",
    "Layer",
    "ScaleSimReport",
    "read_topology",
    "read_config",
    "layer_timings",
    "scalesim_report",
    "ConfigError",
    "OperandError",
    "FaultMaskError",
]
