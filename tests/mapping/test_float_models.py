"""Models in float precisions: operands rounded to the format, FP32 accumulation on the array."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faults import FaultMap
from mapping import layer_report, quantize, run_model
from simulator import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, INT8, ArrayConfig, SystolicArray
from training import evaluate, load_dataset, pretrained


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("digits", seed=0)
    return data, pretrained("lenet5", data, seed=0)


@pytest.mark.parametrize("prec, within", [(FP32, 0.0), (FP16, 0.005), (BF16, 0.01), (FP8_E4M3, 0.02), (FP8_E5M2, 0.03)])
def test_float_formats_keep_the_float_accuracy(setup, prec, within):
    data, model = setup
    float_acc = evaluate(model, data.x_test, data.y_test)
    acc = run_model(model, data, SystolicArray(ArrayConfig(16, 16, prec))).accuracy
    assert acc >= float_acc - within, (prec.name, acc, float_acc)


def test_fp32_on_the_array_equals_the_float_model_s_predictions(setup):
    """FP32 operands and FP32 sums (in another order than torch's): the same predictions."""
    data, model = setup
    res = run_model(model, data, SystolicArray(ArrayConfig(16, 16, FP32)), return_logits=True)
    with torch.no_grad():
        ref = model.eval()(data.x_test.float()).numpy()
    np.testing.assert_allclose(res.logits, ref, rtol=1e-4, atol=1e-4)


def test_weights_are_the_format_s_rounding(setup):
    _, model = setup
    qm = quantize(model, torch.zeros(4, 1, 8, 8), BF16)
    name, layer = qm.layers[0]
    w = layer.weight.detach().reshape(layer.weight.shape[0], -1).T.float().numpy()
    assert layer.sim.w_q.dtype == BF16.operand_dtypes[0]
    np.testing.assert_array_equal(layer.sim.w_q.astype(np.float32), w.astype(BF16.operand_dtypes[0]).astype(np.float32))


def test_engines_agree_on_a_faulty_float_chip(setup):
    data, model = setup
    cfg = ArrayConfig(8, 8, FP16)
    arr = SystolicArray(cfg, FaultMap.random(cfg, 0.05, seed=4))
    x = (data.x_test[:6], data.y_test[:6])
    fast = run_model(model, x, arr, return_logits=True, calib=data.x_train[:64])
    slow = run_model(model, x, arr, engine="cycle", return_logits=True, calib=data.x_train[:64])
    np.testing.assert_array_equal(fast.logits.view(np.int32), slow.logits.view(np.int32))


def test_a_stuck_exponent_bit_costs_accuracy_and_bypass_restores_it(setup):
    data, model = setup
    cfg = ArrayConfig(16, 16, BF16)
    from faults import StuckAt
    fm = FaultMap.empty(cfg).with_fault(0, 0, StuckAt("psum", 30, 1))
    clean = run_model(model, data, SystolicArray(cfg)).accuracy
    faulty = run_model(model, data, SystolicArray(cfg, fm)).accuracy
    byp = run_model(model, data, SystolicArray(cfg, fm, "bypass")).accuracy
    assert faulty < clean - 0.3 and byp > clean - 0.02, (clean, faulty, byp)


def test_report_counts_operand_bytes_of_the_precision(setup):
    _, model = setup
    rows = {p.name: layer_report(model, (1, 8, 8), ArrayConfig(16, 16, p), batch=4)[0] for p in (INT8, FP16, FP32)}
    r8, r16, r32 = rows["int8x8->int32"], rows["fp16"], rows["fp32"]
    assert r8.bytes_moved == r8.m * r8.k + r8.k * r8.n + 4 * r8.m * r8.n
    assert r16.bytes_moved == 2 * (r8.m * r8.k + r8.k * r8.n) + 4 * r8.m * r8.n
    assert r32.bytes_moved == 4 * (r8.m * r8.k + r8.k * r8.n + r8.m * r8.n)
