"""Float PE arithmetic: FP32, FP16, BF16, FP8 (E4M3, E5M2) operands, FP32 products and sums.

docs/semantics.md ("Float precisions") is normative. In short: registers hold bit
patterns (act and weight the operand's width, product and psum 32 bits); a PE computes
``p = fp32(w) * fp32(a)`` and ``psum_out = psum_in + p``, each rounded to nearest even in
float32, subnormals kept, and every NaN an adder or multiplier produces becomes the quiet
NaN ``0x7FC00000`` before the register's stuck-at masks apply. The psum chain and the fold
accumulator start at +0.0; folds are added outside the array in fold order.

Operand formats follow IEEE 754 (FP32, FP16, BF16) and the OCP 8-bit floating point
specification (E4M3 without infinities, its only NaN ``S.1111.111``, largest 448; E5M2
IEEE-like, largest 57344).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import ml_dtypes
import numpy as np

from ..errors import ConfigError
from .base import Precision
from .bits import CANONICAL_NAN, f32_bits, f32_from_bits

__all__ = ["FloatPrecision", "FP32", "FP16", "BF16", "FP8_E4M3", "FP8_E5M2", "FORMATS", "decode_reference"]


@dataclass(frozen=True)
class _Format:
    bits: int
    exp_bits: int
    man_bits: int
    dtype: np.dtype
    ieee: bool  # all-ones exponent means inf/NaN (else: E4M3's finite encoding, one NaN)


#: Operand formats by name.
FORMATS = {
    "fp32": _Format(32, 8, 23, np.dtype(np.float32), True),
    "fp16": _Format(16, 5, 10, np.dtype(np.float16), True),
    "bf16": _Format(16, 8, 7, np.dtype(ml_dtypes.bfloat16), True),
    "fp8_e4m3": _Format(8, 4, 3, np.dtype(ml_dtypes.float8_e4m3fn), False),
    "fp8_e5m2": _Format(8, 5, 2, np.dtype(ml_dtypes.float8_e5m2), True),
}

_INT_OF_BITS = {8: np.int8, 16: np.int16, 32: np.int32}


def decode_reference(pattern: int, fmt: str) -> float:
    """The value of an operand bit pattern, from the format's definition (a Python float).

    Written from the definitions, independently of NumPy and ml_dtypes, for the tests.
    """
    f = FORMATS[fmt]
    pattern &= (1 << f.bits) - 1
    sign = -1.0 if pattern >> (f.bits - 1) else 1.0
    e = (pattern >> f.man_bits) & ((1 << f.exp_bits) - 1)
    man = pattern & ((1 << f.man_bits) - 1)
    bias = (1 << (f.exp_bits - 1)) - 1
    top = (1 << f.exp_bits) - 1
    if f.ieee and e == top:
        return sign * math.inf if man == 0 else math.nan
    if not f.ieee and e == top and man == (1 << f.man_bits) - 1:
        return math.nan
    if e == 0:
        return sign * math.ldexp(man, 1 - bias - f.man_bits)
    return sign * math.ldexp((1 << f.man_bits) + man, e - bias - f.man_bits)


def _round_f32(v: float) -> int:
    """Pattern of ``v`` rounded to float32 (nearest even; overflow to inf; NaN canonical)."""
    if v != v:
        return CANONICAL_NAN
    with np.errstate(over="ignore"):
        return int(np.float32(v).view(np.int32))


def _mul(k, w, a):
    return w * a


def _add(k, s, p):
    return s + p


def _acc(k, a, v):
    return a + v


def _dec32(k, pattern):
    return f32_from_bits(pattern)


def _pat(k, v):
    return np.int64(CANONICAL_NAN) if v != v else np.int64(f32_bits(v))


def _val(k, p):
    return f32_from_bits(p)


class FloatKernels(NamedTuple):
    """Kernels of the 8- and 16-bit operand formats: operands decoded through a table."""

    lut: np.ndarray  # float32 value of every operand pattern
    op_mask: np.int64  # (1 << operand bits) - 1
    zero: np.float32

    @staticmethod
    def dec(k, pattern):
        return k.lut[np.int64(pattern) & k.op_mask]

    mul = staticmethod(_mul)
    add = staticmethod(_add)
    acc = staticmethod(_acc)
    pat = staticmethod(_pat)
    val = staticmethod(_val)


class F32Kernels(NamedTuple):
    """Kernels of FP32 operands: the operand pattern is the float32 itself."""

    zero: np.float32

    dec = staticmethod(_dec32)
    mul = staticmethod(_mul)
    add = staticmethod(_add)
    acc = staticmethod(_acc)
    pat = staticmethod(_pat)
    val = staticmethod(_val)


@dataclass(frozen=True)
class FloatPrecision(Precision):
    """Float operands of format ``fmt`` with FP32 products and accumulation.

    Parameters
    ----------
    fmt : {"fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2"}

    Use the constants :data:`FP32`, :data:`FP16`, :data:`BF16`, :data:`FP8_E4M3` and
    :data:`FP8_E5M2`. ``matmul`` takes operands of the format's dtype (``np.float32``,
    ``np.float16``, ``ml_dtypes.bfloat16``, ``ml_dtypes.float8_e4m3fn``,
    ``ml_dtypes.float8_e5m2``) and returns float32.
    """

    fmt: str

    def __post_init__(self):
        if self.fmt not in FORMATS:
            raise ConfigError(f"FloatPrecision.fmt must be one of {list(FORMATS)}; got {self.fmt!r}.")

    @property
    def name(self) -> str:
        return self.fmt

    @property
    def format(self) -> _Format:
        return FORMATS[self.fmt]

    def widths(self) -> tuple[int, int, int, int]:
        b = FORMATS[self.fmt].bits
        return (b, b, 32, 32)

    def to_dict(self) -> dict:
        return {"kind": "float", "format": self.fmt}

    def field_of_bit(self, site: str, bit: int) -> str:
        """``"sign"``, ``"exponent"`` or ``"mantissa"``: what bit ``bit`` of ``site`` encodes."""
        f = FORMATS["fp32"] if self.site_bits(site) == 32 else FORMATS[self.fmt]
        if not 0 <= bit < f.bits:
            raise ConfigError(f"bit must be in [0, {f.bits - 1}] for the {site} register of {self.name}; got {bit}.")
        return "sign" if bit == f.bits - 1 else ("exponent" if bit >= f.man_bits else "mantissa")

    @property
    def operand_dtypes(self):
        d = FORMATS[self.fmt].dtype
        return (d, d)

    @property
    def output_dtype(self):
        return np.dtype(np.float32)

    def patterns(self, a):
        return a.view(_INT_OF_BITS[FORMATS[self.fmt].bits])

    def output(self, acc_patterns):
        return acc_patterns.astype(np.int32).view(np.float32)

    def kernels(self):
        f = FORMATS[self.fmt]
        if f.bits == 32:
            return F32Kernels(np.float32(0.0))
        lut = np.arange(1 << f.bits, dtype=np.uint32).astype(f"u{f.bits // 8}").view(f.dtype).astype(np.float32)
        return FloatKernels(lut, np.int64((1 << f.bits) - 1), np.float32(0.0))

    # -- reference ---------------------------------------------------------------------
    def ref_mul(self, w, a):
        return _round_f32(decode_reference(int(w), self.fmt) * decode_reference(int(a), self.fmt))

    def ref_add(self, s, p):
        return _round_f32(decode_reference(int(s), "fp32") + decode_reference(int(p), "fp32"))

    def ref_acc(self, acc, v):
        return self.ref_add(acc, v)


FP32 = FloatPrecision("fp32")
FP16 = FloatPrecision("fp16")
BF16 = FloatPrecision("bf16")
FP8_E4M3 = FloatPrecision("fp8_e4m3")
FP8_E5M2 = FloatPrecision("fp8_e5m2")
