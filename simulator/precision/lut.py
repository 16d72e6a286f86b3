"""Table-driven PE arithmetic: approximate 8-bit multipliers as 256x256 product tables.

docs/semantics.md ("LUT precisions") is normative. Operands are int8 (act and weight
registers 8 bits). The product is looked up, ``p = table[w, a]``:

* a *signed* table is indexed by the operands' values plus 128 (``table[w + 128, a + 128]``);
* an *unsigned* table holds magnitudes and is used in sign-magnitude:
  ``p = sign(w) * sign(a) * table[|w|, |a|]`` with ``|-128| = 128``.

The product register is as wide as the table's type (16 bits for int16/uint16 tables, 32
for int32/uint32); every product must fit it as a signed value. Partial sums and the fold
accumulator are integers that wrap around, as in :class:`IntPrecision`. The exact table
``w * a`` gives exactly the bits of :data:`INT8`.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from .base import Precision, sext, wrap_constants

__all__ = ["LutPrecision", "exact_table", "lookup"]

_REGISTRY: dict = {}  # sha256 -> a LutPrecision built in this process (to read files that name it)


class SignedLutKernels(NamedTuple):
    table: np.ndarray  # int32 (65536,): the product of w and a at (w + 128) * 256 + (a + 128)
    half: np.int64  # ((v + half) & mask) - half wraps v to acc_bits (see IntKernels)
    mask: np.int64
    zero: np.int64

    @staticmethod
    def dec(k, pattern):
        return np.int64(pattern)

    @staticmethod
    def mul(k, w, a):
        return np.int64(k.table[(w + 128) * 256 + (a + 128)])

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


def exact_table(signed: bool = True) -> np.ndarray:
    """The exact 8-bit multiplier as a table: ``w * a`` (int32, signed indexing) or
    ``|w| * |a|`` for ``|w|, |a|`` in 0..255 (uint32, for sign-magnitude use)."""
    v = np.arange(-128, 128) if signed else np.arange(256)
    return np.multiply.outer(v, v).astype(np.int32 if signed else np.uint32)


def lookup(table: np.ndarray, signed: bool, w, a):
    """Products of int operands ``w``, ``a`` (arrays) through ``table``, as the array forms them."""
    w, a = np.asarray(w, np.int64), np.asarray(a, np.int64)
    t = np.asarray(table, np.int64)
    if signed:
        return t[w + 128, a + 128]
    p = t[np.abs(w), np.abs(a)]
    return np.where((w < 0) != (a < 0), -p, p)


class LutPrecision(Precision):
    """An approximate (or exact) 8-bit multiplier given as a 256x256 product table.

    Parameters
    ----------
    table : integer array (256, 256)
        ``int16``/``int32`` (signed use) or ``uint16``/``uint32`` (sign-magnitude use); its
        type sets the product register's width (16 or 32 bits), and every product the array
        can form must fit it as a signed value (in sign-magnitude use: the entries for
        magnitudes 0..128; an EvoApprox unsigned table's larger entries are never used).
    signed : bool
        How the table is indexed (see the module docstring); an unsigned table requires
        ``signed=False``.
    name : str, optional
        For messages and files (default ``lut-`` and the first 8 hex digits of its sha256).
    acc_bits : int
        Width of the partial sums and the fold accumulator (product width .. 32).
    """

    blas_exact = False
    table_sums = True  # products from a table, integer sums: the fast engine's gather-add path
    act_bits = 8
    weight_bits = 8

    def __init__(self, table, signed: bool = True, name: str | None = None, acc_bits: int = 32):
        table = np.asarray(table)
        if table.shape != (256, 256):
            raise ConfigError(f"a LUT must have shape (256, 256); got {table.shape}.")
        if table.dtype not in (np.int16, np.int32, np.uint16, np.uint32):
            raise ConfigError(f"a LUT must be int16, int32, uint16 or uint32 (its type sets the product width); "
                              f"got {table.dtype}.")
        if table.dtype.kind == "u" and signed:
            raise ConfigError("an unsigned LUT holds magnitudes for sign-magnitude use: pass signed=False.")
        bits = 8 * table.dtype.itemsize
        used = table if signed else table[:129, :129]  # sign-magnitude reaches magnitudes 0..128 only
        lo, hi = int(used.min()), int(used.max())
        if hi > (1 << (bits - 1)) - 1 or lo < -(1 << (bits - 1)):
            raise ConfigError(f"LUT values [{lo}, {hi}] overflow the {bits}-bit product register "
                              f"(signed range [{-(1 << (bits - 1))}, {(1 << (bits - 1)) - 1}]); use a wider table type.")
        if isinstance(acc_bits, bool) or not isinstance(acc_bits, int) or not bits <= acc_bits <= 32:
            raise ConfigError(f"LutPrecision.acc_bits must be an int in [{bits}, 32]; got {acc_bits!r}.")
        self.table = table.copy()
        self.table.setflags(write=False)
        self.signed = bool(signed)
        self.product_bits = bits
        self.acc_bits = acc_bits
        self.digest = hashlib.sha256(self.table.tobytes() + bytes([self.signed, bits])).hexdigest()
        self._name = name if name is not None else f"lut-{self.digest[:8]}"
        self._kernels = None
        if not isinstance(self._name, str) or not self._name:
            raise ConfigError(f"LutPrecision.name must be a non-empty str; got {name!r}.")
        _REGISTRY.setdefault(self.digest, self)

    # identity: the arithmetic, not the object
    def _key(self):
        return (self.digest, self.acc_bits)

    def __eq__(self, other):
        return isinstance(other, LutPrecision) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"LutPrecision({self._name!r}, {'signed' if self.signed else 'sign-magnitude'}, product {self.product_bits} bits)"

    @property
    def name(self) -> str:
        return self._name

    def widths(self):
        return (8, 8, self.product_bits, self.acc_bits)

    def to_dict(self) -> dict:
        return {"kind": "lut", "name": self._name, "signed": self.signed, "product_bits": self.product_bits,
                "acc_bits": self.acc_bits, "sha256": self.digest}

    @staticmethod
    def from_dict(d) -> LutPrecision:
        """The LUT precision a description names: one built in this process with that table."""
        known = _REGISTRY.get(d.get("sha256"))
        if known is None:
            raise ConfigError(f"LUT precision {d.get('name')!r} (sha256 {str(d.get('sha256'))[:12]}...) is not known "
                              "in this process: build it first (simulator.LutPrecision(table, ...) or "
                              "simulator.multiplier(name)), then load.")
        return known if known.acc_bits == d.get("acc_bits") else LutPrecision(known.table, known.signed, d.get("name"),
                                                                              d.get("acc_bits"))

    def act_range(self):
        return -128, 127

    weight_range = act_range

    def max_abs_product(self) -> int:
        used = self.table if self.signed else self.table[:129, :129]
        return int(np.abs(used.astype(np.int64)).max())

    # -- operands and results ----------------------------------------------------------
    @property
    def operand_dtypes(self):
        return (np.dtype(np.int8), np.dtype(np.int8))

    @property
    def output_dtype(self):
        return np.dtype(np.int32)

    def patterns(self, a):
        return a

    def output(self, acc_patterns):
        return acc_patterns.astype(np.int32, copy=False)

    def kernels(self):
        # every (w, a) product the array can form, indexed by value + 128: a sign-magnitude table
        # is expanded once, so the engines' lookup is one load, no sign logic
        if self._kernels is None:
            v = np.arange(-128, 128)
            full = lookup(self.table, self.signed, v[:, None], v[None, :]).astype(np.int32)
            self._kernels = SignedLutKernels(full.ravel(), *wrap_constants(self.acc_bits), np.int64(0))
        return self._kernels

    # -- reference ---------------------------------------------------------------------
    def ref_mul(self, w, a):
        w, a = int(w), int(a)
        if self.signed:
            return int(self.table[w + 128, a + 128])
        p = int(self.table[abs(w), abs(a)])
        return -p if (w < 0) != (a < 0) else p

    def ref_add(self, s, p):
        return sext(int(s) + int(p), self.acc_bits)

    def ref_acc(self, acc, v):
        return sext(int(acc) + int(v), self.acc_bits)
