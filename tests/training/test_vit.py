"""The small Vision Transformer of the zoo: shapes, patch rule, argument errors, explicit-GEMM
attention that torch.fx traces, deterministic and working training."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import training.baseline as baseline
from training import DEFAULT_EPOCHS, DEFAULT_LRS, ViT, build_model, evaluate, model_digest, pretrained, train
from training.data import Dataset, load_digits_dataset
from training.models import MODELS, Attention, EncoderBlock, vit_patch_size


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


@pytest.fixture(scope="module")
def small(digits):
    return Dataset("digits-small", digits.x_train[:300], digits.y_train[:300], digits.x_test, digits.y_test)


def _vit(shape=(1, 8, 8), seed=0, **kwargs):
    torch.manual_seed(seed)
    return ViT(shape, 10, **kwargs)


# ---- architecture --------------------------------------------------------------------------

@pytest.mark.parametrize("shape, patch", [((1, 8, 8), 2), ((1, 28, 28), 7)])
def test_shapes_tokens_and_backward(shape, patch):
    model = _vit(shape)
    assert model.patch_size == patch and model.grid == (4, 4) and model.n_tokens == 16
    assert model.patch.kernel_size == (patch, patch) and model.patch.stride == (patch, patch)
    assert model.pos.shape == (1, 16, 32)
    assert len(model.blocks) == 2 and all(isinstance(b, EncoderBlock) for b in model.blocks)
    assert all(b.attn.heads == 4 and b.attn.head_dim == 8 for b in model.blocks)
    assert [b.mlp[0].out_features for b in model.blocks] == [64, 64]
    assert isinstance(model.norm, nn.LayerNorm) and (model.head.in_features, model.head.out_features) == (32, 10)
    out = model(torch.rand(3, *shape))
    assert out.shape == (3, 10)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_registry_builds_a_vit():
    assert "vit" in MODELS
    model = build_model("vit", (1, 28, 28), 7)
    assert isinstance(model, ViT) and model(torch.rand(2, 1, 28, 28)).shape == (2, 7)


@pytest.mark.parametrize("hw, patch", [((8, 8), 2), ((28, 28), 7), ((32, 32), 4), ((16, 16), 4), ((12, 12), 2),
                                       ((14, 14), 2), ((28, 8), 2), ((3, 3), 1), ((5, 7), 1)])
def test_patch_size_rule(hw, patch):
    assert vit_patch_size(*hw) == patch
    assert ViT((1, *hw), 10).patch_size == patch


def test_options_change_the_layers():
    model = _vit((3, 16, 16), dim=48, depth=3, heads=6, mlp_ratio=1.5, patch=2)
    assert model.patch_size == 2 and model.n_tokens == 64 and model.patch.in_channels == 3
    assert len(model.blocks) == 3 and model.blocks[0].attn.head_dim == 8
    assert model.blocks[0].attn.qkv.out_features == 144 and model.blocks[0].mlp[0].out_features == 72
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 10)


def test_layers_are_the_documented_ones():
    allowed = (ViT, nn.Conv2d, nn.Linear, nn.LayerNorm, nn.GELU, nn.Sequential, EncoderBlock, Attention)
    model = _vit((1, 28, 28))
    for name, module in model.named_modules():
        assert type(module) in allowed, (name, type(module))
    attn = model.blocks[0].attn
    assert (attn.qkv.in_features, attn.qkv.out_features) == (32, 96)
    assert (attn.proj.in_features, attn.proj.out_features) == (32, 32)


def test_batch_items_are_independent():
    model = _vit().eval()
    x = torch.rand(5, 1, 8, 8)
    together = model(x)
    alone = torch.cat([model(x[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_mean_pooling_without_positions_ignores_patch_order():
    """No class token: the head sees the mean over tokens, so with the position embedding
    zeroed, moving whole patches around does not change the output (but does with it)."""
    model = _vit().eval()
    x = torch.rand(2, 1, 8, 8)
    shuffled = x.flip(2, 3).reshape(2, 1, 4, 2, 4, 2).flip(3, 5).reshape(2, 1, 8, 8)  # patches reversed, intact
    assert not torch.allclose(model(x), model(shuffled), atol=1e-5)
    with torch.no_grad():
        model.pos.zero_()
    torch.testing.assert_close(model(x), model(shuffled), rtol=1e-5, atol=1e-5)


def test_attention_matches_the_reference():
    """The explicit GEMMs compute standard multi-head attention (checked against SDPA)."""
    torch.manual_seed(1)
    attn = Attention(dim=32, heads=4, n_tokens=16)
    x = torch.randn(3, 16, 32)
    q, k, v = attn.qkv(x).split(32, dim=-1)
    heads = [t.reshape(3, 16, 4, 8).transpose(1, 2) for t in (q, k, v)]
    ref = attn.proj(F.scaled_dot_product_attention(*heads).transpose(1, 2).reshape(3, 16, 32))
    torch.testing.assert_close(attn(x), ref, rtol=1e-5, atol=1e-6)


# ---- argument errors -----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"dim": 30, "heads": 4}, r"dim must be a multiple of heads; got dim=30 with heads=4"),
    ({"heads": 0}, r"heads must be an int >= 1; got 0"),
    ({"depth": 0}, r"depth must be an int >= 1; got 0"),
    ({"dim": 32.0}, r"dim must be an int >= 1; got 32.0"),
    ({"depth": True}, r"depth must be an int >= 1; got True"),
    ({"mlp_ratio": 0}, r"mlp_ratio must be a number > 0; got 0"),
    ({"mlp_ratio": "2"}, r"mlp_ratio must be a number > 0; got '2'"),
    ({"mlp_ratio": 0.01}, r"mlp_ratio=0.01 gives an MLP of 0 units for dim=32"),
    ({"patch": 3}, r"patch must divide the image height and width; got patch=3 for 8x8"),
    ({"patch": 0}, r"patch must be an int >= 1; got 0"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ViT((1, 8, 8), 10, **kwargs)


def test_bad_shapes_and_classes():
    with pytest.raises(ValueError, match="input_shape"):
        ViT((8, 8), 10)
    with pytest.raises(ValueError, match="n_classes"):
        build_model("vit", (1, 8, 8), 1)


# ---- torch.fx ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_symbolic_trace_sees_the_attention_gemms(shape):
    model = _vit(shape, depth=3).eval()
    gm = torch.fx.symbolic_trace(model)
    nodes = list(gm.graph.nodes)
    matmuls = [n for n in nodes if n.op == "call_function" and n.target in (operator.matmul, torch.matmul)]
    assert len(matmuls) == 2 * 3  # q @ k^T and attn @ v per block
    softmaxes = [n for n in nodes if n.op == "call_method" and n.target == "softmax"]
    assert len(softmaxes) == 3
    modules = dict(gm.named_modules())
    called = [n.target for n in nodes if n.op == "call_module"]
    linears = [t for t in called if isinstance(modules[t], nn.Linear)]
    assert linears == [f"blocks.{i}.{part}" for i in range(3) for part in ("attn.qkv", "attn.proj", "mlp.0", "mlp.2")
                       ] + ["head"]
    assert not any("scaled_dot_product" in str(n.target) for n in nodes)
    for batch in (1, 4):
        x = torch.rand(batch, *shape)
        torch.testing.assert_close(gm(x), model(x), rtol=0, atol=0)


# ---- training ------------------------------------------------------------------------------

def test_training_is_deterministic_per_seed(small):
    a, losses_a = train(_vit(), small, epochs=0.3, lr=1e-3, seed=3)
    b, losses_b = train(_vit(), small, epochs=0.3, lr=1e-3, seed=3)
    c, _ = train(_vit(), small, epochs=0.3, lr=1e-3, seed=4)
    assert model_digest(a) == model_digest(b) and losses_a == losses_b
    assert model_digest(a) != model_digest(c)
    assert model_digest(a) != model_digest(_vit())  # it trained


def test_pretrained_vit_uses_its_learning_rate_and_is_deterministic(small, tmp_path, monkeypatch):
    assert DEFAULT_EPOCHS["vit"] == 40 and DEFAULT_LRS["vit"] == 1e-3
    seen = []
    real_train = baseline.train

    def spy(*args, **kwargs):
        seen.append(kwargs["lr"])
        return real_train(*args, **kwargs)

    monkeypatch.setattr(baseline, "train", spy)
    a = pretrained("vit", small, epochs=0.2, cache_dir=tmp_path / "a")
    b = pretrained("vit", small, epochs=0.2, cache_dir=tmp_path / "b")
    pretrained("mlp", small, epochs=0.2, cache_dir=tmp_path / "a")
    assert seen == [1e-3, 1e-3, baseline.DEFAULT_LR]
    assert isinstance(a, ViT) and not a.training and model_digest(a) == model_digest(b)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "a").iterdir()) == ["mlp", "vit"]


def test_short_training_beats_chance_clearly(digits):
    model = _vit()
    before = evaluate(model, digits.x_test, digits.y_test)
    train(model, digits, epochs=10, lr=DEFAULT_LRS["vit"], seed=0)  # about 88%, a few seconds
    after = evaluate(model, digits.x_test, digits.y_test)
    assert before < 0.3 and after >= 0.8, (before, after)
