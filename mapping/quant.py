"""Symmetric int quantization, as the array consumes it.

* **Weights**: per output channel, symmetric: ``scale_w[n] = max|W[n]| / qmax`` with
  ``qmax = 2**(weight_bits - 1) - 1`` (127 for int8), ``Wq = clamp(round(W / scale_w))``.
* **Activations** (the input of every lowered layer): per tensor, symmetric, with a
  scale **calibrated once** on calibration data, ``scale_a = max|a| / qmax``; inputs beyond
  the calibrated range saturate. A static scale means a sample's result never depends on
  the batch it is run in.
* The array accumulates ``Xq @ Wq`` in int32 (with whatever faults the chip has); the
  host dequantizes, ``y = acc * (scale_a * scale_w[n]) + bias[n]`` in float32 (the
  scale product in float64, then rounded), and hands the result to the next layer (ReLU,
  pooling, ... run on the host in float).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["qmax", "weight_scales", "quantize_weight", "act_scale", "quantize_act", "dequantize"]


def qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def weight_scales(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-output-channel scales (float64, shape ``(out,)``) of a weight tensor."""
    amax = weight.detach().double().reshape(weight.shape[0], -1).abs().amax(dim=1)
    return torch.where(amax > 0, amax / qmax(bits), torch.ones_like(amax))


def quantize_weight(weight: torch.Tensor, bits: int) -> tuple[np.ndarray, torch.Tensor]:
    """``(Wq as int8 (K, N) GEMM operand, scales (N,))`` for a Linear/Conv weight ``(N, ...)``."""
    scale = weight_scales(weight, bits)
    w2 = weight.detach().double().reshape(weight.shape[0], -1)
    q = torch.clamp(torch.round(w2 / scale[:, None]), -qmax(bits), qmax(bits))
    return np.ascontiguousarray(q.to(torch.int8).numpy().T), scale


def act_scale(amax: float, bits: int) -> float:
    """Per-tensor activation scale from a calibrated ``max|a|``."""
    return float(amax) / qmax(bits) if amax > 0 else 1.0


def quantize_act(x: torch.Tensor, scale: float, bits: int) -> torch.Tensor:
    """Integer-valued float tensor ``clamp(round(x / scale))`` (exact small integers)."""
    m = qmax(bits)
    y = x.detach().double()  # a copy: divided, rounded and clamped in place (same bits as out of place)
    return y.div_(scale).round_().clamp_(-m, m)


def dequantize(acc: np.ndarray, a_scale: float, w_scale: torch.Tensor, bias) -> torch.Tensor:
    """``acc * (a_scale * w_scale[n]) + bias[n]`` in float32 for an int32 accumulator ``(..., N)``."""
    y = torch.from_numpy(acc.astype(np.float32))  # int32 -> float32, rounded to nearest as torch would
    y.mul_((a_scale * w_scale).float())
    if bias is not None:
        y.add_(bias.detach().float())
    return y
