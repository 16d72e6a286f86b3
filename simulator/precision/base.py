"""The precision protocol: what a PE's arithmetic must tell the rest of the simulator.

A precision owns everything format-specific about the array (docs/semantics.md,
"Precisions"): the operand dtype ``matmul`` accepts and the dtype it returns, the width of
every register (for stuck-at masks and bit flips), the kernels the engines run (see
:mod:`simulator.precision.kernels`), a slow exact reference of the same arithmetic for
the tests, and a JSON description for files. The engines never look at its type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import ConfigError, OperandError

__all__ = ["Precision", "SITES", "register", "sext", "wrap_constants"]

#: Register sites of a PE, in the order fault masks are stacked: ``masks[i]`` is site ``SITES[i]``.
SITES = ("act", "weight", "product", "psum")


def wrap_constants(bits: int) -> tuple[np.int64, np.int64]:
    """``(half, mask)`` with which ``((v + half) & mask) - half`` wraps an integer ``v`` to a
    ``bits``-bit two's-complement value (what integer kernels' adders do)."""
    return np.int64(1 << (bits - 1)), np.int64((1 << bits) - 1)


def sext(v: int, bits: int) -> int:
    """Two's-complement value of the low ``bits`` bits of ``v`` (a register pattern)."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


class Precision(ABC):
    """Base class of PE arithmetics. Subclasses are frozen dataclasses (hashable, comparable).

    Subclasses define :attr:`name`, :meth:`widths`, :attr:`operand_dtypes`,
    :attr:`output_dtype`, :meth:`patterns`, :meth:`output`, :meth:`kernels`, the
    reference methods ``ref_*`` and :meth:`to_dict`.
    """

    #: True when products and sums are integers that float BLAS computes exactly in any
    #: order (the fast engine may then reassociate); False makes it keep the array's order.
    blas_exact: bool = False
    #: True when products come from :meth:`kernels`' ``table`` (int32, indexed
    #: ``(w + 128) * 256 + (a + 128)``) and sums are integers that wrap: the fast engine may add
    #: per-row product tables in any order.
    table_sums: bool = False

    # -- description -------------------------------------------------------------------
    @property
    @abstractmethod
    def name(self) -> str:
        """Short name for messages and files, e.g. ``"int8x8->int32"`` or ``"fp16"``."""

    @abstractmethod
    def widths(self) -> tuple[int, int, int, int]:
        """Register widths in :data:`SITES` order (act, weight, product, psum)."""

    def site_bits(self, site: str) -> int:
        """Register width of a fault site (``act``, ``weight``, ``product`` or ``psum``)."""
        widths = dict(zip(SITES, self.widths()))
        if site not in widths:
            raise ConfigError(f"site must be one of {list(SITES)}; got {site!r}.")
        return widths[site]

    @abstractmethod
    def to_dict(self) -> dict:
        """JSON-able description; :func:`simulator.precision_from_dict` inverts it."""

    # -- operands and results ----------------------------------------------------------
    @property
    @abstractmethod
    def operand_dtypes(self) -> tuple[np.dtype, np.dtype]:
        """dtypes of ``x`` and ``w`` that :meth:`SystolicArray.matmul` accepts."""

    @property
    @abstractmethod
    def output_dtype(self) -> np.dtype:
        """dtype of ``MatmulResult.out``."""

    def check_operand(self, name: str, a: np.ndarray, which: int) -> None:
        """Raise :class:`OperandError` unless ``a`` has the operand dtype (``which``: 0 = x, 1 = w)."""
        want = self.operand_dtypes[which]
        if a.dtype != want:
            raise OperandError(f"{name} must have dtype {want.name} for {self.name}; got {a.dtype.name}.")

    @abstractmethod
    def patterns(self, a: np.ndarray) -> np.ndarray:
        """The register patterns of a validated operand array (a signed-integer view/copy)."""

    @abstractmethod
    def output(self, acc_patterns: np.ndarray) -> np.ndarray:
        """Result array (:attr:`output_dtype`) from int64 accumulator patterns."""

    @abstractmethod
    def kernels(self):
        """The kernel tuple the engines compute with (:mod:`simulator.precision.kernels`)."""

    # -- the slow exact reference (tests) ----------------------------------------------
    @abstractmethod
    def ref_mul(self, w: int, a: int) -> int:
        """Product register pattern (before its masks) of weight and act patterns."""

    @abstractmethod
    def ref_add(self, s: int, p: int) -> int:
        """Psum register pattern (before its masks) of psum-in and product patterns."""

    @abstractmethod
    def ref_acc(self, acc: int, v: int) -> int:
        """Fold accumulator pattern after adding a fold result pattern."""

    def ref_zero(self) -> int:
        """Pattern a psum chain and the fold accumulator start from."""
        return 0


def register(v: int, and_mask: int, or_mask: int, bits: int) -> int:
    """A register latching pattern ``v``: stuck bits forced, sign-extended from ``bits``."""
    return sext((v & and_mask) | or_mask, bits)
