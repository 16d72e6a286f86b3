"""Lowering by tracing (torch.fx): every GEMM-like op of any model on the array."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faults import FaultMap
from mapping import MappingError, bypass_masks, format_report, layer_report, quantize, run_model
from mapping.actgemm import AttentionHeads
from mapping.quant import dequantize, quantize_act, quantize_weight
from simulator import ArrayConfig, SystolicArray
from training import build_model

from .nets import HalfLinear, MobileNetV2, ResNet18, TinyTransformer

CFG = ArrayConfig(8, 8)


def _logits(qm, x, array, faulty_layers=None):
    return run_model(qm, x, array, return_logits=True, faulty_layers=faulty_layers).logits


@pytest.mark.parametrize("name, shape", [("mlp", (1, 8, 8)), ("lenet5", (1, 8, 8)), ("vgg", (1, 8, 8))])
def test_traced_lowering_equals_the_module_swap_bit_for_bit(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape, 10).eval()
    x = torch.rand(24, *shape)
    traced, swapped = quantize(model, x), quantize(model, x, lowering="modules")
    assert [n for n, _ in traced.layers] == [n for n, _ in swapped.layers]
    assert traced.act_amax == swapped.act_amax
    fm = FaultMap.random(CFG, 0.05, seed=3)
    for mitigation in (None, "bypass"):
        arr = SystolicArray(CFG, fm, mitigation)
        np.testing.assert_array_equal(_logits(traced, x, arr), _logits(swapped, x, arr))


def _int_reference(layer_fn, x, weight, a_scale, bias):
    """Int operands, the op in float64 on integers (exact), dequantized as the array's results are."""
    xq = quantize_act(x, a_scale, 8)
    wq_kn, w_scale = quantize_weight(weight, 8)
    wq = torch.from_numpy(wq_kn.T.astype(np.float64)).reshape(weight.shape)
    acc = layer_fn(xq, wq)  # (B, N, ...) exact integers in float64
    acc = acc.movedim(1, -1).contiguous()
    y = dequantize(acc.to(torch.int64).numpy().astype(np.int32), a_scale, w_scale, bias)
    return y.movedim(-1, 1).numpy()


@pytest.mark.parametrize("layer, shape", [
    (nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=1), (5, 4, 11)),
    (nn.Conv1d(4, 6, 3, padding=2, dilation=2, groups=2), (5, 4, 9)),
    (nn.Conv2d(6, 9, 3, padding=1, groups=3), (3, 6, 7, 7)),
    (nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), (3, 8, 9, 9)),  # depthwise
    (nn.Conv2d(8, 16, 3, padding=1, groups=8), (3, 8, 6, 6)),  # depthwise, 2 filters per channel
])
def test_new_convolutions_equal_an_independent_int_reference(layer, shape):
    torch.manual_seed(1)
    x = torch.randn(*shape)
    qm = quantize(nn.Sequential(layer), x)
    got = _logits(qm, x, SystolicArray(ArrayConfig(5, 4)))
    conv = F.conv1d if isinstance(layer, nn.Conv1d) else F.conv2d
    st = qm.layers[0][1].sim
    want = _int_reference(lambda a, w: conv(a, w, None, layer.stride, layer.padding, layer.dilation, layer.groups),
                          x, layer.weight, st.a_scale, layer.bias)
    np.testing.assert_array_equal(got, want)


class Products(nn.Module):
    def forward(self, x):  # x (B, T, D): a @ b^T and bmm between activations
        return torch.bmm(x, x.transpose(1, 2)) @ x


def test_products_of_activations_equal_integer_matmul():
    torch.manual_seed(2)
    x = torch.randn(4, 5, 3)
    qm = quantize(Products(), x)
    (n1, op1), (n2, op2) = qm.layers
    assert n1 == "bmm" and n2 == "matmul"
    got = _logits(qm, x, SystolicArray(ArrayConfig(3, 4)))
    s1 = op1.sim
    a = quantize_act(x, s1.a_scale, 8).to(torch.int64)
    b = quantize_act(x.transpose(1, 2), s1.b_scale, 8).to(torch.int64)
    h = torch.bmm(a, b).to(torch.float32) * torch.tensor(s1.a_scale * s1.b_scale).float()
    s2 = op2.sim
    a2 = quantize_act(h, s2.a_scale, 8).to(torch.int64)
    b2 = quantize_act(x, s2.b_scale, 8).to(torch.int64)
    want = (a2 @ b2).to(torch.float32) * torch.tensor(s2.a_scale * s2.b_scale).float()
    np.testing.assert_array_equal(got, want.numpy())


def test_a_custom_forward_is_traced_not_swapped():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), HalfLinear(8, 4)).eval()
    x = torch.randn(64, 6)
    with torch.no_grad():
        ref = model(x).numpy()
    got = _logits(quantize(model, x), x, SystolicArray(CFG))
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()  # the halving is kept (a swap doubles it)
    assert (got.argmax(1) == ref.argmax(1)).mean() > 0.9


@pytest.mark.parametrize("attention", ["sdpa", "mha"])
def test_attention_per_token_logits_and_tuple_outputs(attention):
    torch.manual_seed(4)
    model = TinyTransformer(attention=attention).eval()
    x = torch.randn(40, 6, 4)
    with torch.no_grad():
        ref_logits, ref_feat = model(x)
    qm = quantize(model, x)
    kinds = [type(m).__name__ for _, m in qm.layers]
    assert kinds.count("SimMatmul") == 2  # Q K^T and A V on the array
    labels = ref_logits.argmax(-1)
    res = run_model(qm, (x, labels), SystolicArray(CFG), batch_size=16, return_logits=True)
    logits, feat = res.outputs
    assert logits.shape == ref_logits.shape and feat.shape == ref_feat.shape
    assert res.predictions.shape == (40, 6)
    assert res.accuracy > 0.9  # per-token agreement with float
    assert np.abs(logits.numpy() - ref_logits.numpy()).max() < 0.1 * ref_logits.abs().max().item()


def test_multihead_attention_decomposition_equals_torch():
    torch.manual_seed(5)
    for batch_first in (True, False):
        mha = nn.MultiheadAttention(12, 3, batch_first=batch_first).eval()
        mine = AttentionHeads(mha).eval()
        q = torch.randn(2, 5, 12) if batch_first else torch.randn(5, 2, 12)
        kpm = torch.zeros(2, 5, dtype=torch.bool)
        kpm[1, -2:] = True
        mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
        for kwargs in ({}, {"key_padding_mask": kpm}, {"attn_mask": mask}, {"average_attn_weights": False}):
            with torch.no_grad():
                (o1, w1), (o2, w2) = mha(q, q, q, **kwargs), mine(q, q, q, **kwargs)
            torch.testing.assert_close(o2, o1, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(w2, w1, atol=1e-5, rtol=1e-5)


def test_bypass_equivalence_holds_for_products_of_activations():
    torch.manual_seed(6)
    model = TinyTransformer().eval()
    x = torch.randn(12, 6, 4)
    qm = quantize(model, x)
    fm = FaultMap.random(CFG, 0.15, seed=1)
    masks = bypass_masks(qm, fm)
    assert masks["qkv"].shape == model.qkv.weight.shape
    act = [n for n, m in qm.layers if not hasattr(m, "weight")]
    assert all(masks[n].shape == (8, 8) for n in act)
    on_chip = _logits(qm, x, SystolicArray(CFG, fm, "bypass"))
    np.testing.assert_array_equal(on_chip, _logits(qm.with_masks(masks), x, SystolicArray(CFG)))
    without = {n: m for n, m in masks.items() if n not in act}  # the act-by-act GEMMs' zeros matter
    assert not np.array_equal(on_chip, _logits(qm.with_masks(without), x, SystolicArray(CFG)))


@pytest.mark.parametrize("net", [ResNet18, MobileNetV2])
def test_residual_and_depthwise_networks_run_on_the_chip(net):
    torch.manual_seed(7)
    model = net().eval()
    x = torch.rand(6, 3, 16, 16)
    with torch.no_grad():
        ref = model(x).numpy()
    qm = quantize(model, x)
    got = _logits(qm, x, SystolicArray(ArrayConfig(16, 16)))
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.95
    rows = layer_report(qm, (3, 16, 16), ArrayConfig(16, 16))
    assert {r.name for r in rows} == {n for n, _ in qm.layers}
    assert "TOTAL" in format_report(rows)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_torchvision_architectures_run_on_the_chip(name):
    models = pytest.importorskip("torchvision.models", exc_type=ImportError)
    torch.manual_seed(8)
    model = getattr(models, name)(weights=None, num_classes=10).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x).numpy()
    got = _logits(quantize(model, x), x, SystolicArray(ArrayConfig(16, 16)))
    assert got.shape == ref.shape and np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.9


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = Gate()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.gate(x))


class Gate(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x  # control flow on values: not traceable


def test_an_untraceable_module_is_named_with_the_way_out():
    x = torch.randn(8, 4)
    with pytest.raises(MappingError, match=r"cannot trace the model in module 'gate'.*leaves=\['gate'\]"):
        quantize(Branchy(), x)
    qm = quantize(Branchy(), x, leaves=["gate"])
    assert [n for n, _ in qm.layers] == ["fc"]
    assert run_model(qm, x, SystolicArray(CFG)).predictions.shape == (8,)


def test_one_layer_on_the_faulty_chip_and_the_rest_fault_free():
    torch.manual_seed(9)
    model = build_model("lenet5", (1, 8, 8), 10).eval()
    x = torch.rand(32, 1, 8, 8)
    qm = quantize(model, x)
    names = [n for n, _ in qm.layers]
    fm = FaultMap.random(CFG, 0.2, seed=2)
    clean, faulty = SystolicArray(CFG), SystolicArray(CFG, fm)
    np.testing.assert_array_equal(_logits(qm, x, faulty, faulty_layers=[]), _logits(qm, x, clean))
    np.testing.assert_array_equal(_logits(qm, x, faulty, faulty_layers=names), _logits(qm, x, faulty))
    one = _logits(qm, x, faulty, faulty_layers=names[:1])
    assert not np.array_equal(one, _logits(qm, x, clean)) and not np.array_equal(one, _logits(qm, x, faulty))
    with pytest.raises(MappingError, match="'nope' are not ops of this model"):
        _logits(qm, x, faulty, faulty_layers=["nope"])


def test_per_layer_sensitivity_matches_single_op_runs():
    from mapping import layer_sensitivity

    torch.manual_seed(10)
    model = build_model("mlp", (1, 8, 8), 10).eval()
    x = torch.rand(48, 1, 8, 8)
    qm = quantize(model, x)
    with torch.no_grad():
        y = model(x).argmax(1)
    base, rows = layer_sensitivity(qm, (x, y), SystolicArray(CFG))  # a fault-free chip: nothing to lose
    assert [r.name for r in rows] == [n for n, _ in qm.layers] and all(r.drop == 0 for r in rows)
    faulty = SystolicArray(CFG, FaultMap.random(CFG, 0.3, seed=4))
    base2, rows = layer_sensitivity(qm, (x, y), faulty)
    assert base2 == base and any(r.drop > 0 for r in rows)
    for r in rows:
        assert r.accuracy == run_model(qm, (x, y), faulty, faulty_layers=[r.name]).accuracy
        assert r.drop == pytest.approx(base - r.accuracy)


@pytest.mark.slow
def test_the_vit_on_the_chip_within_a_point_of_float():
    from training import evaluate, load_dataset, pretrained

    data = load_dataset("digits")
    model = pretrained("vit", data, seed=0)
    qm = quantize(model, data.x_train[:512])
    assert sum(type(m).__name__ == "SimMatmul" for _, m in qm.layers) == 4  # Q K^T and A V, two blocks
    res = run_model(qm, data, SystolicArray(ArrayConfig(16, 16)))
    assert abs(res.accuracy - evaluate(model, data.x_test, data.y_test)) <= 0.01


def test_a_traced_model_pickles_to_the_same_bits():
    import pickle

    torch.manual_seed(11)
    model = TinyTransformer(attention="mha").eval()
    x = torch.randn(6, 6, 4)
    qm = quantize(model, x)
    back = pickle.loads(pickle.dumps(qm))  # process executors ship quantized models to workers
    assert [n for n, _ in back.layers] == [n for n, _ in qm.layers]
    np.testing.assert_array_equal(_logits(back, x, SystolicArray(CFG)), _logits(qm, x, SystolicArray(CFG)))
