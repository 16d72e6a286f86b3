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
from numba import njit  # one thread: a single pass over memory; threads would only wait on each other

__all__ = ["qmax", "weight_scales", "quantize_weight", "act_scale", "quantize_act", "act_codes", "dequantize"]


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


@njit(cache=True)
def _codes(x, scale, m, out):
    for i in range(x.size):
        v = np.rint(np.float64(x[i]) / scale)  # float64 division, ties to even: as quantize_act
        out[i] = np.int8(min(max(v, -m), m))


def act_codes(x: torch.Tensor, scale: float, bits: int) -> np.ndarray:
    """``quantize_act(x, scale, bits)`` as int8 codes shaped like ``x``, in one pass (same values)."""
    a = x.detach().contiguous().numpy().ravel()
    if a.dtype != np.float32:
        return quantize_act(x, scale, bits).numpy().astype(np.int8)
    out = np.empty(a.size, np.int8)
    _codes(a, float(scale), float(qmax(bits)), out)
    return out.reshape(tuple(x.shape))


@njit(cache=True)
def _dequant(acc, s, b, has_bias, out):
    n = s.size
    for i in range(acc.shape[0]):
        for j in range(n):
            y = np.float32(acc[i, j]) * s[j]
            out[i, j] = y + b[j] if has_bias else y  # no bias: no +0.0 (it would turn -0.0 into +0.0)


def dequantize(acc: np.ndarray, a_scale: float, w_scale: torch.Tensor, bias) -> torch.Tensor:
    """``acc * (a_scale * w_scale[n]) + bias[n]`` in float32 for an int32 accumulator ``(..., N)``:
    the int32 rounded to float32, times the float32 scale, plus the float32 bias (two roundings,
    no fused multiply-add)."""
    s = (a_scale * w_scale).float().reshape(-1).numpy()
    n = acc.shape[-1]
    s = np.broadcast_to(s, (n,)).astype(np.float32)
    b = np.zeros(n, np.float32) if bias is None else bias.detach().float().reshape(-1).numpy()
    flat = np.ascontiguousarray(acc).reshape(-1, n)
    out = np.empty(flat.shape, np.float32)
    _dequant(flat.astype(np.int32, copy=False), s, b, bias is not None, out)
    return torch.from_numpy(out.reshape(acc.shape))
