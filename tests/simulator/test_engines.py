"""Both engines against the slow NumPy reference, bit for bit, and the timing model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faults import FaultMap, StuckAt
from simulator import INT8, ArrayConfig, IntPrecision, SystolicArray, gemm_timing

from ..strategies import PRECISIONS, configs, fault_maps, operands
from ..naive import naive_matmul, sext


def wrap(a, bits):
    return np.vectorize(lambda v: sext(int(v), bits), otypes=[np.int64])(a)


def exact(x, w, bits):
    return wrap(x.astype(np.int64) @ w.astype(np.int64), bits)


@settings(max_examples=250)
@given(data=st.data())
def test_engines_equal_reference(data):
    cfg = data.draw(configs())
    fm = data.draw(fault_maps(cfg))
    x, w = data.draw(operands(cfg))
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        ref = naive_matmul(x, w, fm.masks, mitigation == "bypass", cfg.precision)
        slow = arr.matmul(x, w, engine="cycle")
        fast = arr.matmul(x, w, engine="fast")
        np.testing.assert_array_equal(slow.out, ref)
        np.testing.assert_array_equal(fast.out, ref)
        assert slow.n_cycles == fast.n_cycles


@settings(max_examples=60)
@given(data=st.data())
def test_dense_faults_larger_arrays(data):
    """Many faults of every site on arrays big enough for several per row and column."""
    cfg = data.draw(configs(max_dim=12))
    fm = data.draw(fault_maps(cfg, max_faults=40))
    x, w = data.draw(operands(cfg, max_m=12, max_k=40, max_n=30))
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        np.testing.assert_array_equal(arr.matmul(x, w, "cycle").out, arr.matmul(x, w, "fast").out)


@settings(max_examples=80)
@given(data=st.data())
def test_fault_free_is_exact_matmul(data):
    cfg = data.draw(configs(max_dim=9))
    x, w = data.draw(operands(cfg, max_k=60))
    arr = SystolicArray(cfg)
    want = exact(x, w, cfg.precision.acc_bits)
    for engine in ("cycle", "fast"):
        np.testing.assert_array_equal(arr.matmul(x, w, engine).out, want)


@settings(max_examples=80)
@given(data=st.data())
def test_bypass_equals_masked_weights(data):
    """Bypass == the fault-free array with the weights on faulty PEs (k mod R, n mod C) zeroed."""
    cfg = data.draw(configs())
    fm = data.draw(fault_maps(cfg, max_faults=15))
    x, w = data.draw(operands(cfg))
    k, n = np.indices(w.shape)
    masked = np.where(fm.faulty[k % cfg.rows, n % cfg.cols], 0, w).astype(np.int8)
    want = SystolicArray(cfg).matmul(x, masked, "cycle").out
    arr = SystolicArray(cfg, fm, "bypass")
    for engine in ("cycle", "fast"):
        np.testing.assert_array_equal(arr.matmul(x, w, engine).out, want)


def test_overflow_wraps_int32():
    """A psum stuck at bit 30 in every row pushes the int32 sums over the edge: they wrap."""
    cfg = ArrayConfig(4, 3)
    fm = FaultMap.empty(cfg)
    for r in range(4):
        for c in range(3):
            fm = fm.with_fault(r, c, StuckAt("psum", 30, 1))
    x = np.full((5, 8), 127, np.int8)
    w = np.full((8, 3), 127, np.int8)
    arr = SystolicArray(cfg, fm)
    ref = naive_matmul(x, w, fm.masks, False, cfg.precision)
    assert (ref < 0).all()  # two folds of ~2**30 each: the positive sum wrapped
    for engine in ("cycle", "fast"):
        np.testing.assert_array_equal(arr.matmul(x, w, engine).out, ref)


@settings(max_examples=40)
@given(data=st.data())
def test_cycles_from_running_equal_formula(data):
    cfg = data.draw(configs(max_dim=8))
    x, w = data.draw(operands(cfg, max_m=20, max_k=30, max_n=30))
    res = SystolicArray(cfg, data.draw(fault_maps(cfg))).matmul(x, w, "cycle")
    (m, k), n = x.shape, w.shape[1]
    kf, nf = -(-k // cfg.rows), -(-n // cfg.cols)
    assert res.folds == kf * nf
    assert list(res.fold_cycles) == [2 * cfg.rows + cfg.cols + m - 2] * (kf * nf)
    assert res.n_cycles == kf * nf * (2 * cfg.rows + cfg.cols + m - 2) == gemm_timing(cfg, m, k, n).n_cycles


def test_trace_counts_every_valid_mac():
    cfg = ArrayConfig(3, 4)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (5, 7), dtype=np.int8)
    w = rng.integers(-128, 128, (7, 6), dtype=np.int8)
    res = SystolicArray(cfg).matmul(x, w, "cycle", trace=True)
    assert res.trace.shape == (res.n_cycles, 3, 4)
    # each input vector visits every PE once per fold
    assert res.trace.sum() == res.folds * 5 * 12
    per_fold = 2 * 3 + 4 + 5 - 2
    busy = res.trace.reshape(res.folds, per_fold, 3, 4).any(axis=(2, 3))
    assert not busy[:, :3].any()  # weight load: R idle cycles
    assert busy[:, 3].all() and busy[:, -1].all()  # streaming starts after load, drain ends it
    # PE (r, c) first works in stream cycle r + c
    first = np.argmax(res.trace[:per_fold], axis=0)
    np.testing.assert_array_equal(first, 3 + np.add.outer(np.arange(3), np.arange(4)))


def test_trace_does_not_change_results():
    cfg = ArrayConfig(4, 4)
    fm = FaultMap.random(cfg, 0.25, seed=3)
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (6, 9), dtype=np.int8)
    w = rng.integers(-128, 128, (9, 5), dtype=np.int8)
    arr = SystolicArray(cfg, fm)
    np.testing.assert_array_equal(arr.matmul(x, w, "cycle", trace=True).out, arr.matmul(x, w, "cycle").out)


def test_single_fault_effect_is_local():
    """A psum fault corrupts only outputs of its column; an act fault its row's columns to the right."""
    cfg = ArrayConfig(4, 4)
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (16, 4), dtype=np.int8)
    w = rng.integers(-128, 128, (4, 4), dtype=np.int8)
    clean = x.astype(np.int64) @ w
    psum = SystolicArray(cfg, FaultMap.empty(cfg).with_fault(1, 2, StuckAt("psum", 20, 1))).matmul(x, w).out
    assert set(np.nonzero((psum != clean).any(axis=0))[0]) == {2}
    act = SystolicArray(cfg, FaultMap.empty(cfg).with_fault(2, 1, StuckAt("act", 6, 1))).matmul(x, w).out
    assert set(np.nonzero((act != clean).any(axis=0))[0]) <= {1, 2, 3}
    assert (act[:, 1:] != clean[:, 1:]).any() and (act[:, 0] == clean[:, 0]).all()


@pytest.mark.parametrize("precision", PRECISIONS, ids=lambda p: p.name)
def test_fast_engine_wide_gemm_against_cycle(precision):
    """A multi-fold GEMM with every kind of fault, beyond hypothesis' small shapes."""
    cfg = ArrayConfig(16, 12, precision)
    fm = FaultMap.random(cfg, 0.15, seed=11, faults_per_pe=2)
    rng = np.random.default_rng(5)
    lo, hi = precision.act_range()
    x = rng.integers(lo, hi + 1, (70, 50), dtype=np.int8)
    lo, hi = precision.weight_range()
    w = rng.integers(lo, hi + 1, (50, 40), dtype=np.int8)
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        np.testing.assert_array_equal(arr.matmul(x, w, "fast").out, arr.matmul(x, w, "cycle").out)


def test_fast_engine_long_reduction_is_exact():
    """K beyond one float32-exact chunk (1,024 int8 products) still sums exactly."""
    cfg = ArrayConfig(64, 8)
    x = np.full((3, 3000), -128, np.int8)
    w = np.full((3000, 5), -128, np.int8)
    fm = FaultMap.random(cfg, 0.05, seed=1, sites=("psum",))
    arr = SystolicArray(cfg, fm)
    got = arr.matmul(x, w, "fast").out
    np.testing.assert_array_equal(got, naive_matmul(x, w, fm.masks, False, INT8))
    np.testing.assert_array_equal(SystolicArray(cfg).matmul(x, w).out, np.full((3, 5), 3000 * 16384))


def test_parallel_and_serial_cycle_engine_agree():
    """Folds split over threads give the same bits as one thread (trace forces one)."""
    cfg = ArrayConfig(4, 4, IntPrecision(8, 8, 16, 18))
    fm = FaultMap.random(cfg, 0.3, seed=2)
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (9, 30), dtype=np.int8)
    w = rng.integers(-128, 128, (30, 11), dtype=np.int8)
    arr = SystolicArray(cfg, fm)
    np.testing.assert_array_equal(arr.matmul(x, w, "cycle").out, arr.matmul(x, w, "cycle", trace=True).out)
