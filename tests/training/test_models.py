"""Model zoo: output shapes, supported layer types only, sizes and the name registry (the ViT's
own tests are in test_vit.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.models import MLP, MODELS, LeNet5, SmallVGG, build_model

SHAPES = [(1, 8, 8), (1, 28, 28)]
CNNS = ("mlp", "lenet5", "vgg")  # the models built from array-lowerable layers only
ALLOWED = (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Sequential)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", MODELS)
def test_forward_shape_and_backward(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape, 10)
    out = model(torch.rand(3, *shape))
    assert out.shape == (3, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CNNS)
def test_only_supported_layers(name, shape):
    model = build_model(name, shape, 10)
    for qualname, module in model.named_modules():
        assert type(module) in ALLOWED or isinstance(module, nn.Sequential), (qualname, type(module))
        if isinstance(module, nn.Conv2d):
            assert module.groups == 1 and module.dilation == (1, 1)


@pytest.mark.parametrize("shape", SHAPES)
def test_vgg_is_small(shape):
    assert sum(p.numel() for p in SmallVGG(shape, 10).parameters()) < 100_000


def test_lenet5_kernels_follow_image_size():
    small = [m for m in LeNet5((1, 8, 8), 10).modules() if isinstance(m, nn.Conv2d)]
    assert [(m.kernel_size, m.padding) for m in small] == [((3, 3), (1, 1))] * 2
    big = [m for m in LeNet5((1, 28, 28), 10).modules() if isinstance(m, nn.Conv2d)]
    assert [(m.kernel_size, m.padding) for m in big] == [((5, 5), (2, 2)), ((5, 5), (0, 0))]
    assert [m.out_features for m in LeNet5((1, 28, 28), 10).modules() if isinstance(m, nn.Linear)] == [120, 84, 10]
    with pytest.raises(ValueError, match="4x4"):
        LeNet5((1, 3, 3), 10)


def test_mlp_hidden_widths():
    widths = [m.out_features for m in MLP((1, 8, 8), 7, hidden=(20, 10, 5)).modules() if isinstance(m, nn.Linear)]
    assert widths == [20, 10, 5, 7]


def test_registry_and_errors():
    assert MODELS == ("mlp", "lenet5", "vgg", "vit")
    assert isinstance(build_model("vgg", (1, 8, 8), 10), SmallVGG)
    with pytest.raises(ValueError, match="mlp, lenet5, vgg, vit"):
        build_model("resnet", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("mlp", (8, 8), 10)
    with pytest.raises(ValueError, match="n_classes"):
        build_model("mlp", (1, 8, 8), 1)
