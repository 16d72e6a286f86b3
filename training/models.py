"""A small model zoo sized for the data: MLP, LeNet-5 style CNN, small VGG-style CNN and a
small Vision Transformer.

The MLP and the CNNs use only ``nn.Conv2d`` (``groups=1``), ``nn.Linear``, ``nn.ReLU``,
``nn.MaxPool2d`` and ``nn.Flatten`` (no batch norm, no dropout), so int8 lowering onto the
array is direct. They are ``nn.Sequential``, so layers have plain names ("0", "1", ...).

:class:`ViT` also has ``nn.LayerNorm``, ``nn.GELU``, softmax and two activation-by-activation
matrix products per attention head (``q @ k^T`` and ``attn @ v``), written as plain ``@``
so that ``torch.fx.symbolic_trace`` sees them as ``matmul`` calls; it has no dropout.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "LeNet5", "SmallVGG", "ViT", "vit_patch_size", "MODELS", "build_model"]


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


def vit_patch_size(h: int, w: int) -> int:
    """The patch side :class:`ViT` picks for ``h x w`` images.

    The largest of 7, 4, 2, 1 that divides both ``h`` and ``w`` and leaves a grid of at least
    4 x 4 patches (16 tokens): 2 for 8x8 digits (4 x 4 tokens), 7 for 28x28 MNIST (4 x 4
    tokens), 4 for 32x32 (8 x 8). Images under 4 pixels on a side get 1 (a token per pixel).
    """
    for p in (7, 4, 2):
        if h % p == 0 and w % p == 0 and h // p >= 4 and w // p >= 4:
            return p
    return 1


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ViT {name} must be an int >= 1; got {value!r}.")
    return value


class Attention(nn.Module):
    """Multi-head self-attention from explicit GEMMs (no ``nn.MultiheadAttention``, no SDPA).

    ``qkv = Linear(dim, 3 dim)``; per head ``scores = q @ k^T * head_dim**-0.5``,
    ``attn = softmax(scores)``, ``out = attn @ v``; heads concatenated, then ``Linear(dim, dim)``.
    Sizes are fixed at construction (only the batch dimension is free), so the module
    traces with ``torch.fx``.
    """

    def __init__(self, dim: int, heads: int, n_tokens: int):
        super().__init__()
        self.dim, self.heads, self.n_tokens = dim, heads, n_tokens
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        n, h, d = self.n_tokens, self.heads, self.head_dim
        qkv = self.qkv(x).reshape(-1, n, 3, h, d).permute(2, 0, 3, 1, 4)  # (3, B, heads, N, head_dim)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = q @ k.transpose(-2, -1) * self.scale  # (B, heads, N, N)
        attn = scores.softmax(dim=-1)
        out = attn @ v  # (B, heads, N, head_dim)
        return self.proj(out.transpose(1, 2).reshape(-1, n, self.dim))


class EncoderBlock(nn.Module):
    """Pre-LayerNorm transformer block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, dim: int, heads: int, n_tokens: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, n_tokens)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """A small Vision Transformer: patch embedding, pre-LN encoder blocks, mean pooling.

    ``Conv2d(C, dim, p, stride=p)`` cuts the image into non-overlapping ``p x p`` patches
    (``p`` from :func:`vit_patch_size`: 2 on 8x8 digits, 7 on 28x28 MNIST, 16 tokens each),
    a learned position embedding is added, ``depth`` :class:`EncoderBlock` follow, then a
    final ``LayerNorm``, the mean over the tokens (no class token) and ``Linear(dim, n)``.
    With the defaults: 18,154 parameters on digits, 19,594 on MNIST. No dropout.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.
    n_classes : int
        Number of outputs.
    dim : int
        Token width; a multiple of ``heads``.
    depth : int
        Number of encoder blocks.
    heads : int
        Attention heads per block.
    mlp_ratio : float
        Hidden width of each block's MLP, in multiples of ``dim`` (``round(dim * mlp_ratio)``).
    patch : int, optional
        Patch side overriding :func:`vit_patch_size`; must divide ``H`` and ``W``.
    """

    def __init__(self, input_shape, n_classes: int, dim: int = 32, depth: int = 2, heads: int = 4,
                 mlp_ratio: float = 2, patch: int | None = None):
        super().__init__()
        c, h, w = _check_shape(input_shape, n_classes)
        dim, depth, heads = _positive_int("dim", dim), _positive_int("depth", depth), _positive_int("heads", heads)
        if dim % heads:
            raise ValueError(f"ViT dim must be a multiple of heads; got dim={dim} with heads={heads} "
                             f"(dim % heads = {dim % heads}).")
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or not mlp_ratio > 0:
            raise ValueError(f"ViT mlp_ratio must be a number > 0; got {mlp_ratio!r}.")
        hidden = round(dim * mlp_ratio)
        if hidden < 1:
            raise ValueError(f"ViT mlp_ratio={mlp_ratio} gives an MLP of {hidden} units for dim={dim}; "
                             "it must give at least 1.")
        if patch is None:
            patch = vit_patch_size(h, w)
        elif _positive_int("patch", patch) and (h % patch or w % patch):
            raise ValueError(f"ViT patch must divide the image height and width; got patch={patch} "
                             f"for {h}x{w} images.")
        self.patch_size, self.grid = patch, (h // patch, w // patch)
        self.n_tokens = self.grid[0] * self.grid[1]
        self.patch = nn.Conv2d(c, dim, kernel_size=patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, self.n_tokens, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads, self.n_tokens, hidden) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, int(n_classes))

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos  # (B, N, dim)
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))


_ZOO = {"mlp": MLP, "lenet5": LeNet5, "vgg": SmallVGG, "vit": ViT}
MODELS: tuple[str, ...] = tuple(_ZOO)


def build_model(name: str, input_shape, n_classes: int) -> nn.Module:
    """Build a freshly initialised model of the zoo (initialisation uses torch's global RNG).

    Parameters
    ----------
    name : str
        One of :data:`MODELS`: ``"mlp"``, ``"lenet5"``, ``"vgg"``, ``"vit"``.
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
