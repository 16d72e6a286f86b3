"""The array's memory side: DRAM bandwidth, on-chip buffers, and memory-aware GEMM timing.

docs/semantics.md ("Memory and timing") is normative. A GEMM ``(M x K) @ (K x N)`` runs its
folds ``for nf: for kf:`` (:mod:`simulator.timing`); its operands come from DRAM through
three buffers (inputs, weights, outputs) at ``bandwidth`` bytes per cycle:

* **weights**: every fold loads its ``R x C`` tile once: ``K * N * w_bytes`` in all;
* **inputs**: if all of ``X`` (``M * K * a_bytes``) fits the input buffer it is read once;
  otherwise every column fold streams it again: ``ceil(N / C) * M * K * a_bytes``;
* **outputs**: if a column fold's partial results (``M * min(C, N) * o_bytes``) fit the output
  buffer, each result is written once: ``M * N * o_bytes``; otherwise the partial sums spill
  and every row fold after the first reads and writes them again:
  ``(2 * ceil(K / R) - 1) * M * N * o_bytes``.

Operand bytes follow the precision (int8 and FP8: 1, FP16/BF16: 2, FP32: 4; results 4).
With double buffering the transfer of one fold overlaps the compute of the next, so a
GEMM takes ``fill + max(compute cycles, memory cycles)`` where ``memory cycles =
ceil(bytes / bandwidth)`` and ``fill = ceil(first weight tile bytes / bandwidth)`` (the first
fold cannot start before its weights are in). A GEMM is *memory-bound* when its memory
cycles exceed its compute cycles. Arithmetic intensity = MACs / bytes moved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

from .errors import ConfigError

__all__ = ["MemoryConfig", "MemoryTiming", "memory_timing", "operand_bytes"]


@dataclass(frozen=True)
class MemoryConfig:
    """DRAM bandwidth and buffer sizes of an array.

    Parameters
    ----------
    bandwidth : float
        DRAM bytes per cycle (> 0).
    input_kb, weight_kb, output_kb : float
        On-chip buffer sizes in KiB (>= 0) for the inputs (ifmap), the weights (filter) and
        the outputs (ofmap). Defaults: 64 KiB each.
    """

    bandwidth: float
    input_kb: float = 64.0
    weight_kb: float = 64.0
    output_kb: float = 64.0

    def __post_init__(self):
        if isinstance(self.bandwidth, bool) or not isinstance(self.bandwidth, Real) or not 0 < self.bandwidth < math.inf:
            raise ConfigError(f"MemoryConfig.bandwidth must be a number of bytes per cycle > 0; got {self.bandwidth!r}.")
        for name in ("input_kb", "weight_kb", "output_kb"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Real) or not 0 <= v < math.inf:
                raise ConfigError(f"MemoryConfig.{name} must be a number of KiB >= 0; got {v!r}.")

    @property
    def input_bytes(self) -> int:
        return int(self.input_kb * 1024)

    @property
    def weight_bytes(self) -> int:
        return int(self.weight_kb * 1024)

    @property
    def output_bytes(self) -> int:
        return int(self.output_kb * 1024)


@dataclass(frozen=True)
class MemoryTiming:
    """Memory-aware timing of one GEMM (see the module docstring)."""

    m: int
    k: int
    n: int
    macs: int
    compute_cycles: int
    input_bytes: int
    weight_bytes: int
    output_bytes: int
    inputs_refetched: bool  # X did not fit the input buffer: read once per column fold
    outputs_spilled: bool  # partial sums did not fit the output buffer
    memory_cycles: int
    fill_cycles: int
    total_cycles: int

    @property
    def bytes_moved(self) -> int:
        return self.input_bytes + self.weight_bytes + self.output_bytes

    @property
    def intensity(self) -> float:
        """MACs per byte moved."""
        return self.macs / self.bytes_moved

    @property
    def memory_bound(self) -> bool:
        return self.memory_cycles > self.compute_cycles


def operand_bytes(precision) -> tuple[int, int, int]:
    """Bytes of an activation, a weight and a result of ``precision``."""
    a, w, _, s = precision.widths()
    return -(-a // 8), -(-w // 8), -(-s // 8)


def memory_timing(cfg, m: int, k: int, n: int, memory: MemoryConfig | None = None) -> MemoryTiming:
    """Memory-aware timing of an ``(m x k) @ (k x n)`` GEMM on ``cfg`` (its ``memory``, or ``memory``)."""
    from .timing import gemm_timing

    mem = memory if memory is not None else cfg.memory
    if mem is None:
        raise ConfigError("memory-aware timing needs a memory side: ArrayConfig(..., memory=MemoryConfig(...)).")
    for name, v in (("M", m), ("K", k), ("N", n)):
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise ConfigError(f"GEMM dimension {name} must be a positive int; got {v!r}.")
    t = gemm_timing(cfg, m, k, n)
    ab, wb, ob = operand_bytes(cfg.precision)
    x_bytes = m * k * ab
    refetch = x_bytes > mem.input_bytes
    inputs = x_bytes * (t.col_folds if refetch else 1)
    weights = k * n * wb
    spill = m * min(cfg.cols, n) * ob > mem.output_bytes
    outputs = m * n * ob * ((2 * t.row_folds - 1) if spill else 1)
    memory_cycles = math.ceil((inputs + weights + outputs) / mem.bandwidth)
    fill = math.ceil(min(cfg.rows, k) * min(cfg.cols, n) * wb / mem.bandwidth)
    return MemoryTiming(m, k, n, t.macs, t.n_cycles, inputs, weights, outputs, refetch, spill, memory_cycles, fill,
                        fill + max(t.n_cycles, memory_cycles))
