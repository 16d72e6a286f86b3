"""Simulated layers: drop-in subclasses of the torch layers they replace.

A ``SimLinear`` / ``SimConv2d`` keeps the float parameters (so ``state_dict`` keys still
load) plus its quantized weight operand and calibrated activation scale; its forward
quantizes the input, lowers it to a GEMM, runs the GEMM on the attached
:class:`simulator.SystolicArray`, and dequantizes on the host.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import MappingError
from .lowering import gemm_dims, lower_input, restore_output
from .quant import act_scale, dequantize, quantize_act, quantize_weight

__all__ = ["SimLinear", "SimConv2d", "SIM_LAYERS", "check_finite_input"]


class _SimState:
    """What a simulated layer needs beyond its torch parameters."""

    def __init__(self, layer: nn.Module, amax: float, precision, name: str):
        self.name = name
        self.precision = precision
        self.a_scale = act_scale(amax, precision.act_bits)
        self.w_q, self.w_scale = quantize_weight(layer.weight, precision.weight_bits)
        self.array = None
        self.engine = "fast"
        self.n_cycles = 0  # cycles of every GEMM run since the last reset


def _forward(layer, x: torch.Tensor) -> torch.Tensor:
    st = layer.sim
    if st.array is None:
        raise MappingError("this simulated layer is not attached to an array; use QuantizedModel.on(array).")
    gemm_dims(layer, tuple(x.shape))  # a clear MappingError for inputs that do not fit
    check_finite_input(st.name, x)
    xq = quantize_act(x, st.a_scale, st.precision.act_bits)
    res = st.array.matmul(lower_input(layer, xq), st.w_q, engine=st.engine)
    st.n_cycles += res.n_cycles
    y = dequantize(res.out, st.a_scale, st.w_scale, layer.bias)
    return restore_output(layer, y, tuple(x.shape))


class SimLinear(nn.Linear):
    """``nn.Linear`` computed on a simulated systolic array (int8 GEMM)."""

    sim: _SimState

    def forward(self, x):
        return _forward(self, x)


class SimConv2d(nn.Conv2d):
    """``nn.Conv2d`` (groups=1) computed on a simulated systolic array via im2col."""

    sim: _SimState

    def forward(self, x):
        return _forward(self, x)


#: Which simulated layer replaces which torch layer.
SIM_LAYERS = {nn.Linear: SimLinear, nn.Conv2d: SimConv2d}


def check_finite_input(name: str, x: torch.Tensor) -> None:
    """Refuse an input with NaN: quantization would silently turn it into 0.

    (Infinities are defined: they saturate to the largest code, like any value beyond
    the calibrated range.)
    """
    if torch.isnan(x).any():
        n = int(torch.isnan(x).sum())
        raise MappingError(f"layer {name!r}: its input holds {n} NaN value(s), which int8 cannot represent "
                           "(quantization would turn them into 0); check the model's inputs and host layers.")


def make_sim_layer(layer: nn.Module, amax: float, precision, name: str) -> nn.Module:
    """A simulated copy of ``layer`` named ``name`` in its model (same constructor arguments,
    same state_dict)."""
    bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        new = SimLinear(layer.in_features, layer.out_features, bias=bias)
    else:
        new = SimConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                        padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=bias,
                        padding_mode=layer.padding_mode)
    new.load_state_dict(layer.state_dict())
    new.requires_grad_(False)
    new.sim = _SimState(new, amax, precision, name)
    return new
