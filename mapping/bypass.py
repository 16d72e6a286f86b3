"""Fault maps -> per-layer weight masks of bypass (fault-aware pruning, FAP).

With bypass, the array behaves as the fault-free array with every weight mapped onto a
faulty PE set to zero; weight ``W[k, n]`` of a lowered layer sits on PE
``(k mod R, n mod C)`` (see :mod:`mapping.lowering` for K and N of each layer type). The
masks below are exactly those zeros, in the layout of each layer's ``weight`` tensor:
the bridge to fault-aware training, which holds them at zero.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .errors import MappingError
from .model import lowered_layers

__all__ = ["bypass_masks", "apply_masks"]


def _pe_index(layer: nn.Module):
    """``(k, n)`` GEMM indices of every element of the layer's weight tensor (``n`` within
    its group for a grouped conv)."""
    w = layer.weight
    per_group = w.shape[0] // getattr(layer, "groups", 1)
    n = np.broadcast_to((np.arange(w.shape[0]) % per_group).reshape(-1, *([1] * (w.dim() - 1))), w.shape)
    k = np.broadcast_to(np.arange(int(np.prod(w.shape[1:]))).reshape(1, *w.shape[1:]), w.shape)
    return k, n


def bypass_masks(model: nn.Module, fault_map) -> dict[str, torch.Tensor]:
    """Bool masks, True where bypass zeroes the weight, by layer name, shaped like each weight.

    Parameters
    ----------
    model : nn.Module or QuantizedModel
        The float model (its Linear/Conv layers), or a QuantizedModel (every op it runs on
        the array; for a product of two activations, whose stationary operand is no weight,
        the mask is the faulty-PE map ``(R, C)`` itself).
    fault_map : faults.FaultMap
        The chip; only which PEs are faulty matters.
    """
    faulty = getattr(fault_map, "faulty", None)
    if not isinstance(faulty, np.ndarray) or faulty.ndim != 2:
        raise MappingError(f"fault_map must be a faults.FaultMap; got {type(fault_map).__name__}.")
    R, C = faulty.shape
    out = {}
    layers = model.layers if hasattr(model, "weight_layers") else lowered_layers(model)
    for name, layer in layers:
        if not hasattr(layer, "weight"):  # a product of two activations
            out[name] = torch.from_numpy(faulty.copy())
            continue
        k, n = _pe_index(layer)
        out[name] = torch.from_numpy(faulty[k % R, n % C].copy())
    return out


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Zero, in place, every weight where its mask is True; returns the model."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, mask in masks.items():
            if name not in modules:
                raise MappingError(f"mask for {name!r}, which is not a layer of this model.")
            w = modules[name].weight
            if tuple(mask.shape) != tuple(w.shape):
                raise MappingError(f"mask for {name!r} has shape {tuple(mask.shape)}; the weight is {tuple(w.shape)}.")
            w.masked_fill_(mask.to(w.device), 0.0)
    return model
