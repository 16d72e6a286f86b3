"""``matmul_many``: G independent GEMMs equal G calls of ``matmul``, bit for bit and in cycles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import FP16, ArrayConfig, OperandError, SystolicArray

from ..strategies import PRECISIONS, fault_maps, int_arrays


@settings(max_examples=120)
@given(data=st.data())
def test_batched_gemms_equal_one_call_each(data):
    cfg = ArrayConfig(data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)), data.draw(st.sampled_from(PRECISIONS)))
    fm = data.draw(fault_maps(cfg, max_faults=6))
    g, m, k, n = (data.draw(st.integers(1, hi)) for hi in (4, 6, 12, 8))
    a_bits, w_bits = cfg.precision.act_bits, cfg.precision.weight_bits
    x = data.draw(int_arrays((g, m, k), a_bits))
    w = data.draw(int_arrays((g, k, n), w_bits))
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        got = arr.matmul_many(x, w)
        runs = [arr.matmul(x[i], w[i]) for i in range(g)]
        np.testing.assert_array_equal(got.out, np.stack([r.out for r in runs]))
        assert got.out.dtype == runs[0].out.dtype and got.n_cycles == sum(r.n_cycles for r in runs)


def test_float_batches_and_bad_shapes():
    rng = np.random.default_rng(0)
    arr = SystolicArray(ArrayConfig(3, 3, FP16))
    x, w = rng.standard_normal((2, 4, 5)).astype(np.float16), rng.standard_normal((2, 5, 3)).astype(np.float16)
    np.testing.assert_array_equal(arr.matmul_many(x, w).out, np.stack([arr.matmul(x[i], w[i]).out for i in range(2)]))
    with pytest.raises(OperandError, match="same G"):
        arr.matmul_many(x, w[:1])
    with pytest.raises(OperandError, match="dtype"):
        SystolicArray(ArrayConfig(3, 3)).matmul_many(x, w)
