"""Simulated layers: drop-in subclasses of the torch layers they replace.

A ``SimLinear`` / ``SimConv2d`` / ``SimConv1d`` keeps the float parameters (so ``state_dict`` keys still
load) plus its weight operand and calibrated activation scale in the array's precision
(:mod:`mapping.codecs`); its forward turns the input into the act operand, lowers it to a
GEMM, runs the GEMM on the attached :class:`simulator.SystolicArray` (with the transient
flips a fault source draws for it, if any), hands the result to a run-time check if one
is attached (e.g. :class:`protect.RangeCheck`), and brings it back to float on the host.
A grouped convolution runs one GEMM per group.

In ``"float"`` mode (calibration, layer reports) a layer computes its float op and records
what it saw: the largest input magnitude and the GEMM shapes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .codecs import codec_for
from .errors import MappingError
from .lowering import gemm_dims, gemm_groups, lower_input, restore_output

__all__ = ["SimLinear", "SimConv2d", "SimConv1d", "SIM_LAYERS", "check_finite_input", "SimState", "run_on_array"]


class SimState:
    """What a simulated op needs beyond its torch parameters: its name, codec, calibrated
    act scale(s), the array it is attached to and what runs with it (flips, guard)."""

    def __init__(self, precision, name: str, amax: float = 0.0):
        self.name = name
        self.precision = precision
        self.codec = codec_for(precision)
        self.a_scale = self.codec.act_scale(amax)
        self.mode = "array"  # or "float": compute in float, record amax and GEMM shapes
        self.amax = [0.0, 0.0]  # in float mode: the largest |input| (and |second operand|) seen
        self.gemms = []  # (m, k, n) of every GEMM since the last reset, in either mode
        self.array = None
        self.engine = "fast"
        self.flips = None  # callable (name, cfg, m, k, n, batch) -> (flips, out_flips) of one GEMM, or None
        self.guard = None  # run-time protection: a callable (name, array, x, w, out) -> out, or an object whose
        # run_gemm(name, array, x, w, matmul) -> out runs the GEMM itself (ABFT), or None
        self.n_cycles = 0  # cycles of every GEMM run since the last reset

    def see(self, *operands) -> None:
        """Float mode: record the operands' largest magnitudes (NaN refused, as on the array)."""
        for i, x in enumerate(operands):
            check_finite_input(self.name, x)
            self.amax[i] = max(self.amax[i], float(x.detach().abs().max()) if x.numel() else 0.0)


def run_on_array(st: SimState, x: np.ndarray, w: np.ndarray, batch: int) -> np.ndarray:
    """One GEMM ``x @ w`` (operand codes) on ``st``'s array, with the flips its source draws
    for it and its run-time check; the result patterns ``(M, N)``."""
    if st.array is None:
        raise MappingError(f"simulated op {st.name!r} is not attached to an array; use QuantizedModel.on(array).")

    def matmul(xx, ww):  # one GEMM on the array, with the flips the source draws for it
        flips, out_flips = (None, None) if st.flips is None else st.flips(st.name, st.array.cfg, *xx.shape,
                                                                         ww.shape[1], batch)
        res = st.array.matmul(xx, ww, engine=st.engine, flips=flips, out_flips=out_flips)
        st.n_cycles += res.n_cycles
        return res.out

    st.gemms.append((x.shape[0], x.shape[1], w.shape[1]))
    if st.guard is not None and hasattr(st.guard, "run_gemm"):  # a scheme that reshapes the GEMM (ABFT)
        return st.guard.run_gemm(st.name, st.array, x, w, matmul)
    out = matmul(x, w)
    return out if st.guard is None else st.guard(st.name, st.array, x, w, out)


def _forward(layer, x: torch.Tensor, float_forward) -> torch.Tensor:
    st = layer.sim
    m, k, n = gemm_dims(layer, tuple(x.shape))  # a clear MappingError for inputs that do not fit
    g = gemm_groups(layer)
    if st.mode == "float":
        st.see(x)
        st.gemms.extend([(m, k, n)] * g)
        return float_forward(layer, x)
    if not st.codec.nan_allowed:
        check_finite_input(st.name, x)
    xo = lower_input(layer, st.codec.act(x, st.a_scale))
    if g == 1:
        out = run_on_array(st, xo, st.w_q, x.shape[0])
    elif st.flips is None and st.guard is None and st.array is not None:  # the groups in one batched call
        xs = np.ascontiguousarray(xo.reshape(m, g, k).transpose(1, 0, 2))
        ws = np.ascontiguousarray(st.w_q.reshape(k, g, n).transpose(1, 0, 2))
        res = st.array.matmul_many(xs, ws, st.engine)
        st.n_cycles += res.n_cycles
        st.gemms.extend([(m, k, n)] * g)
        out = res.out.transpose(1, 0, 2).reshape(m, g * n)
    else:  # one GEMM per group: its input channels' columns, its output channels' weights
        out = np.concatenate([run_on_array(st, np.ascontiguousarray(xo[:, j * k:(j + 1) * k]),
                                           np.ascontiguousarray(st.w_q[:, j * n:(j + 1) * n]), x.shape[0])
                              for j in range(g)], axis=1)
    y = st.codec.result(out, st.a_scale, st.w_scale, layer.bias)
    return restore_output(layer, y, tuple(x.shape))


class SimLinear(nn.Linear):
    """``nn.Linear`` computed on a simulated systolic array (a GEMM in the array's precision)."""

    sim: SimState

    def forward(self, x):
        return _forward(self, x, nn.Linear.forward)


class SimConv2d(nn.Conv2d):
    """``nn.Conv2d`` computed on a simulated systolic array via im2col (a GEMM per group)."""

    sim: SimState

    def forward(self, x):
        return _forward(self, x, nn.Conv2d.forward)


class SimConv1d(nn.Conv1d):
    """``nn.Conv1d`` computed on a simulated systolic array (as a Conv2d of height 1)."""

    sim: SimState

    def forward(self, x):
        return _forward(self, x, nn.Conv1d.forward)


#: Which simulated layer replaces which torch layer.
SIM_LAYERS = {nn.Linear: SimLinear, nn.Conv2d: SimConv2d, nn.Conv1d: SimConv1d}


def check_finite_input(name: str, x: torch.Tensor) -> None:
    """Refuse an input with NaN: quantization would silently turn it into 0.

    (Infinities are defined: they saturate to the largest code, like any value beyond
    the calibrated range.)
    """
    if x.is_floating_point() and torch.isnan(x.sum()) and torch.isnan(x).any():  # one reduction in the common case
        n = int(torch.isnan(x).sum())
        raise MappingError(f"layer {name!r}: its input holds {n} NaN value(s), which int8 cannot represent "
                           "(quantization would turn them into 0); check the model's inputs and host layers.")


def make_sim_layer(layer: nn.Module, amax: float, precision, name: str) -> nn.Module:
    """A simulated copy of ``layer`` named ``name`` in its model (same constructor arguments,
    same state_dict; its type's own float forward for float mode)."""
    bias = layer.bias is not None
    kind = next(k for k in SIM_LAYERS if isinstance(layer, k))
    if kind is nn.Linear:
        new = SimLinear(layer.in_features, layer.out_features, bias=bias)
    else:
        new = SIM_LAYERS[kind](layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                               padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=bias,
                               padding_mode=layer.padding_mode)
    new.load_state_dict(layer.state_dict())
    new.requires_grad_(False)
    new.sim = SimState(precision, name, amax)
    new.sim.w_q, new.sim.w_scale = new.sim.codec.weight(new.weight)
    return new
