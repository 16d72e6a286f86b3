"""Array configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral

from .errors import ConfigError
from .memory import MemoryConfig
from .precision import INT8, Precision

__all__ = ["ArrayConfig", "MAX_DIM"]

MAX_DIM = 4096


@dataclass(frozen=True)
class ArrayConfig:
    """Shape and arithmetic of a weight-stationary systolic array.

    Parameters
    ----------
    rows, cols : int
        Number of PE rows ``R`` (the reduction dimension K is mapped onto rows) and
        columns ``C`` (output channels N are mapped onto columns), each in [1, 4096].
    precision : Precision
        PE arithmetic: :data:`INT8` (int8 x int8 -> int32 wrap-around) by default, or any
        :class:`simulator.Precision` (``FP32``, ``FP16``, ``BF16``, ``FP8_E4M3``, ``FP8_E5M2``,
        an :class:`IntPrecision` of other widths).
    memory : MemoryConfig, optional
        The memory side (DRAM bandwidth, buffers) for memory-aware timing
        (:func:`simulator.memory_timing`); it changes no result and no fault map, so it takes
        no part in comparing configurations.

    Examples
    --------
    >>> ArrayConfig(rows=32, cols=16).n_pes
    512
    """

    rows: int
    cols: int
    precision: Precision = field(default=INT8)
    memory: MemoryConfig | None = field(default=None, compare=False)

    def __post_init__(self):
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or not 1 <= value <= MAX_DIM:
                raise ConfigError(
                    f"ArrayConfig.{name} must be an int in [1, {MAX_DIM}]; got {value!r}."
                )
            object.__setattr__(self, name, int(value))
        if self.memory is not None and not isinstance(self.memory, MemoryConfig):
            raise ConfigError(f"ArrayConfig.memory must be a simulator.MemoryConfig or None; got {type(self.memory).__name__}.")
        if not isinstance(self.precision, Precision):
            raise ConfigError(
                "ArrayConfig.precision must be a simulator.Precision (e.g. INT8, FP16, BF16); "
                f"got {type(self.precision).__name__}."
            )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def n_pes(self) -> int:
        return self.rows * self.cols

    def folds(self, k: int, n: int) -> tuple[int, int]:
        """Number of row folds ``ceil(K/R)`` and column folds ``ceil(N/C)`` of a GEMM."""
        return -(-k // self.rows), -(-n // self.cols)

    def fold_cycles(self, m: int) -> int:
        """Cycles of one fold streaming ``m`` input vectors: ``2R + C + m - 2``."""
        return 2 * self.rows + self.cols + m - 2
