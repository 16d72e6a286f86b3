"""Run-time protection on the array: checks on GEMM results and their correction.

The range check of mixed-precision fault-injection studies (:class:`RangeCheck`), and ABFT
schemes as array programs (global, fold-level, replication; :class:`Abft` applies them per
layer, or chooses per layer by arithmetic intensity on the memory-aware timing model), and
ApproxABFT (:class:`ApproxAbft`: recover only checksum blocks whose mismatch exceeds a per-layer
threshold, calibrated by fault injection with :func:`calibrate_thresholds`).
"""

from .abft import AbftResult, fold_abft, global_abft, replicate
from .range_check import MODES, CheckStats, LayerStats, RangeCheck
from .schemes import (CHECKSUMS, PROTECTING, Abft, AbftLayerStats, SchemeTiming, choose_scheme, run_scheme, scheme_cost,
                      scheme_timing)
from .approx import APPROX_SCHEMES, ApproxAbft, ApproxLayerStats, ApproxStats, BlockCheck, block_shapes, blocked_abft
from .approx_calibration import LayerCalibration, ThresholdCalibration, calibrate_thresholds, gemm_shapes

__all__ = ["RangeCheck", "CheckStats", "LayerStats", "MODES", "Abft", "AbftLayerStats", "AbftResult", "global_abft",
           "fold_abft", "replicate", "choose_scheme", "run_scheme", "scheme_cost", "scheme_timing", "SchemeTiming",
           "PROTECTING", "CHECKSUMS", "ApproxAbft", "ApproxLayerStats", "ApproxStats", "BlockCheck", "blocked_abft",
           "block_shapes", "APPROX_SCHEMES", "calibrate_thresholds", "ThresholdCalibration", "LayerCalibration",
           "gemm_shapes"]
