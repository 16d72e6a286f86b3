"""Simulated layers: drop-in subclasses of the torch layers they replace.

A ``SimLinear`` / ``SimConv2d`` keeps the float parameters (so ``state_dict`` keys still
load) plus its weight operand and calibrated activation scale in the array's precision
(:mod:`mapping.codecs`); its forward turns the input into the act operand, lowers it to a
GEMM, runs the GEMM on the attached :class:`simulator.SystolicArray` (with the transient
flips a fault source draws for it, if any), hands the result to a run-time check if one
is attached (e.g. :class:`protect.RangeCheck`), and brings it back to float on the host.
"""

from __future__ import annotations

import torch
from torch import nn

from .codecs import codec_for
from .errors import MappingError
from .lowering import gemm_dims, lower_input, restore_output

__all__ = ["SimLinear", "SimConv2d", "SIM_LAYERS", "check_finite_input"]


class _SimState:
    """What a simulated layer needs beyond its torch parameters."""

    def __init__(self, layer: nn.Module, amax: float, precision, name: str):
        self.name = name
        self.precision = precision
        self.codec = codec_for(precision)
        self.a_scale = self.codec.act_scale(amax)
        self.w_q, self.w_scale = self.codec.weight(layer.weight)
        self.array = None
        self.engine = "fast"
        self.flips = None  # callable (name, cfg, m, k, n, batch) -> (flips, out_flips) of one GEMM, or None
        self.guard = None  # run-time protection: a callable (name, array, x, w, out) -> out, or an object whose
        # run_gemm(name, array, x, w, matmul) -> out runs the GEMM itself (ABFT), or None
        self.n_cycles = 0  # cycles of every GEMM run since the last reset


def _forward(layer, x: torch.Tensor) -> torch.Tensor:
    st = layer.sim
    if st.array is None:
        raise MappingError("this simulated layer is not attached to an array; use QuantizedModel.on(array).")
    m, k, n = gemm_dims(layer, tuple(x.shape))  # a clear MappingError for inputs that do not fit
    if not st.codec.nan_allowed:
        check_finite_input(st.name, x)
    xo = lower_input(layer, st.codec.act(x, st.a_scale))
    batch = x.shape[0]

    def matmul(xx, ww):  # one GEMM on the array, with the flips the source draws for it
        flips, out_flips = (None, None) if st.flips is None else st.flips(st.name, st.array.cfg, *xx.shape,
                                                                         ww.shape[1], batch)
        res = st.array.matmul(xx, ww, engine=st.engine, flips=flips, out_flips=out_flips)
        st.n_cycles += res.n_cycles
        return res.out

    if st.guard is not None and hasattr(st.guard, "run_gemm"):  # a scheme that reshapes the GEMM (ABFT)
        out = st.guard.run_gemm(st.name, st.array, xo, st.w_q, matmul)
    else:
        out = matmul(xo, st.w_q)
        if st.guard is not None:
            out = st.guard(st.name, st.array, xo, st.w_q, out)
    y = st.codec.result(out, st.a_scale, st.w_scale, layer.bias)
    return restore_output(layer, y, tuple(x.shape))


class SimLinear(nn.Linear):
    """``nn.Linear`` computed on a simulated systolic array (a GEMM in the array's precision)."""

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
