"""Reinterpreting float32 values as their bit patterns and back, inside and outside Numba.

Float registers hold bit patterns (stuck-at masks act on bits), and the arithmetic acts on
values, so the kernels convert between the two on every faulty register. In compiled code
the conversion is one LLVM ``bitcast`` (free); with ``NUMBA_DISABLE_JIT=1`` the same
functions run as NumPy scalar views, so the plain-Python run of the engines executes the
same source.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import intrinsic, overload

__all__ = ["f32_bits", "f32_from_bits", "CANONICAL_NAN"]

#: The quiet NaN every float adder and multiplier of the array produces (docs/semantics.md).
CANONICAL_NAN = 0x7FC00000


def f32_bits(v):
    """The IEEE bit pattern of float32 ``v``, as a signed int32 (sign bit = bit 31)."""
    return np.float32(v).view(np.int32)


def f32_from_bits(p):
    """The float32 whose bit pattern is the low 32 bits of integer ``p``."""
    return np.int64(p).astype(np.int32).view(np.float32)


@intrinsic
def _bitcast_f32_to_i32(typingctx, v):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int32))

    return types.int32(types.float32), codegen


@intrinsic
def _bitcast_i32_to_f32(typingctx, v):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(types.int32), codegen


@overload(f32_bits, jit_options={"cache": True})
def _f32_bits_jit(v):
    def impl(v):
        return _bitcast_f32_to_i32(np.float32(v))

    return impl


@overload(f32_from_bits, jit_options={"cache": True})
def _f32_from_bits_jit(p):
    def impl(p):
        return _bitcast_i32_to_f32(np.int32(p))

    return impl
