"""How a layer's float tensors become the array's operands and come back: one codec per
kind of precision.

* **Integer and LUT precisions** (:class:`IntCodec`): symmetric quantization (:mod:`mapping.quant`):
  per-channel weight scales, one calibrated activation scale per layer, int32 results
  dequantized on the host.
* **Float precisions** (:class:`FloatCodec`): operands are the float values rounded to the
  operand format (round to nearest even), products and sums in FP32 on the array, the
  float32 result used as it is. FP32, FP16 and BF16 take values unscaled (their range
  covers a DNN's); the FP8 formats, whose range does not (E4M3's largest value is 448),
  are scaled as FP8 inference does: per output channel for weights and per tensor
  (calibrated) for activations, to the format's largest finite value, and saturated there
  (a cast to E4M3 would otherwise turn an overflow into NaN).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import torch

from simulator import FloatPrecision, IntPrecision, LutPrecision

from .errors import MappingError
from .quant import act_codes, act_scale, dequantize, quantize_weight

__all__ = ["codec_for", "IntCodec", "FloatCodec", "CODECS"]


class IntCodec:
    """Symmetric integer quantization for an :class:`IntPrecision`."""

    nan_allowed = False

    def __init__(self, precision: IntPrecision):
        self.precision = precision

    def weight(self, weight: torch.Tensor):
        """``(operand (K, N), per-channel scales (N,) float64)``."""
        return quantize_weight(weight, self.precision.weight_bits)

    def act_scale(self, amax: float) -> float:
        return act_scale(amax, self.precision.act_bits)

    def act(self, x: torch.Tensor, scale: float) -> np.ndarray:
        """The act operand codes (int8), shaped like ``x``."""
        return act_codes(x, scale, self.precision.act_bits)

    def result(self, out: np.ndarray, a_scale: float, w_scale, bias) -> torch.Tensor:
        return dequantize(out, a_scale, w_scale, bias)


class FloatCodec:
    """Operands rounded to a float format; FP8 formats scaled to their range."""

    nan_allowed = True

    def __init__(self, precision: FloatPrecision):
        self.precision = precision
        self.dtype = precision.operand_dtypes[0]
        self.scaled = precision.widths()[0] == 8
        self.fmax = float(ml_dtypes.finfo(self.dtype).max)

    def _cast(self, a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32, copy=False)
        if self.scaled:
            a = np.clip(a, -self.fmax, self.fmax)  # saturate; NaN stays NaN
        with np.errstate(over="ignore"):  # beyond FP16's range is inf, as IEEE rounding says
            return a.astype(self.dtype)

    def weight(self, weight: torch.Tensor):
        w2 = weight.detach().double().reshape(weight.shape[0], -1)
        if self.scaled:
            amax = w2.abs().amax(dim=1)
            scale = torch.where(amax > 0, amax / self.fmax, torch.ones_like(amax))
        else:
            scale = torch.ones(w2.shape[0], dtype=torch.float64)
        return np.ascontiguousarray(self._cast((w2 / scale[:, None]).numpy()).T), scale

    def act_scale(self, amax: float) -> float:
        return float(amax) / self.fmax if self.scaled and amax > 0 else 1.0

    def act(self, x: torch.Tensor, scale: float) -> np.ndarray:
        """The act operand (the format's dtype), shaped like ``x``."""
        x = x.detach().float()
        return self._cast((x / scale if scale != 1.0 else x).numpy())

    def result(self, out: np.ndarray, a_scale: float, w_scale, bias) -> torch.Tensor:
        y = torch.from_numpy(out)
        if self.scaled:
            y = y * (a_scale * w_scale).float()
        if bias is not None:
            y = y + bias.detach().float()
        return y


#: Which codec maps models onto which kind of precision (a new kind registers here).
CODECS = {IntPrecision: IntCodec, LutPrecision: IntCodec, FloatPrecision: FloatCodec}


def codec_for(precision):
    """The codec of an array precision."""
    for kind, codec in CODECS.items():
        if isinstance(precision, kind):
            return codec(precision)
    raise MappingError(f"no model mapping for precision {getattr(precision, 'name', precision)!r}; "
                       "supported: integer and float precisions.")
