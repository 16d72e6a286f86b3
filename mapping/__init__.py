"""DNN -> accelerator: lowering torch layers to GEMMs, int8 quantization, running a model
on a simulated (faulty) chip, per-layer timing, and bypass weight masks."""

from .numerics import check_cpu_numerics, one_thread  # first: it pins torch's CPU code paths

from .bypass import apply_masks, bypass_masks
from .errors import MappingError, UnsupportedLayerError
from .layers import SIM_LAYERS, SimConv2d, SimLinear
from .lowering import gemm_dims
from .model import HOST_LAYERS, N_CALIB, QuantizedModel, RunResult, lowered_layers, quantize, run_model
from .report import LayerReport, format_report, layer_report

__all__ = [
    "run_model",
    "quantize",
    "QuantizedModel",
    "RunResult",
    "layer_report",
    "format_report",
    "LayerReport",
    "bypass_masks",
    "apply_masks",
    "lowered_layers",
    "gemm_dims",
    "SimLinear",
    "SimConv2d",
    "SIM_LAYERS",
    "HOST_LAYERS",
    "N_CALIB",
    "one_thread",
    "check_cpu_numerics",
    "MappingError",
    "UnsupportedLayerError",
]
