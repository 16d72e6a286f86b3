"""A small model zoo sized for the data: MLP, LeNet-5 style CNN, small VGG-style CNN.

Models use only ``nn.Conv2d`` (``groups=1``), ``nn.Linear``, ``nn.ReLU``, ``nn.MaxPool2d``
and ``nn.Flatten`` (no batch norm, no dropout), so int8 lowering onto the array is direct.
All are ``nn.Sequential``, so layers have plain names ("0", "1", ...).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "LeNet5", "SmallVGG", "MODELS", "build_model"]


def _check_shape(input_shape, n_classes) -> tuple[int, int, int]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) with positive sizes; got {tuple(input_shape)}.")
    if int(n_classes) < 2:
        raise ValueError(f"n_classes must be an int >= 2; got {n_classes}.")
    return shape


def _n_features(layers: nn.Sequential, input_shape) -> int:
    with torch.no_grad():
        return int(layers(torch.zeros(1, *input_shape)).numel())


class MLP(nn.Sequential):
    """Flatten, then ``Linear -> ReLU`` per hidden width, then a linear classifier.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.
    n_classes : int
        Number of outputs.
    hidden : tuple of int
        Widths of the hidden layers.
    """

    def __init__(self, input_shape, n_classes: int, hidden=(64, 32)):
        c, h, w = _check_shape(input_shape, n_classes)
        widths = [c * h * w, *(int(n) for n in hidden)]
        layers = [nn.Flatten()]
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        super().__init__(*layers, nn.Linear(widths[-1], int(n_classes)))


class LeNet5(nn.Sequential):
    """LeNet-5 style: two ``conv -> ReLU -> maxpool`` stages (6 and 16 channels), then 120-84-n.

    Images of at least 20x20 (MNIST) get the classic 5x5 convolutions (padding 2 on the
    first); smaller ones (8x8 digits) get 3x3 convolutions with padding 1 so they still fit.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.
    n_classes : int
        Number of outputs.
    """

    def __init__(self, input_shape, n_classes: int):
        c, h, w = _check_shape(input_shape, n_classes)
        if min(h, w) < 4:
            raise ValueError(f"LeNet5 needs images of at least 4x4; got input_shape {(c, h, w)}.")
        if min(h, w) >= 20:
            k, pads = 5, (2, 0)
        else:
            k, pads = 3, (1, 1)
        features = nn.Sequential(
            nn.Conv2d(c, 6, k, padding=pads[0]), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, k, padding=pads[1]), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten())
        n_feat = _n_features(features, (c, h, w))
        super().__init__(*features, nn.Linear(n_feat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, int(n_classes)))


class SmallVGG(nn.Sequential):
    """VGG style: blocks of two 3x3 ``conv -> ReLU`` and a 2x2 maxpool, then 64-n linear layers.

    Block widths are 16, 32, 48; there are as many blocks (at most three) as the image allows
    while keeping at least 2x2 pixels: two for 8x8 digits, three for 28x28 MNIST
    (about 80k parameters there).

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.
    n_classes : int
        Number of outputs.
    """

    widths = (16, 32, 48)

    def __init__(self, input_shape, n_classes: int):
        c, h, w = _check_shape(input_shape, n_classes)
        n_blocks, side = 0, min(h, w)
        while n_blocks < len(self.widths) and side // 2 >= 2:
            n_blocks, side = n_blocks + 1, side // 2
        layers = []
        for width in self.widths[:max(n_blocks, 1)]:
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
            if n_blocks:
                layers.append(nn.MaxPool2d(2))
            c = width
        features = nn.Sequential(*layers, nn.Flatten())
        n_feat = _n_features(features, input_shape)
        super().__init__(*features, nn.Linear(n_feat, 64), nn.ReLU(), nn.Linear(64, int(n_classes)))


_ZOO = {"mlp": MLP, "lenet5": LeNet5, "vgg": SmallVGG}
MODELS: tuple[str, ...] = tuple(_ZOO)


def build_model(name: str, input_shape, n_classes: int) -> nn.Module:
    """Build a freshly initialised model of the zoo (initialisation uses torch's global RNG).

    Parameters
    ----------
    name : str
        One of :data:`MODELS`: ``"mlp"``, ``"lenet5"``, ``"vgg"``.
    input_shape : tuple of int
        ``(C, H, W)`` of one image.
    n_classes : int
        Number of outputs.

    Returns
    -------
    torch.nn.Module
    """
    if name not in _ZOO:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    return _ZOO[name](input_shape, n_classes)
