"""Transient bit flips: both engines against the reference, and what one flip can reach."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faults import FaultMap, StuckAt
from simulator import BF16, FLIP_DTYPE, FP16, FP32, INT8, ArrayConfig, IntPrecision, OperandError, SystolicArray

from ..naive import bits, naive_matmul
from ..strategies import FLOAT_PRECISIONS, PRECISIONS, fault_maps, flip_lists, float_operands, operands

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@settings(max_examples=250)
@given(data=st.data())
def test_flips_equal_reference_every_site_and_format(data):
    prec = data.draw(st.sampled_from(PRECISIONS + FLOAT_PRECISIONS))
    cfg = ArrayConfig(data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)), prec)
    fm = data.draw(fault_maps(cfg, max_faults=6))
    x, w = data.draw(float_operands(cfg, max_m=7, max_k=11, max_n=11) if prec in FLOAT_PRECISIONS
                     else operands(cfg, max_m=7, max_k=11, max_n=11))
    flips = data.draw(flip_lists(cfg, *x.shape, w.shape[1]))
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        want = bits(naive_matmul(x, w, fm.masks, mitigation == "bypass", prec, flips))
        for engine in ("cycle", "fast"):
            np.testing.assert_array_equal(bits(arr.matmul(x, w, engine, flips=flips).out), want,
                                          err_msg=f"{engine} {mitigation} {flips}")


@settings(max_examples=20)
@given(data=st.data())
def test_many_flips_on_larger_gemms(data):
    prec = data.draw(st.sampled_from([INT8, FP16, BF16]))
    cfg = ArrayConfig(data.draw(st.integers(2, 8)), data.draw(st.integers(2, 8)), prec)
    x, w = data.draw(float_operands(cfg, max_m=80, max_k=25, max_n=25) if prec != INT8
                     else operands(cfg, max_m=80, max_k=25, max_n=25))
    flips = data.draw(flip_lists(cfg, *x.shape, w.shape[1], max_flips=60))
    arr = SystolicArray(cfg, data.draw(fault_maps(cfg, max_faults=10)))
    np.testing.assert_array_equal(bits(arr.matmul(x, w, "fast", flips=flips).out),
                                  bits(arr.matmul(x, w, "cycle", flips=flips).out))


def _gemm(prec=INT8, m=6, k=7, n=5, seed=0):
    rng = np.random.default_rng(seed)
    if prec == INT8:
        return rng.integers(-100, 100, (m, k), dtype=np.int8), rng.integers(-100, 100, (k, n), dtype=np.int8)
    dt = prec.operand_dtypes[0]
    return rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt)


def _mac_cycle(cfg, M, fold, r, c, m):
    return fold * cfg.fold_cycles(M) + cfg.rows + r + c + m


@pytest.mark.parametrize("prec", [INT8, FP32, FP16])
@pytest.mark.parametrize("engine", ["cycle", "fast"])
def test_a_psum_flip_changes_exactly_one_output(prec, engine):
    cfg = ArrayConfig(4, 3, prec)
    x, w = _gemm(prec)
    arr = SystolicArray(cfg)
    clean = bits(arr.matmul(x, w, engine).out)
    # fold 0 is (kf 0, nf 0); PE (2, 1), input vector 3 -> output (3, 1)
    got = bits(arr.matmul(x, w, engine, flips=[(_mac_cycle(cfg, 6, 0, 2, 1, 3), 2, 1, "psum", 20)]).out)
    changed = np.argwhere(got != clean)
    assert changed.tolist() == [[3, 1]]


@pytest.mark.parametrize("engine", ["cycle", "fast"])
def test_an_act_flip_reaches_one_input_vector_to_the_right(engine):
    cfg = ArrayConfig(4, 3)
    x, w = _gemm(INT8, n=3)
    arr = SystolicArray(cfg)
    clean = arr.matmul(x, w, engine).out
    got = arr.matmul(x, w, engine, flips=[(_mac_cycle(cfg, 6, 0, 1, 1, 2), 1, 1, "act", 6)]).out
    assert sorted(map(tuple, np.argwhere(got != clean).tolist())) == [(2, 1), (2, 2)]


@pytest.mark.parametrize("engine", ["cycle", "fast"])
def test_a_weight_flip_lasts_until_the_next_load(engine):
    cfg = ArrayConfig(4, 3)
    x, w = _gemm(INT8, k=8, n=3)  # 2 row folds: (kf 0, nf 0) then (kf 1, nf 0)
    arr = SystolicArray(cfg)
    clean = arr.matmul(x, w, engine).out
    during_load = arr.matmul(x, w, engine, flips=[(1, 2, 0, "weight", 6)]).out
    assert np.argwhere(during_load != clean)[:, 1].tolist() == [0] * 6  # every input vector of column 0
    mid_stream = arr.matmul(x, w, engine, flips=[(_mac_cycle(cfg, 6, 0, 2, 0, 4), 2, 0, "weight", 6)]).out
    assert sorted(np.argwhere(mid_stream != clean)[:, 0].tolist()) == [4, 5]  # from vector 4 on
    after_last_mac = arr.matmul(x, w, engine, flips=[(_mac_cycle(cfg, 6, 0, 2, 0, 5) + 1, 2, 0, "weight", 6)]).out
    np.testing.assert_array_equal(after_last_mac, clean)  # the next load replaces the register: reaches nothing


@pytest.mark.parametrize("engine", ["cycle", "fast"])
def test_flips_that_reach_nothing(engine):
    cfg = ArrayConfig(4, 4, BF16)
    x, w = _gemm(BF16, m=5, k=4, n=6)  # column fold 1 uses 2 of 4 columns
    fm = FaultMap.empty(cfg).with_fault(1, 1, StuckAt("product", 3, 1))
    byp = SystolicArray(cfg, fm, "bypass")
    clean = bits(byp.matmul(x, w, engine).out)
    L = cfg.fold_cycles(5)
    flips = [
        (L + 4 + 1 + 3 + 0, 1, 3, "psum", 30),  # fold 1 (nf 1), column 3: discarded
        (4 + 1 + 1 + 2, 1, 1, "psum", 30),  # the bypassed PE
        (4 + 1 + 1 + 2, 1, 1, "act", 14),
        (2, 0, 0, "act", 14),  # a load cycle: no input vector there
        (L - 1, 0, 0, "psum", 31),  # a drain cycle of PE (0, 0): its input vectors are done
    ]
    for f in flips:
        np.testing.assert_array_equal(bits(byp.matmul(x, w, engine, flips=[f]).out), clean, err_msg=str(f))


def test_a_flip_before_a_stuck_bit_stays_stuck():
    cfg = ArrayConfig(1, 1)
    fm = FaultMap.empty(cfg).with_fault(0, 0, StuckAt("psum", 4, 0))
    x, w = np.array([[3]], np.int8), np.array([[5]], np.int8)  # 15 = 0b1111, bit 4 stuck at 0
    arr = SystolicArray(cfg, fm)
    for engine in ("cycle", "fast"):
        assert arr.matmul(x, w, engine, flips=[(1, 0, 0, "psum", 4)]).out[0, 0] == 15  # flipped to 31, forced back
        assert arr.matmul(x, w, engine, flips=[(1, 0, 0, "psum", 0)]).out[0, 0] == 14


def test_two_flips_of_one_bit_cancel():
    cfg = ArrayConfig(2, 2)
    x, w = _gemm(INT8, m=3, k=2, n=2)
    arr = SystolicArray(cfg)
    clean = arr.matmul(x, w).out
    for engine in ("cycle", "fast"):
        twice = [(3, 1, 1, "product", 9), (3, 1, 1, "product", 9)]
        np.testing.assert_array_equal(arr.matmul(x, w, engine, flips=twice).out, clean)


def test_flip_arrays_and_named_tuples_are_accepted():
    cfg = ArrayConfig(3, 3)
    x, w = _gemm(INT8, m=4, k=3, n=3)
    arr = SystolicArray(cfg)
    as_list = [(5, 1, 1, "psum", 3), (6, 0, 2, 1, 2)]
    as_array = np.array([(5, 1, 1, 3, 3), (6, 0, 2, 1, 2)], FLIP_DTYPE)
    np.testing.assert_array_equal(arr.matmul(x, w, flips=as_list).out, arr.matmul(x, w, flips=as_array).out)


def test_output_flips():
    x, w = _gemm(FP32, m=3, k=4, n=2)
    arr = SystolicArray(ArrayConfig(2, 2, FP32))
    clean = bits(arr.matmul(x, w).out)
    for engine in ("cycle", "fast"):
        got = bits(arr.matmul(x, w, engine, out_flips=[(1, 0, 31), (2, 1, 0)]).out)
        want = clean.copy()
        want[1, 0] ^= np.int32(-(2**31))
        want[2, 1] ^= 1
        np.testing.assert_array_equal(got, want)
    narrow = SystolicArray(ArrayConfig(2, 2, IntPrecision(8, 8, 16, 20)))
    xi, wi = _gemm(INT8, m=2, k=2, n=2)
    base = narrow.matmul(xi, wi).out
    assert narrow.matmul(xi, wi, out_flips=[(0, 0, 19)]).out[0, 0] == ((int(base[0, 0]) ^ (1 << 19)) + 2**19) % 2**20 - 2**19


def test_bad_flips_are_refused_with_the_bad_value():
    cfg = ArrayConfig(2, 2, FP16)
    x, w = _gemm(FP16, m=3, k=2, n=2)
    arr = SystolicArray(cfg)
    n_cycles = arr.matmul(x, w).n_cycles
    cases = [
        ([(n_cycles, 0, 0, "psum", 0)], rf"cycle {n_cycles} is out of range; this GEMM has cycles: \[0, {n_cycles - 1}\]"),
        ([(0, 2, 0, "psum", 0)], r"r 2 is out of range; allowed: \[0, 1\]"),
        ([(0, 0, 0, "act", 16)], r"bit 16 does not exist in the 16-bit act register of fp16; allowed: \[0, 15\]"),
        ([(0, 0, 0, "acc", 1)], r"flip site must be one of \['act', 'weight', 'product', 'psum'\].*'acc'"),
        ([(0, 0, 0, "psum")], r"a flip is \(cycle, r, c, site, bit\); got \(0, 0, 0, 'psum'\)"),
        ([(0.5, 0, 0, "psum", 1)], r"flip cycle must be an int; got 0.5"),
        (7, r"flips must be a list of"),
    ]
    for flips, match in cases:
        for engine in ("cycle", "fast"):
            with pytest.raises(OperandError, match=match):
                arr.matmul(x, w, engine, flips=flips)
    with pytest.raises(OperandError, match=r"output flip \(3, 0, 0\): m 3 is out of range; allowed: \[0, 2\]"):
        arr.matmul(x, w, out_flips=[(3, 0, 0)])
    with pytest.raises(OperandError, match=r"bit 32 is out of range; allowed: \[0, 31\]"):
        arr.matmul(x, w, out_flips=[(0, 0, 32)])


def test_no_flips_is_the_run_without_flips():
    cfg = ArrayConfig(3, 2, FP16)
    x, w = _gemm(FP16, m=4, k=5, n=3)
    fm = FaultMap.random(cfg, 0.5, seed=2)
    arr = SystolicArray(cfg, fm)
    for engine in ("cycle", "fast"):
        np.testing.assert_array_equal(bits(arr.matmul(x, w, engine, flips=[]).out), bits(arr.matmul(x, w, engine).out))


@pytest.mark.parametrize("prec", [INT8, BF16])
def test_weight_flips_reaching_many_vectors_take_the_column_path(prec):
    """A weight flip early in a fold reaches every later input vector of its column: more than the
    replay's column threshold (32), so the fast engine recomputes whole columns in SIMD lanes."""
    cfg = ArrayConfig(3, 3, prec)
    x, w = _gemm(prec, m=90, k=7, n=5, seed=4)
    fm = FaultMap.random(cfg, 0.5, seed=5)
    L = cfg.fold_cycles(90)
    flips = [(1, 1, 1, "weight", 3), (L + 3 + 2 + 0 + 10, 2, 0, "weight", 5),  # load cycle; fold 1, vector 10 on
             (3 + 0 + 1 + 40, 0, 1, "psum", 7), (3 + 1 + 1 + 50, 1, 1, "act", 2)]  # more flips in those columns
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        want = bits(naive_matmul(x, w, fm.masks, mitigation == "bypass", prec, flips))
        for engine in ("cycle", "fast"):
            np.testing.assert_array_equal(bits(arr.matmul(x, w, engine, flips=flips).out), want)
