"""PE arithmetic as a pluggable *precision* object.

A precision says how wide each PE register is and how a value is squeezed into it.
The engines never hard-code int8: they read the widths from the precision they are
given. Today there is one family, :class:`IntPrecision` (two's-complement integers
with wrap-around accumulation); FP16/BF16 and table-driven approximate multipliers
slot in later as further precision classes with their own kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["IntPrecision", "INT8", "SITES"]

#: Register sites of a PE, in the order fault masks are stacked: ``masks[i]`` is site ``SITES[i]``.
SITES = ("act", "weight", "product", "psum")


def _check_bits(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"IntPrecision.{name} must be an int in [{lo}, {hi}]; got {value!r}.")


@dataclass(frozen=True)
class IntPrecision:
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

    def __post_init__(self):
        _check_bits("act_bits", self.act_bits, 2, 8)
        _check_bits("weight_bits", self.weight_bits, 2, 8)
        need = self.act_bits + self.weight_bits
        _check_bits("product_bits", self.product_bits, need, 32)
        _check_bits("acc_bits", self.acc_bits, self.product_bits, 32)

    @property
    def name(self) -> str:
        return f"int{self.act_bits}x{self.weight_bits}->int{self.acc_bits}"

    def site_bits(self, site: str) -> int:
        """Register width of a fault site (``act``, ``weight``, ``product`` or ``psum``)."""
        widths = dict(zip(SITES, self.widths()))
        if site not in widths:
            raise ConfigError(f"site must be one of {list(SITES)}; got {site!r}.")
        return widths[site]

    def widths(self) -> tuple[int, int, int, int]:
        """Register widths in :data:`SITES` order."""
        return (self.act_bits, self.weight_bits, self.product_bits, self.acc_bits)

    def act_range(self) -> tuple[int, int]:
        return -(1 << (self.act_bits - 1)), (1 << (self.act_bits - 1)) - 1

    def weight_range(self) -> tuple[int, int]:
        return -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1

    def max_abs_product(self) -> int:
        """Largest magnitude of a fault-free product (``(-2**(a-1)) * (-2**(w-1))``)."""
        return 1 << (self.act_bits + self.weight_bits - 2)


#: The default: int8 x int8 products, int32 wrap-around accumulation.
INT8 = IntPrecision()
