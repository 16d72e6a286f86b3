"""Mapping: lowering, quantization, running models on (faulty) chips, reports, masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from faults import FaultMap
from mapping import (
    MappingError,
    QuantizedModel,
    SimConv2d,
    SimLinear,
    UnsupportedLayerError,
    apply_masks,
    bypass_masks,
    format_report,
    gemm_dims,
    layer_report,
    lowered_layers,
    quantize,
    run_model,
)
from mapping.lowering import lower_input
from mapping.quant import quantize_act, quantize_weight
from simulator import ArrayConfig, FaultMaskError, SystolicArray, read_topology, layer_timings


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 12, 3, stride=2, padding=1, dilation=1), nn.ReLU(),
        nn.Conv2d(12, 16, 2, dilation=1), nn.ReLU(), nn.Flatten(), nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 10),
    )


def inputs(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def reference_logits(qm: QuantizedModel, x: torch.Tensor) -> np.ndarray:
    """The same quantization computed independently: float64 F.conv2d / F.linear on integers."""
    def ref_forward(layer, inp):
        st = layer.sim
        xq = quantize_act(inp, st.a_scale, 8)
        scale = layer.weight.detach().double().reshape(layer.weight.shape[0], -1).abs().amax(1) / 127
        wq = torch.clamp(torch.round(layer.weight.double() / scale.reshape(-1, *[1] * (layer.weight.dim() - 1))), -127, 127)
        s32, b32 = (st.a_scale * scale).float(), layer.bias.float()
        if isinstance(layer, nn.Conv2d):
            acc = F.conv2d(xq, wq, None, layer.stride, layer.padding, layer.dilation).float()
            return (acc.permute(0, 2, 3, 1) * s32 + b32).permute(0, 3, 1, 2)
        return F.linear(xq, wq).float() * s32 + b32

    saved = SimLinear.forward, SimConv2d.forward
    SimLinear.forward = SimConv2d.forward = ref_forward
    try:
        with torch.no_grad():
            return qm.module(x).numpy()
    finally:
        SimLinear.forward, SimConv2d.forward = saved


@pytest.mark.parametrize("rows, cols", [(16, 16), (5, 7)])
def test_int8_model_on_fault_free_array_equals_independent_reference(rows, cols):
    model = small_cnn()
    x, y = inputs()
    qm = quantize(model, x)
    res = run_model(qm, (x, y), SystolicArray(ArrayConfig(rows, cols)), return_logits=True)
    np.testing.assert_array_equal(res.logits, reference_logits(qm, x))
    with torch.no_grad():
        float_pred = model(x).argmax(1).numpy()
    assert (res.predictions == float_pred).mean() > 0.9  # int8 tracks the float model


def test_results_do_not_depend_on_batching_or_engine():
    x, y = inputs(40)
    qm = quantize(small_cnn(), x)
    cfg = ArrayConfig(8, 8)
    arr = SystolicArray(cfg, FaultMap.random(cfg, 0.1, seed=3))
    a = run_model(qm, (x, y), arr, batch_size=7, return_logits=True)
    b = run_model(qm, (x, y), arr, batch_size=40, return_logits=True)
    c = run_model(qm, (x[:12], y[:12]), arr, engine="cycle", batch_size=5, return_logits=True)
    np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(a.logits[:12], c.logits)


@settings(max_examples=40)
@given(
    c_in=st.integers(1, 4), c_out=st.integers(1, 5), k=st.integers(1, 4), stride=st.integers(1, 3),
    padding=st.integers(0, 2), dilation=st.integers(1, 2), h=st.integers(4, 9), w=st.integers(4, 9),
    seed=st.integers(0, 1000),
)
def test_conv_lowering_matches_conv2d(c_in, c_out, k, stride, padding, dilation, h, w, seed):
    torch.manual_seed(seed)
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation)
    if dilation * (k - 1) + 1 > min(h, w) + 2 * padding:
        return  # kernel does not fit
    x = torch.randn(2, c_in, h, w)
    xq = quantize_act(x, 0.03, 8)
    wq, scale = quantize_weight(conv.weight, 8)
    X = lower_input(conv, xq.to(torch.int8).numpy())  # the int8 act operand
    m, kk, n = gemm_dims(conv, tuple(x.shape))
    assert X.shape == (m, kk) and wq.shape == (kk, n)
    acc = X.astype(np.int64) @ wq.astype(np.int64)
    w_int = torch.from_numpy(wq.T.reshape(conv.weight.shape).astype(np.float64))
    want = F.conv2d(xq, w_int, None, stride, padding, dilation)  # exact: small integers in float64
    got = torch.from_numpy(acc.astype(np.float64)).reshape(2, *want.shape[2:], n).permute(0, 3, 1, 2)
    assert torch.equal(got, want)
    # and on the dequantised operands it is the float convolution
    deq = F.conv2d(xq * 0.03, w_int * scale.reshape(-1, 1, 1, 1), None, stride, padding, dilation)
    torch.testing.assert_close(got * 0.03 * scale.reshape(1, -1, 1, 1), deq)


def test_bypass_equals_masked_weights():
    x, y = inputs(64)
    model = small_cnn()
    cfg = ArrayConfig(8, 8)
    fm = FaultMap.random(cfg, 0.15, seed=5)
    qm = quantize(model, x)
    on_chip = run_model(qm, (x, y), SystolicArray(cfg, fm, "bypass"), return_logits=True)
    masked = run_model(qm.with_masks(bypass_masks(model, fm)), (x, y), SystolicArray(cfg), return_logits=True)
    np.testing.assert_array_equal(on_chip.logits, masked.logits)
    # a float model already masked (as fault-aware training leaves it) runs identically with bypass
    pruned = apply_masks(small_cnn(), bypass_masks(model, fm))
    a = run_model(pruned, (x, y), SystolicArray(cfg, fm, "bypass"), calib=x, return_logits=True)
    b = run_model(pruned, (x, y), SystolicArray(cfg), calib=x, return_logits=True)
    np.testing.assert_array_equal(a.logits, b.logits)
    unmitigated = run_model(qm, (x, y), SystolicArray(cfg, fm), return_logits=True)
    assert not np.array_equal(unmitigated.logits, on_chip.logits)


def test_bypass_masks_follow_pe_mapping():
    cfg = ArrayConfig(4, 3)
    fm = FaultMap.from_pes(cfg, np.eye(4, 3, dtype=bool), seed=0)
    lin = nn.Linear(6, 5)
    conv = nn.Conv2d(2, 4, 2)
    masks = bypass_masks(nn.Sequential(conv, nn.Flatten(), lin), fm)
    lm = masks["2"].numpy()
    for o in range(5):
        for i in range(6):
            assert lm[o, i] == fm.faulty[i % 4, o % 3]
    cm = masks["0"].numpy()
    for o in range(4):
        for c in range(2):
            for a in range(2):
                for b in range(2):
                    assert cm[o, c, a, b] == fm.faulty[(c * 4 + a * 2 + b) % 4, o % 3]


def test_report_matches_scalesim_for_stride1_unpadded(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 5), nn.Flatten(), nn.Linear(16 * 10 * 10, 10))
    cfg = ArrayConfig(16, 8)
    rows = layer_report(model, (3, 16, 16), cfg)
    topo = tmp_path / "t.csv"
    topo.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        "c1, 16, 16, 3, 3, 3, 8, 1,\nc2, 14, 14, 5, 5, 8, 16, 1,\nfc, 1, 1, 1, 1, 1600, 10, 1,\n"
    )
    ref = layer_timings(read_topology(topo), cfg)
    assert [r.n_cycles for r in rows] == [t.n_cycles for _, t in ref]
    assert [(r.m, r.k, r.n) for r in rows] == [(t.m, t.k, t.n) for _, t in ref]
    r = rows[0]
    assert r.macs == r.m * r.k * r.n and r.intensity == pytest.approx(r.macs / (r.m * r.k + r.k * r.n + 4 * r.m * r.n))
    text = format_report(rows)
    assert "TOTAL" in text and "Conv2d" in text and "Linear" in text


def test_report_cycles_equal_what_the_chip_runs():
    x, y = inputs(10)
    model = small_cnn()
    cfg = ArrayConfig(8, 6)
    res = run_model(model, (x, y), SystolicArray(cfg), engine="cycle", batch_size=10, calib=x)
    rows = layer_report(quantize(model, x), (1, 8, 8), cfg, batch=10)
    assert res.layer_cycles == {r.name: r.n_cycles for r in rows}


@pytest.mark.parametrize(
    "layer, match",
    [
        (nn.Bilinear(4, 4, 3), r"'1' \(Bilinear\) holds weights .* supported on the array: Linear, Conv2d, "
                               r"Conv1d, .* leaves=\['1'\]"),
        (nn.Conv1d(1, 2, 3, padding_mode="circular", padding=1), "'1': Conv1d padding_mode='circular'; only 'zeros'"),
    ],
)
def test_unsupported_layers_are_named(layer, match):
    model = nn.Sequential(nn.Linear(4, 4), layer)
    with pytest.raises(UnsupportedLayerError, match=match):
        quantize(model, torch.zeros(2, 4))


def test_host_layers_with_weights_run_on_host():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))
    model.eval()
    x = torch.rand(20, 1, 8, 8)
    res = run_model(model, x, SystolicArray(ArrayConfig(8, 8)), calib=x)
    assert res.accuracy is None and res.predictions.shape == (20,)


def test_bad_inputs_give_clear_errors():
    model = small_cnn()
    x, y = inputs(8)
    arr = SystolicArray(ArrayConfig(8, 8))
    with pytest.raises(MappingError, match=r"Conv2d expects \(B, 1, H, W\) inputs; got shape \(4, 3, 8, 8\)"):
        run_model(quantize(model, x), torch.zeros(4, 3, 8, 8), arr)
    with pytest.raises(MappingError, match="calibration inputs of shape"):
        quantize(model, torch.zeros(4, 2, 8, 8))
    with pytest.raises(MappingError, match="8 inputs but 5 labels"):
        run_model(model, (x, y[:5]), arr)
    with pytest.raises(MappingError, match="must be a simulator.SystolicArray"):
        run_model(model, (x, y), "chip")
    with pytest.raises(MappingError, match="batch_size must be a positive int; got 0"):
        run_model(model, (x, y), arr, batch_size=0)
    with pytest.raises(MappingError, match="data must be"):
        run_model(model, [x], arr)
    with pytest.raises(FaultMaskError, match="this 8x8 array needs"):
        SystolicArray(ArrayConfig(8, 8), FaultMap.random(ArrayConfig(16, 16), 0.1, seed=0))
    with pytest.raises(MappingError, match="quantized for"):
        from simulator import IntPrecision
        run_model(quantize(model, x), (x, y), SystolicArray(ArrayConfig(8, 8, IntPrecision(8, 8, 16, 24))))
    with pytest.raises(MappingError, match="input shape"):
        layer_report(model, (2, 8, 8), ArrayConfig(8, 8))


def test_nan_inputs_are_refused_naming_the_layer():
    """NaN would quantize silently to 0; the error names the first layer that sees it."""
    model = small_cnn()
    x, _ = inputs(32)
    qm = quantize(model, x)
    bad = x.clone()
    bad[3, 0, 2, 2] = float("nan")
    first = lowered_layers(model)[0][0]
    with pytest.raises(MappingError, match=f"layer '{first}': its input holds 1 NaN"):
        run_model(qm, bad, SystolicArray(ArrayConfig(8, 8)))
    with pytest.raises(MappingError, match=f"layer '{first}'.*NaN"):
        quantize(model, bad)
    inf = x.clone()
    inf[0, 0, 0, 0] = float("inf")  # infinities are defined: they saturate
    assert run_model(qm, inf, SystolicArray(ArrayConfig(8, 8))).predictions.shape == (32,)


@settings(max_examples=200)
@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=40),
       st.sampled_from([1e-3, 0.5, 1.0, 0.0371, 3.0e5]), st.sampled_from([8, 6, 4]))
def test_one_pass_act_codes_equal_quantize_act(values, scale, bits):
    """The fused int8 coding (float64 division, ties to even, clamp) gives quantize_act's values,
    ties (k + 0.5) * scale and infinities included; dequantize is int32 -> float32, times the
    scale, plus the bias, two float32 roundings."""
    from mapping.quant import act_codes, dequantize

    ties = [(k + 0.5) * scale for k in range(-3, 3)]
    x = torch.tensor(values + ties + [float("inf"), float("-inf")], dtype=torch.float32)
    np.testing.assert_array_equal(act_codes(x, scale, bits), quantize_act(x, scale, bits).numpy().astype(np.int8))
    acc = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1234567
    w = torch.tensor([0.5, 1e-3, 2.0, 3.3], dtype=torch.float64)
    b = torch.tensor([0.1, -2.0, 0.0, 7.5])
    want = torch.from_numpy(acc).float() * (scale * w).float() + b
    assert torch.equal(dequantize(acc, scale, w, b), want)
    assert torch.equal(dequantize(acc, scale, w, None), torch.from_numpy(acc).float() * (scale * w).float())
