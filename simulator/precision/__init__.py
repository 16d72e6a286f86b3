"""PE arithmetic as pluggable *precision* objects (docs/semantics.md, "Precisions").

A precision owns the operand and result formats, the register widths, the kernels the
engines run and a slow exact reference; the engines never branch on its type. Built in:
:class:`IntPrecision` (two's complement, wrap-around; :data:`INT8` is the default) and
:class:`FloatPrecision` (:data:`FP32`, :data:`FP16`, :data:`BF16`, :data:`FP8_E4M3`,
:data:`FP8_E5M2`: FP32 products and accumulation) and :class:`LutPrecision` (an 8-bit
multiplier given as a product table: approximate multipliers).
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import SITES, Precision, register, sext
from .floating import BF16, FORMATS, FP8_E4M3, FP8_E5M2, FP16, FP32, FloatPrecision, decode_reference
from .integer import INT8, IntPrecision
from .lut import LutPrecision, exact_table, lookup

__all__ = ["Precision", "IntPrecision", "FloatPrecision", "LutPrecision", "exact_table", "lookup", "INT8", "FP32", "FP16", "BF16", "FP8_E4M3", "FP8_E5M2",
           "FORMATS", "SITES", "precision_from_dict", "precision_by_name", "register", "sext", "decode_reference"]

#: The precisions known by name (``efat ... --precision NAME``).
NAMED = {p.name: p for p in (INT8, FP32, FP16, BF16, FP8_E4M3, FP8_E5M2)}


def precision_by_name(name: str) -> Precision:
    """A built-in precision by its name (``int8x8->int32``, ``fp32``, ``fp16``, ``bf16``, ...).

    ``int8`` is accepted for :data:`INT8`.
    """
    p = NAMED.get("int8x8->int32" if name == "int8" else name)
    if p is None:
        raise ConfigError(f"precision must be one of {['int8', *list(NAMED)[1:]]}; got {name!r}.")
    return p


def precision_from_dict(d) -> Precision:
    """The precision a :meth:`Precision.to_dict` description names."""
    if not isinstance(d, dict) or d.get("kind") not in ("int", "float", "lut"):
        raise ConfigError(f"a precision description must be a dict with kind 'int', 'float' or 'lut'; got {d!r}.")
    if d["kind"] == "lut":
        return LutPrecision.from_dict(d)
    if d["kind"] == "int":
        keys = ("act_bits", "weight_bits", "product_bits", "acc_bits")
        if set(d) != {"kind", *keys}:
            raise ConfigError(f"an int precision needs exactly {list(keys)}; got {sorted(set(d) - {'kind'})}.")
        return IntPrecision(*(d[k] for k in keys))
    if set(d) != {"kind", "format"}:
        raise ConfigError(f"a float precision needs exactly 'format'; got {sorted(set(d) - {'kind'})}.")
    return FloatPrecision(d["format"])
