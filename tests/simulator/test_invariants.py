"""Common invariants over engines and precisions, and errors that name the problem."""

from __future__ import annotations

import numpy as np
import pytest

from faults import FaultMap
from simulator import (
    ENGINES,
    ArrayConfig,
    ConfigError,
    FaultMaskError,
    IntPrecision,
    OperandError,
    SystolicArray,
    gemm_timing,
)

from ..strategies import PRECISIONS

def _operands(prec, m=7, k=13, n=9, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = prec.act_range()
    x = rng.integers(lo, hi + 1, (m, k), dtype=np.int8)
    lo, hi = prec.weight_range()
    return x, rng.integers(lo, hi + 1, (k, n), dtype=np.int8)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("precision", PRECISIONS, ids=lambda p: p.name)
@pytest.mark.parametrize("mitigation", [None, "bypass"])
def test_invariants(engine, precision, mitigation):
    cfg = ArrayConfig(5, 4, precision)
    x, w = _operands(precision)
    x0, w0 = x.copy(), w.copy()
    fm = FaultMap.random(cfg, 0.3, seed=1)
    arr = SystolicArray(cfg, fm, mitigation)
    res = arr.matmul(x, w, engine)
    np.testing.assert_array_equal(x, x0)  # inputs not mutated
    np.testing.assert_array_equal(w, w0)
    assert res.out.dtype == np.int32 and res.out.shape == (7, 9)
    np.testing.assert_array_equal(res.out, arr.matmul(x, w, engine).out)  # deterministic
    t = gemm_timing(cfg, 7, 13, 9)
    assert (res.n_cycles, res.folds) == (t.n_cycles, t.folds)
    assert res.pe_utilisation == pytest.approx(13 * 9 / (t.folds * 20))
    assert res.mac_utilisation == pytest.approx(7 * 13 * 9 / (t.n_cycles * 20))
    # identity fault map == no fault map == exact product
    clean = SystolicArray(cfg, FaultMap.empty(cfg), mitigation).matmul(x, w, engine).out
    want = (x.astype(np.int64) @ w) & ((1 << precision.acc_bits) - 1)
    want = np.where(want >> (precision.acc_bits - 1), want - (1 << precision.acc_bits), want)
    np.testing.assert_array_equal(clean, want)


@pytest.mark.parametrize("engine", ENGINES)
def test_operand_errors_name_the_problem(engine):
    arr = SystolicArray(ArrayConfig(4, 4))
    x, w = _operands(arr.cfg.precision)
    with pytest.raises(OperandError, match=r"x is \(7, 13\) and w is \(12, 9\)"):
        arr.matmul(x, w[:12], engine)
    with pytest.raises(OperandError, match=r"x must have dtype int8 for int8x8->int32; got int32"):
        arr.matmul(x.astype(np.int32), w, engine)
    with pytest.raises(OperandError, match="w must be 2-D; got shape"):
        arr.matmul(x, w[0], engine)
    with pytest.raises(OperandError, match="must be a numpy int8 array; got list"):
        arr.matmul(x.tolist(), w, engine)
    with pytest.raises(OperandError, match="must not be empty"):
        arr.matmul(x[:0], w, engine)
    narrow = SystolicArray(ArrayConfig(4, 4, IntPrecision(4, 4, 8, 16)))
    with pytest.raises(OperandError, match=r"x values must lie in \[-8, 7\]"):
        narrow.matmul(x, w, engine)


def test_config_errors_name_the_value():
    with pytest.raises(ConfigError, match=r"ArrayConfig.rows must be an int in \[1, 4096\]; got 0"):
        ArrayConfig(0, 4)
    with pytest.raises(ConfigError, match="cols .* got 2.5"):
        ArrayConfig(4, 2.5)
    with pytest.raises(ConfigError, match="product_bits must be an int in"):
        IntPrecision(8, 8, 12, 32)
    with pytest.raises(ConfigError, match="acc_bits .* got 40"):
        IntPrecision(acc_bits=40)
    arr = SystolicArray(ArrayConfig(4, 4))
    x, w = _operands(arr.cfg.precision)
    with pytest.raises(ConfigError, match="engine must be one of .* got 'rtl'"):
        arr.matmul(x, w, engine="rtl")
    with pytest.raises(ConfigError, match="mitigation must be one of .* got 'tmr'"):
        SystolicArray(ArrayConfig(4, 4), mitigation="tmr")
    with pytest.raises(ConfigError, match="trace=True needs engine='cycle'"):
        arr.matmul(x, w, trace=True)
    with pytest.raises(OperandError, match="trace would hold"):
        SystolicArray(ArrayConfig(128, 128)).matmul(np.zeros((4000, 128), np.int8), np.zeros((128, 128), np.int8),
                                                    "cycle", trace=True)


def test_fault_map_of_wrong_array_is_rejected():
    fm = FaultMap.random(ArrayConfig(4, 8), 0.2, seed=0)
    with pytest.raises(FaultMaskError, match=r"shape \(4, 2, 4, 8\); this 8x4 array needs \(4, 2, 8, 4\)"):
        SystolicArray(ArrayConfig(8, 4), fm)
    with pytest.raises(FaultMaskError, match="must provide a numpy 'masks' array"):
        SystolicArray(ArrayConfig(8, 4), faults="chip7")
    bad = FaultMap.empty(ArrayConfig(2, 2)).masks.copy()
    bad[0, 1, 0, 0] = 0x80  # act OR mask not sign-extended from 8 bits

    class Raw:
        masks = bad

    with pytest.raises(FaultMaskError, match="act masks must be sign-extended 8-bit"):
        SystolicArray(ArrayConfig(2, 2), Raw())
