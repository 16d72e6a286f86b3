"""Approximation-aware fine-tuning: training a model through an approximate multiplier.

A model quantized onto an array with an approximate multiplier loses accuracy to the
multiplier's error. Fine-tuning with the error in the forward pass lets the weights adapt
to it. Every Linear/Conv2d layer's forward returns, in value, exactly what the layer
computes on a fault-free array of ``precision`` (int8 quantization with the act scale
calibrated once and the weights' scales from the current weights, the GEMM through the
multiplier's table, dequantization), and, in gradient, the float layer's: the
straight-through estimator ``y = y_array + (y_float - y_float.detach())`` of the
quantization and the table's error together. The rest is :func:`training.train`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mapping import N_CALIB, quantize
from mapping.codecs import codec_for
from mapping.lowering import LOWERED, gemm_dims, lower_input, restore_output
from simulator import ArrayConfig, SystolicArray

from .baseline import DEFAULT_LR, train

__all__ = ["approx_finetune"]


def _hook(name, codec, a_scale, array):
    def forward_hook(module, inputs, output):
        x = inputs[0]
        gemm_dims(module, tuple(x.shape))
        w_q, w_scale = codec.weight(module.weight)
        xo = lower_input(module, codec.act(x, a_scale))
        out = array.matmul(xo, w_q).out
        y = codec.result(out, a_scale, w_scale, module.bias)
        y = restore_output(module, y, tuple(x.shape)).to(output.dtype)
        return y.detach() + (output - output.detach())  # the array's value exactly, the float layer's gradient

    return forward_hook


def approx_finetune(model: nn.Module, data, precision, epochs: float = 1.0, seed: int = 0, lr: float = DEFAULT_LR / 3,
                    rows: int = 16, cols: int = 16, progress: bool = False) -> nn.Module:
    """A copy of ``model`` fine-tuned for ``epochs`` with ``precision``'s products in its forward pass.

    Parameters
    ----------
    model : nn.Module
        The pretrained float model (not modified).
    data : training.Dataset
    precision : simulator precision of the array (a :class:`simulator.LutPrecision`, or any
        integer precision)
    epochs, seed, lr
        As for :func:`training.train` (a smaller learning rate than from scratch).
    rows, cols : int
        The fault-free array the forward pass runs on (the result does not depend on it).
    """
    m = copy.deepcopy(model)
    qm = quantize(m, data.x_train[:N_CALIB], precision)  # the act scales, calibrated once
    codec = codec_for(precision)
    array = SystolicArray(ArrayConfig(rows, cols, precision))
    handles = []
    for name, module in m.named_modules():
        if isinstance(module, LOWERED):
            a_scale = codec.act_scale(qm.act_amax[name])
            handles.append(module.register_forward_hook(_hook(name, codec, a_scale, array)))
    try:
        train(m, data, epochs=epochs, lr=lr, seed=seed, progress=progress)
    finally:
        for h in handles:
            h.remove()
    return m.eval()
