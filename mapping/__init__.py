"""DNN -> accelerator: lowering any torch model's GEMMs (traced with torch.fx), int8 quantization, running a model
on a simulated (faulty) chip, per-layer timing, and bypass weight masks."""

from .numerics import check_cpu_numerics, one_thread  # first: it pins torch's CPU code paths

from .bypass import apply_masks, bypass_masks
from .errors import MappingError, UnsupportedLayerError
from .actgemm import SimAttention, SimMatmul
from .layers import SIM_LAYERS, SimConv1d, SimConv2d, SimLinear
from .lowering import gemm_dims
from .model import HOST_LAYERS, N_CALIB, QuantizedModel, RunResult, lowered_layers, quantize, run_model
from .report import LayerReport, format_report, layer_report
from .sensitivity import LayerSensitivity, layer_sensitivity

__all__ = [
    "run_model",
    "layer_sensitivity",
    "LayerSensitivity",
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
    "SimConv1d",
    "SimMatmul",
    "SimAttention",
    "SIM_LAYERS",
    "HOST_LAYERS",
    "N_CALIB",
    "one_thread",
    "check_cpu_numerics",
    "MappingError",
    "UnsupportedLayerError",
]
