"""Lowering: torch layers -> GEMM operands ``X[M, K] @ W[K, N]`` (no execution here).

* ``nn.Linear``: ``X`` = the input rows (all leading dims flattened into M), ``K`` =
  in_features, ``N`` = out_features, ``W = weight.T``.
* ``nn.Conv2d`` (groups=1): im2col (numpy's ``sliding_window_view``): one row of ``X``
  per output pixel (M = batch * OH * OW), ``K = C_in * kh * kw`` ordered channel-major then
  kernel row then kernel column, ``N`` = out_channels, ``W = weight.reshape(N, K).T``.
  Stride, padding (zeros) and dilation are honoured (as ``F.conv2d`` does; tested).

K is mapped onto array rows and N onto array columns, folded as in docs/semantics.md, so weight
``W[k, n]`` sits on PE ``(k mod R, n mod C)``.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from .errors import MappingError, UnsupportedLayerError

__all__ = ["LOWERED", "gemm_dims", "lower_input", "restore_output", "check_lowerable"]

#: Layer types that run on the array.
LOWERED = (nn.Linear, nn.Conv2d)


def check_lowerable(name: str, module: nn.Module) -> None:
    """Raise :class:`UnsupportedLayerError` for a lowered type used in an unsupported way."""
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise UnsupportedLayerError(f"layer {name!r}: Conv2d with groups={module.groups}; only groups=1 is supported.")
        if module.padding_mode != "zeros":
            raise UnsupportedLayerError(f"layer {name!r}: Conv2d padding_mode={module.padding_mode!r}; only 'zeros'.")
        if isinstance(module.padding, str):
            raise UnsupportedLayerError(f"layer {name!r}: Conv2d padding={module.padding!r}; give explicit integers.")


def _out_hw(conv: nn.Conv2d, h: int, w: int) -> tuple[int, int]:
    out = []
    for size, k, s, p, d in zip((h, w), conv.kernel_size, conv.stride, conv.padding, conv.dilation):
        out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
    return out[0], out[1]


def gemm_dims(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(M, K, N)`` of the GEMM a layer runs for one input of shape ``in_shape`` (with batch)."""
    if isinstance(module, nn.Linear):
        if in_shape[-1] != module.in_features:
            raise MappingError(f"Linear expects {module.in_features} input features; got shape {tuple(in_shape)}.")
        return int(np.prod(in_shape[:-1])), module.in_features, module.out_features
    if isinstance(module, nn.Conv2d):
        if len(in_shape) != 4 or in_shape[1] != module.in_channels:
            raise MappingError(f"Conv2d expects (B, {module.in_channels}, H, W) inputs; got shape {tuple(in_shape)}.")
        oh, ow = _out_hw(module, in_shape[2], in_shape[3])
        if oh < 1 or ow < 1:
            raise MappingError(f"Conv2d kernel {module.kernel_size} does not fit the {in_shape[2]}x{in_shape[3]} input.")
        k = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        return in_shape[0] * oh * ow, k, module.out_channels
    raise UnsupportedLayerError(f"{type(module).__name__} has no lowering")


def lower_input(module: nn.Module, xq: np.ndarray) -> np.ndarray:
    """The ``X`` operand ``(M, K)`` of a layer input already in the operand dtype."""
    if isinstance(module, nn.Linear):
        return np.ascontiguousarray(xq.reshape(-1, module.in_features))
    # im2col on the operand dtype (int8: 4x less memory traffic than torch's float unfold):
    # a strided view of the padded input, copied once into (pixels, C * kh * kw) order
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = module.kernel_size, module.stride, module.padding, module.dilation
    # on the raw bytes (FP8 types have no array interface): zero bytes pad with 0 / +0.0
    x = np.pad(xq.view(f"u{xq.dtype.itemsize}"), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(x, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]  # (B, C, OH, OW, kh, kw)
    b, c, oh, ow = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(b * oh * ow, c * kh * kw).view(xq.dtype)


def restore_output(module: nn.Module, y: torch.Tensor, x_shape: tuple[int, ...]) -> torch.Tensor:
    """Reshape the GEMM result ``(M, N)`` to the layer's output shape."""
    if isinstance(module, nn.Linear):
        return y.reshape(*x_shape[:-1], module.out_features)
    oh, ow = _out_hw(module, x_shape[2], x_shape[3])
    return y.reshape(x_shape[0], oh, ow, module.out_channels).permute(0, 3, 1, 2).contiguous()
