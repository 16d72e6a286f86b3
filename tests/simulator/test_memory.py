"""Memory-aware timing: hand-computed compute- and memory-bound GEMMs, buffers, and bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator import FP16, ArrayConfig, ConfigError, MemoryConfig, gemm_timing, memory_timing


def test_a_memory_bound_gemm_by_hand():
    """M=100, K=64, N=32 on 16x16 (4 row folds, 2 column folds), int8, 16 B/cycle, 1 KiB buffers:
    X (6,400 B) does not fit: read once per column fold, 12,800 B; weights 2,048 B; partial sums
    (100 x 16 x 4 = 6,400 B) do not fit: 12,800 B of results written and reread (2*4 - 1) times,
    89,600 B. 104,448 B / 16 = 6,528 memory cycles against 8 x (32 + 16 + 100 - 2) = 1,168 compute
    cycles; the first weight tile, 256 B, is 16 cycles of fill: 6,544 cycles."""
    cfg = ArrayConfig(16, 16, memory=MemoryConfig(16, 1, 1, 1))
    t = memory_timing(cfg, 100, 64, 32)
    assert (t.compute_cycles, t.input_bytes, t.weight_bytes, t.output_bytes) == (1168, 12800, 2048, 89600)
    assert t.inputs_refetched and t.outputs_spilled
    assert (t.memory_cycles, t.fill_cycles, t.total_cycles, t.memory_bound) == (6528, 16, 6544, True)
    assert t.intensity == pytest.approx(100 * 64 * 32 / 104448)


def test_a_compute_bound_gemm_that_fits_its_buffers_moves_each_operand_once():
    """The same GEMM with 64 KiB buffers and 64 B/cycle: X once (6,400 B), weights 2,048 B,
    results once (12,800 B): 21,248 B / 64 = 332 memory cycles < 1,168 compute: 1,168 + 4 fill."""
    cfg = ArrayConfig(16, 16, memory=MemoryConfig(64))
    t = memory_timing(cfg, 100, 64, 32)
    assert (t.input_bytes, t.weight_bytes, t.output_bytes) == (6400, 2048, 12800)
    assert not t.inputs_refetched and not t.outputs_spilled and not t.memory_bound
    assert (t.memory_cycles, t.total_cycles) == (332, 1168 + 4)


def test_operand_bytes_follow_the_precision():
    t8 = memory_timing(ArrayConfig(8, 8, memory=MemoryConfig(8)), 10, 20, 30)
    t16 = memory_timing(ArrayConfig(8, 8, FP16, memory=MemoryConfig(8)), 10, 20, 30)
    assert (t16.input_bytes, t16.weight_bytes, t16.output_bytes) == (2 * t8.input_bytes, 2 * t8.weight_bytes,
                                                                      t8.output_bytes)


@given(r=st.integers(1, 64), c=st.integers(1, 64), m=st.integers(1, 500), k=st.integers(1, 500),
       n=st.integers(1, 500), bw=st.floats(0.5, 256), kb=st.floats(0, 64))
def test_never_below_the_compute_cycles(r, c, m, k, n, bw, kb):
    cfg = ArrayConfig(r, c, memory=MemoryConfig(bw, kb, kb, kb))
    t = memory_timing(cfg, m, k, n)
    assert t.total_cycles >= t.compute_cycles == gemm_timing(cfg, m, k, n).n_cycles
    assert t.total_cycles >= t.memory_cycles and t.bytes_moved >= m * k + k * n + 4 * m * n


def test_the_memory_side_changes_no_comparison_and_bad_values_are_refused():
    assert ArrayConfig(4, 4, memory=MemoryConfig(8)) == ArrayConfig(4, 4)
    with pytest.raises(ConfigError, match="bandwidth must be a number of bytes per cycle > 0; got 0"):
        MemoryConfig(0)
    with pytest.raises(ConfigError, match="input_kb must be a number of KiB >= 0; got -1"):
        MemoryConfig(8, -1)
    with pytest.raises(ConfigError, match="needs a memory side"):
        memory_timing(ArrayConfig(4, 4), 1, 1, 1)
