"""The fast engine's BLAS path for integer precisions: the code paths that the random engine
tests reach rarely (long reductions, prefix sums too long for one float32 GEMM, work buffers
reused between calls and threads)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from faults import FaultMap
from simulator import INT8, ArrayConfig, SystolicArray
from simulator.engines import blas, scratch


def _operands(seed, M, K, N):
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (M, K), dtype=np.int8), rng.integers(-128, 128, (K, N), dtype=np.int8)


@pytest.mark.parametrize("sites", [("psum",), ("act", "psum"), ("act", "weight", "product", "psum")])
def test_reductions_longer_than_one_float32_gemm(sites):
    """K = 1,300 > 1,024 (int8's exact float32 reduction): the main GEMM is cut in chunks."""
    cfg = ArrayConfig(16, 16, INT8)
    arr = SystolicArray(cfg, FaultMap.random(cfg, 0.1, seed=3, sites=sites))
    x, w = _operands(0, 9, 1300, 20)
    x[:4], w[:, :10] = -127, -127  # sums of odd products past 2**24
    np.testing.assert_array_equal(arr.matmul(x, w, "fast").out, arr.matmul(x, w, "cycle").out)


def test_prefix_sums_longer_than_one_float32_gemm():
    """An array of 1,100 rows: a prefix sum above a psum fault near the bottom adds more
    products than float32 holds exactly (odd products near the largest pass ``2**24``), so
    the prefix sums are accumulated in int32 chunks."""
    cfg = ArrayConfig(1100, 3, INT8)
    masks = np.zeros((4, 2, 1100, 3), np.int32)
    masks[:, 0] = -1
    masks[3, 1, 1090, 1] = 1 << 3  # psum stuck at 1
    masks[3, 0, 1095, 2] = ~(1 << 26)  # psum stuck at 0
    masks[2, 1, 500, 2] = 1 << 9  # product stuck at 1, above the psum fault in its column
    arr = SystolicArray(cfg, _Masks(masks))
    x, w = _operands(1, 5, 1100, 3)
    x[:3], w[:, :2] = -127, -127
    np.testing.assert_array_equal(arr.matmul(x, w, "fast").out, arr.matmul(x, w, "cycle").out)


class _Masks:
    def __init__(self, masks):
        self.masks = masks


@pytest.mark.parametrize("transpose_above", [-1.0, 2.0])  # always / never transpose the operand
@pytest.mark.parametrize("seed", range(12))
def test_operand_read_in_place_or_transposed(monkeypatch, transpose_above, seed):
    """Without act faults, x is read in place or transposed whole depending on how many rows
    hold faulty chains; both layouts give the cycle engine's bits."""
    monkeypatch.setattr(blas, "_TRANSPOSE_ABOVE", transpose_above)
    rng = np.random.default_rng(seed)
    cfg = ArrayConfig(int(rng.integers(3, 12)), int(rng.integers(3, 12)), INT8)
    sites = [("psum",), ("product",), ("product", "psum", "weight"), ("act", "psum"), ("act", "product"),
             ("act", "weight", "product", "psum")][seed % 6]
    arr = SystolicArray(cfg, FaultMap.random(cfg, float(rng.uniform(0.05, 0.4)), seed=seed, sites=sites))
    x, w = _operands(seed, int(rng.integers(1, 40)), int(rng.integers(1, 50)), int(rng.integers(1, 30)))
    np.testing.assert_array_equal(arr.matmul(x, w, "fast").out, arr.matmul(x, w, "cycle").out)


def test_results_are_not_work_buffers():
    """A result stays as it was when later calls (other shapes, same buffers) run."""
    cfg = ArrayConfig(16, 16, INT8)
    arr = SystolicArray(cfg, FaultMap.random(cfg, 0.05, seed=0))
    x, w = _operands(2, 50, 70, 30)
    first = arr.matmul(x, w).out
    kept = first.copy()
    for seed, (M, K, N) in enumerate([(50, 70, 30), (80, 33, 17), (7, 200, 40)]):
        arr.matmul(*_operands(seed + 10, M, K, N))
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(arr.matmul(x, w).out, kept)


def test_threads_side_by_side_match_serial():
    """Each thread has its own work buffers: GEMMs running at once give the serial results."""
    cfg = ArrayConfig(16, 16, INT8)
    arr = SystolicArray(cfg, FaultMap.random(cfg, 0.05, seed=4))
    jobs = [_operands(s, 40 + 13 * s, 60 + 17 * s, 20 + 5 * s) for s in range(6)]
    want = [arr.matmul(x, w).out for x, w in jobs]
    got = [None] * len(jobs)

    def run(i):
        for _ in range(5):
            got[i] = arr.matmul(*jobs[i]).out

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, wnt in zip(got, want):
        np.testing.assert_array_equal(g, wnt)


def test_scratch_views_and_release():
    a = scratch.scratch("test", (3, 4), np.float32)
    b = scratch.scratch("test", (2, 2), np.int32)
    assert a.shape == (3, 4) and a.dtype == np.float32 and b.flags.c_contiguous
    assert np.shares_memory(a, b)  # one buffer, viewed at each request's shape
    c = scratch.scratch("test", (100, 100), np.float64)  # grows
    assert c.shape == (100, 100)
    scratch.release()
    assert not np.shares_memory(c, scratch.scratch("test", (100, 100), np.float64))
