"""Float precisions: both engines against the slow reference, bit for bit, and the formats' arithmetic."""

from __future__ import annotations

import math
import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faults import FaultMap, StuckAt
from simulator import (BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, INT8, ArrayConfig, OperandError, SystolicArray,
                       precision_by_name, precision_from_dict)
from simulator.engines.cycle import run_cycle
from simulator.precision import FORMATS, decode_reference

from ..naive import bits, naive_matmul
from ..strategies import FLOAT_PRECISIONS, fault_maps, float_arrays, float_configs, float_operands

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference overflows to inf on purpose


@settings(max_examples=300)
@given(data=st.data())
def test_float_engines_equal_reference(data):
    """Random shapes, faults on every site (several per PE), both mitigations, special values."""
    cfg = data.draw(float_configs())
    fm = data.draw(fault_maps(cfg))
    x, w = data.draw(float_operands(cfg))
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        want = bits(naive_matmul(x, w, fm.masks, mitigation == "bypass", cfg.precision))
        for engine in ("cycle", "fast"):
            got = arr.matmul(x, w, engine=engine).out
            assert got.dtype == np.float32
            np.testing.assert_array_equal(bits(got), want, err_msg=f"{engine} {mitigation} {cfg}")


@settings(max_examples=25)
@given(data=st.data())
def test_float_fast_equals_cycle_across_blocks_and_folds(data):
    """More input vectors than a fast-engine block (64), several folds each way, dense faults."""
    cfg = ArrayConfig(data.draw(st.integers(2, 9)), data.draw(st.integers(2, 9)), data.draw(st.sampled_from(FLOAT_PRECISIONS)))
    fm = data.draw(fault_maps(cfg, max_faults=30))
    m, k, n = data.draw(st.integers(60, 140)), data.draw(st.integers(1, 30)), data.draw(st.integers(1, 30))
    x = data.draw(float_arrays(cfg.precision, (m, k)))
    w = data.draw(float_arrays(cfg.precision, (k, n)))
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        np.testing.assert_array_equal(bits(arr.matmul(x, w, "fast").out), bits(arr.matmul(x, w, "cycle").out))


def _array_order_loop(x, w, R):
    """Fault-free FP32 as a plain sequential float32 loop in the array's order of additions."""
    M, K = x.shape
    N = w.shape[1]
    y = np.zeros((M, N), np.float32)
    with np.errstate(all="ignore"):
        for m in range(M):
            for n in range(N):
                total = np.float32(0.0)
                for k0 in range(0, K, R):
                    s = np.float32(0.0)
                    for k in range(k0, k0 + R):  # idle rows add +0 * +0
                        s = np.float32(s + (x[m, k] * w[k, n] if k < K else np.float32(0.0)))
                    total = np.float32(total + s)
                y[m, n] = np.nan if total != total else total
    return y


@settings(max_examples=60)
@given(data=st.data())
def test_fault_free_fp32_is_a_sequential_loop_in_array_order(data):
    cfg = ArrayConfig(data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)), FP32)
    x, w = data.draw(float_operands(cfg, max_k=20))
    want = _array_order_loop(x, w, cfg.rows)
    want[np.isnan(want)] = np.float32(np.nan)  # canonical quiet NaN 0x7FC00000
    for engine in ("cycle", "fast"):
        np.testing.assert_array_equal(bits(SystolicArray(cfg).matmul(x, w, engine).out), bits(want))


def test_the_order_of_additions_is_the_array_s():
    """1 + 2**24 - 2**24 is 0 or 1 depending on the order: the array adds row by row, folds in order."""
    x = np.array([[1.0, 2.0**24, -(2.0**24)]], np.float32)
    w = np.ones((3, 1), np.float32)
    # one fold: ((0 + 1) + 2**24) - 2**24 = 0 in float32 (1 is lost against 2**24)
    assert SystolicArray(ArrayConfig(3, 1, FP32)).matmul(x, w).out[0, 0] == 0.0
    # folds of one row each: the same order, the same 0
    assert SystolicArray(ArrayConfig(1, 1, FP32)).matmul(x, w).out[0, 0] == 0.0
    # a row order with the big ones first keeps the 1
    assert SystolicArray(ArrayConfig(3, 1, FP32)).matmul(x[:, ::-1].copy(), w).out[0, 0] == 1.0


@pytest.mark.parametrize("prec", FLOAT_PRECISIONS)
def test_special_values(prec):
    dt = prec.operand_dtypes[0]
    arr = SystolicArray(ArrayConfig(2, 2, prec))
    big = float(ml_dtypes.finfo(dt).max)
    x = np.array([[1.0, -0.0], [big, big], [np.nan, 1.0], [-0.0, -0.0]], np.float32).astype(dt)
    w = np.array([[-0.0], [1.0]], np.float32).astype(dt)
    for engine in ("cycle", "fast"):
        out = arr.matmul(x, w, engine).out[:, 0]
        assert bits(out[[0]])[0] == 0  # +0 + (-0) = +0: a chain starts at +0.0
        assert math.isnan(out[2]) and bits(out[[2]])[0] == 0x7FC00000  # canonical quiet NaN
        assert bits(out[[3]])[0] == 0  # -0 * -0 + -0 * 1 = +0 + ... = +0


def test_subnormal_products_are_kept():
    """No flush to zero: the smallest FP32 subnormal times 1 stays itself; squared it rounds to 0."""
    tiny = np.array([1], np.int32).view(np.float32)[0]
    x = np.array([[tiny, tiny]], np.float32)
    for engine in ("cycle", "fast"):
        out = SystolicArray(ArrayConfig(2, 1, FP32)).matmul(x, np.array([[1.0], [1.0]], np.float32), engine).out
        assert out[0, 0] == np.float32(2 * tiny)
        out = SystolicArray(ArrayConfig(2, 1, FP32)).matmul(x, np.array([[tiny], [0.0]], np.float32), engine).out
        assert bits(out)[0, 0] == 0


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_format_decoding_matches_ml_dtypes(fmt):
    """The reference decoder (from the formats' definitions) and the engines' tables agree on every pattern."""
    f = FORMATS[fmt]
    if f.bits == 32:
        rng = np.random.default_rng(0)
        pats = np.concatenate([rng.integers(-(2**31), 2**31, 5000), [0, -(2**31), 1, 0x7F800000, 0x7FC00001]])
        vals = pats.astype(np.int32).view(np.float32)
    else:
        pats = np.arange(1 << f.bits)
        vals = pats.astype(f"u{f.bits // 8}").view(f.dtype).astype(np.float32)
    for p, v in zip(pats, vals):
        ref = decode_reference(int(p), fmt)
        assert (math.isnan(ref) and math.isnan(v)) or (ref == v and math.copysign(1, ref) == math.copysign(1, v)), (p, ref, v)


def test_e4m3_has_no_infinity_and_one_nan_per_sign():
    nans = [p for p in range(256) if math.isnan(decode_reference(p, "fp8_e4m3"))]
    assert nans == [0x7F, 0xFF]
    assert max(decode_reference(p, "fp8_e4m3") for p in range(256) if p not in nans) == 448.0
    assert max(decode_reference(p, "fp8_e5m2") for p in range(256)) == math.inf


@pytest.mark.parametrize("n_workers", [1, 2, 3, 5])
def test_cycle_engine_workers_keep_the_fold_order(n_workers):
    """Workers split folds mid-way through a column fold: the float sum must stay in fold order."""
    rng = np.random.default_rng(3)
    cfg = ArrayConfig(2, 3, FP32)
    x = (rng.standard_normal((5, 13)) * 10.0 ** rng.integers(-8, 8, (5, 13))).astype(np.float32)
    w = (rng.standard_normal((13, 7)) * 10.0 ** rng.integers(-8, 8, (13, 7))).astype(np.float32)
    fm = FaultMap.random(cfg, 0.5, seed=1)
    want = bits(naive_matmul(x, w, fm.masks, False, FP32))
    prec = cfg.precision
    out, _ = run_cycle(prec.patterns(x), prec.patterns(w), fm.masks, np.zeros(cfg.shape, np.uint8), prec.kernels(),
                       n_workers)
    np.testing.assert_array_equal(bits(prec.output(out)), want)


@pytest.mark.parametrize("prec", [FP32, BF16])
def test_products_overflow_to_inf_and_inf_minus_inf_is_nan(prec):
    dt = prec.operand_dtypes[0]
    big = float(ml_dtypes.finfo(dt).max)
    arr = SystolicArray(ArrayConfig(2, 1, prec))
    for engine in ("cycle", "fast"):
        assert arr.matmul(np.array([[big, 1.0]], np.float32).astype(dt), np.array([[big], [1.0]], np.float32).astype(dt),
                          engine).out[0, 0] == np.inf
        out = arr.matmul(np.array([[big, big]], np.float32).astype(dt), np.array([[big], [-big]], np.float32).astype(dt),
                         engine).out
        assert bits(out)[0, 0] == 0x7FC00000


def test_fp16_products_never_overflow_fp32():
    big = 65504.0
    out = SystolicArray(ArrayConfig(1, 1, FP16)).matmul(np.array([[big]], np.float16), np.array([[big]], np.float16)).out
    assert out[0, 0] == np.float32(big * big)


def test_stuck_exponent_bit_of_a_psum():
    """Bit 30 of a psum stuck at 0 at the bottom of column 0: 1 + 1 = 2.0 (exponent 0x80) becomes +0.0."""
    cfg = ArrayConfig(2, 2, BF16)
    fm = FaultMap.empty(cfg).with_fault(1, 0, StuckAt("psum", 30, 0))
    x = np.ones((3, 2), ml_dtypes.bfloat16)
    w = np.ones((2, 2), ml_dtypes.bfloat16)
    for engine in ("cycle", "fast"):
        out = SystolicArray(cfg, fm).matmul(x, w, engine).out
        assert (out[:, 1] == 2.0).all() and (bits(out)[:, 0] == 0).all()
        assert (SystolicArray(cfg, fm, "bypass").matmul(x, w, engine).out[:, 0] == 1.0).all()  # one product left


def test_operands_of_the_wrong_dtype_name_both():
    arr = SystolicArray(ArrayConfig(2, 2, BF16))
    with pytest.raises(OperandError, match=r"x must have dtype bfloat16 for bf16; got float16"):
        arr.matmul(np.ones((2, 2), np.float16), np.ones((2, 2), ml_dtypes.bfloat16))
    with pytest.raises(OperandError, match=r"w must have dtype float8_e5m2 for fp8_e5m2; got float32"):
        SystolicArray(ArrayConfig(2, 2, FP8_E5M2)).matmul(np.ones((2, 2), ml_dtypes.float8_e5m2), np.ones((2, 2), np.float32))
    with pytest.raises(OperandError, match=r"x must have dtype int8 for int8x8->int32; got float16"):
        SystolicArray(ArrayConfig(2, 2)).matmul(np.ones((2, 2), np.float16), np.ones((2, 2), np.int8))


def test_fault_bits_beyond_a_float_register_are_refused():
    cfg = ArrayConfig(2, 2, FP8_E4M3)
    with pytest.raises(Exception, match=r"bit 8 does not exist in the 8-bit act register; allowed: \[0, 7\]"):
        FaultMap.empty(cfg).with_fault(0, 0, StuckAt("act", 8, 1))
    FaultMap.empty(cfg).with_fault(0, 0, StuckAt("psum", 31, 1))  # product and psum are FP32 registers
    assert FP16.widths() == (16, 16, 32, 32) and FP32.widths() == (32, 32, 32, 32)


def test_a_map_of_another_precision_is_refused():
    fp16 = FaultMap.random(ArrayConfig(4, 4, FP16), 0.5, seed=0)
    with pytest.raises(Exception, match="built for precision fp16; this array computes bf16"):
        SystolicArray(ArrayConfig(4, 4, BF16), fp16)


def test_precisions_by_name_and_description():
    for p in (INT8, FP32, FP16, BF16, FP8_E4M3, FP8_E5M2):
        assert precision_by_name(p.name) is p
        assert precision_from_dict(p.to_dict()) == p
    assert precision_by_name("int8") is INT8
    with pytest.raises(ValueError, match="precision must be one of .*got 'fp64'"):
        precision_by_name("fp64")


def test_bit_fields_are_named():
    assert [FP16.field_of_bit("act", b) for b in (15, 14, 10, 9, 0)] == ["sign", "exponent", "exponent", "mantissa", "mantissa"]
    assert [BF16.field_of_bit("weight", b) for b in (15, 7, 6)] == ["sign", "exponent", "mantissa"]
    assert [FP8_E4M3.field_of_bit("psum", b) for b in (31, 23, 22)] == ["sign", "exponent", "mantissa"]


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 7)).astype(np.float16)
    w = rng.standard_normal((7, 5)).astype(np.float16)
    x0, w0 = x.copy(), w.copy()
    arr = SystolicArray(ArrayConfig(3, 2, FP16), FaultMap.random(ArrayConfig(3, 2, FP16), 0.5, seed=0))
    with warnings.catch_warnings():
        for engine in ("cycle", "fast"):
            arr.matmul(x, w, engine)
    assert np.array_equal(x.view(np.int16), x0.view(np.int16)) and np.array_equal(w.view(np.int16), w0.view(np.int16))
