"""Cycle-level weight-stationary systolic-array simulator with per-PE stuck-at faults and
transient bit flips, in integer and float precisions.

See docs/semantics.md ("The array", "Precisions", "Transient faults", "Timing", "Engines")
for the normative semantics these engines follow.
"""

from .array import ENGINES, MITIGATIONS, MatmulResult, SystolicArray
from .config import ArrayConfig
from .errors import ConfigError, FaultMaskError, OperandError
from .flips import FLIP_DTYPE, Flip, OutputFlip
from .masks import check_masks, composed_act_masks, faulty_pes, identity_masks, stuck
from .memory import MemoryConfig, MemoryTiming, memory_timing, operand_bytes
from .multipliers import MULTIPLIERS, cell_share, error_metrics, load_table, multiplier, multiplier_table
from .precision import (BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, INT8, SITES, FloatPrecision, IntPrecision,
                        LutPrecision, Precision, precision_by_name, precision_from_dict)
from .scalesim import ConvParams, Layer, ScaleSimReport, layer_timings, read_config, read_topology, scalesim_report
from . import zoo
from .timing import GemmTiming, gemm_timing

__all__ = [
    "ArrayConfig",
    "SystolicArray",
    "MatmulResult",
    "Precision",
    "IntPrecision",
    "FloatPrecision",
    "LutPrecision",
    "multiplier",
    "multiplier_table",
    "MULTIPLIERS",
    "error_metrics",
    "cell_share",
    "load_table",
    "INT8",
    "FP32",
    "FP16",
    "BF16",
    "FP8_E4M3",
    "FP8_E5M2",
    "precision_by_name",
    "precision_from_dict",
    "Flip",
    "OutputFlip",
    "FLIP_DTYPE",
    "SITES",
    "ENGINES",
    "MITIGATIONS",
    "identity_masks",
    "check_masks",
    "faulty_pes",
    "stuck",
    "composed_act_masks",
    "GemmTiming",
    "MemoryConfig",
    "MemoryTiming",
    "memory_timing",
    "operand_bytes",
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
