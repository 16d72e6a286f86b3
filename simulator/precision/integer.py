"""Two's-complement integer PE arithmetic (the default: int8 x int8 -> int32)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, OperandError
from .base import Precision, sext, wrap_constants

__all__ = ["IntPrecision", "INT8", "IntKernels"]


def _check_bits(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"IntPrecision.{name} must be an int in [{lo}, {hi}]; got {value!r}.")


class IntKernels(NamedTuple):
    """Kernels of :class:`IntPrecision`: values are the patterns (int64), sums wrap.

    The wrap is written with add, AND and subtract (not two shifts by a run-time amount)
    so that, where the engines keep registers in int32, LLVM narrows the whole PE to int32
    lanes (an AVX2 vector holds 8); the bits are the same either way.
    """

    half: np.int64  # 2**(acc_bits - 1) and
    mask: np.int64  # 2**acc_bits - 1: ((v + half) & mask) - half wraps v to acc_bits
    zero: np.int64

    @staticmethod
    def dec(k, pattern):
        return np.int64(pattern)

    @staticmethod
    def mul(k, w, a):
        return w * a

    @staticmethod
    def add(k, s, p):
        return ((s + p + k.half) & k.mask) - k.half

    @staticmethod
    def acc(k, a, v):
        return ((a + v + k.half) & k.mask) - k.half

    @staticmethod
    def pat(k, v):
        return v

    @staticmethod
    def val(k, p):
        return np.int64(p)


@dataclass(frozen=True)
class IntPrecision(Precision):
    """Two's-complement integer PE arithmetic.

    Parameters
    ----------
    act_bits, weight_bits : int
        Width of the activation latch and of the stationary weight register (2..8).
        Operands are passed as ``int8`` arrays whose values must fit these widths.
    product_bits : int
        Width of the multiplier output; at least ``act_bits + weight_bits`` so a
        fault-free product never wraps.
    acc_bits : int
        Width of the partial-sum registers and of the fold accumulator outside the
        array (``product_bits`` .. 32). Sums wrap around modulo ``2**acc_bits``.
    """

    act_bits: int = 8
    weight_bits: int = 8
    product_bits: int = 16
    acc_bits: int = 32

    blas_exact = True

    def __post_init__(self):
        _check_bits("act_bits", self.act_bits, 2, 8)
        _check_bits("weight_bits", self.weight_bits, 2, 8)
        need = self.act_bits + self.weight_bits
        _check_bits("product_bits", self.product_bits, need, 32)
        _check_bits("acc_bits", self.acc_bits, self.product_bits, 32)

    @property
    def name(self) -> str:
        return f"int{self.act_bits}x{self.weight_bits}->int{self.acc_bits}"

    def widths(self) -> tuple[int, int, int, int]:
        return (self.act_bits, self.weight_bits, self.product_bits, self.acc_bits)

    def to_dict(self) -> dict:
        return {"kind": "int", "act_bits": self.act_bits, "weight_bits": self.weight_bits,
                "product_bits": self.product_bits, "acc_bits": self.acc_bits}

    def act_range(self) -> tuple[int, int]:
        return -(1 << (self.act_bits - 1)), (1 << (self.act_bits - 1)) - 1

    def weight_range(self) -> tuple[int, int]:
        return -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1

    def max_abs_product(self) -> int:
        """Largest magnitude of a fault-free product (``(-2**(a-1)) * (-2**(w-1))``)."""
        return 1 << (self.act_bits + self.weight_bits - 2)

    # -- operands and results ----------------------------------------------------------
    @property
    def operand_dtypes(self):
        return (np.dtype(np.int8), np.dtype(np.int8))

    @property
    def output_dtype(self):
        return np.dtype(np.int32)

    def check_operand(self, name, a, which):
        super().check_operand(name, a, which)
        lo, hi = self.act_range() if which == 0 else self.weight_range()
        if (lo, hi) != (-128, 127) and (a.min() < lo or a.max() > hi):
            raise OperandError(f"{name} values must lie in [{lo}, {hi}] for {self.name}; got [{a.min()}, {a.max()}].")

    def patterns(self, a):
        return a

    def output(self, acc_patterns):
        return acc_patterns.astype(np.int32, copy=False)

    def kernels(self):
        return IntKernels(*wrap_constants(self.acc_bits), np.int64(0))

    # -- reference ---------------------------------------------------------------------
    def ref_mul(self, w, a):
        return int(w) * int(a)

    def ref_add(self, s, p):
        return sext(int(s) + int(p), self.acc_bits)

    def ref_acc(self, acc, v):
        return sext(int(acc) + int(v), self.acc_bits)


#: The default: int8 x int8 products, int32 wrap-around accumulation.
INT8 = IntPrecision()
