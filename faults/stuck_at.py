"""The permanent fault model: one bit of one PE register stuck at 0 or 1."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

from simulator import SITES

from .errors import FaultError

__all__ = ["StuckAt", "SITES"]


@dataclass(frozen=True)
class StuckAt:
    """Bit ``bit`` of register ``site`` of a PE is stuck at ``value``.

    Parameters
    ----------
    site : {"act", "weight", "product", "psum"}
        ``act``: the activation latch (its value is also forwarded right);
        ``weight``: the stationary weight register; ``product``: the multiplier
        output; ``psum``: the partial-sum output register.
    bit : int
        Bit index, 0 = least significant; must be below the site's width (checked
        when the fault is placed on an array, whose precision gives the width).
    value : {0, 1}

    Examples
    --------
    >>> StuckAt("psum", 30, 1)
    StuckAt(site='psum', bit=30, value=1)
    """

    site: str
    bit: int
    value: int

    def __post_init__(self):
        if self.site not in SITES:
            raise FaultError(f"StuckAt.site must be one of {list(SITES)}; got {self.site!r}.")
        if isinstance(self.bit, bool) or not isinstance(self.bit, Integral) or not 0 <= self.bit < 32:
            raise FaultError(f"StuckAt.bit must be an int in [0, 31]; got {self.bit!r}.")
        if isinstance(self.value, bool) or self.value not in (0, 1):
            raise FaultError(f"StuckAt.value must be 0 or 1; got {self.value!r}.")
        object.__setattr__(self, "bit", int(self.bit))
        object.__setattr__(self, "value", int(self.value))
