"""Lowering: torch layers -> GEMM operands ``X[M, K] @ W[K, N]`` (no execution here).

* ``nn.Linear``: ``X`` = the input rows (all leading dims flattened into M), ``K`` =
  in_features, ``N`` = out_features, ``W = weight.T``.
* ``nn.Conv2d``: im2col (numpy's ``sliding_window_view``): one row of ``X`` per output
  pixel (M = batch * OH * OW), ``K = C_in / groups * kh * kw`` ordered channel-major then
  kernel row then kernel column, ``W = weight.reshape(C_out, K).T``. Stride, padding
  (zeros) and dilation are honoured (as ``F.conv2d`` does; tested). A grouped conv
  (``groups = g``, depthwise when ``g = C_in``) is ``g`` GEMMs, one per group: group ``j``
  takes the ``K`` columns of its input channels and the ``C_out / g`` columns of ``W`` of
  its output channels (N = C_out / g per GEMM).
* ``nn.Conv1d``: a Conv2d over inputs of height 1 (kernel ``1 x k``).

K is mapped onto array rows and N onto array columns, folded as in docs/semantics.md, so weight
``W[k, n]`` sits on PE ``(k mod R, n mod C)`` (``n`` counted within its group).
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from .errors import MappingError, UnsupportedLayerError

__all__ = ["LOWERED", "gemm_dims", "gemm_groups", "lower_input", "restore_output", "check_lowerable"]

#: Layer types that run on the array.
LOWERED = (nn.Linear, nn.Conv2d, nn.Conv1d)


def check_lowerable(name: str, module: nn.Module) -> None:
    """Raise :class:`UnsupportedLayerError` for a lowered type used in an unsupported way."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        kind = type(module).__name__
        if module.padding_mode != "zeros":
            raise UnsupportedLayerError(f"layer {name!r}: {kind} padding_mode={module.padding_mode!r}; only 'zeros'.")
        if isinstance(module.padding, str):
            raise UnsupportedLayerError(f"layer {name!r}: {kind} padding={module.padding!r}; give explicit integers.")


def _conv2d_params(conv):
    """``(kernel, stride, padding, dilation)`` as 2-D pairs (a Conv1d has height 1)."""
    if isinstance(conv, nn.Conv1d):
        return ((1, conv.kernel_size[0]), (1, conv.stride[0]), (0, conv.padding[0]), (1, conv.dilation[0]))
    return conv.kernel_size, conv.stride, conv.padding, conv.dilation


def _out_hw(conv, h: int, w: int) -> tuple[int, int]:
    out = []
    for size, k, s, p, d in zip((h, w), *_conv2d_params(conv)):
        out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
    return out[0], out[1]


def _as_2d(module, shape):
    """A Conv1d input shape ``(B, C, L)`` as ``(B, C, 1, L)``; others unchanged."""
    return (shape[0], shape[1], 1, shape[2]) if isinstance(module, nn.Conv1d) and len(shape) == 3 else tuple(shape)


def gemm_groups(module: nn.Module) -> int:
    """How many GEMMs one forward of the layer is (a grouped conv's groups; else 1)."""
    return int(getattr(module, "groups", 1))


def gemm_dims(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(M, K, N)`` of each GEMM a layer runs for one input of shape ``in_shape`` (with
    batch); a grouped conv runs :func:`gemm_groups` of them."""
    if isinstance(module, nn.Linear):
        if len(in_shape) < 1 or in_shape[-1] != module.in_features:
            raise MappingError(f"Linear expects {module.in_features} input features; got shape {tuple(in_shape)}.")
        return int(np.prod(in_shape[:-1])), module.in_features, module.out_features
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        kind, dims = (("Conv1d", "L"), ("Conv2d", "H, W"))[isinstance(module, nn.Conv2d)]
        if len(in_shape) != 2 + len(dims.split(",")) or in_shape[1] != module.in_channels:
            raise MappingError(f"{kind} expects (B, {module.in_channels}, {dims}) inputs; got shape {tuple(in_shape)}.")
        b, _, h, w = _as_2d(module, in_shape)
        oh, ow = _out_hw(module, h, w)
        if oh < 1 or ow < 1:
            raise MappingError(f"{kind} kernel {module.kernel_size} does not fit the {'x'.join(map(str, in_shape[2:]))} input.")
        (kh, kw) = _conv2d_params(module)[0]
        return b * oh * ow, module.in_channels // module.groups * kh * kw, module.out_channels // module.groups
    raise UnsupportedLayerError(f"{type(module).__name__} has no lowering")


def lower_input(module: nn.Module, xq: np.ndarray) -> np.ndarray:
    """The ``X`` operand ``(M, groups * K)`` of a layer input already in the operand dtype
    (group ``j`` of a grouped conv takes columns ``j*K:(j+1)*K``)."""
    if isinstance(module, nn.Linear):
        return np.ascontiguousarray(xq.reshape(-1, module.in_features))
    xq = xq.reshape(_as_2d(module, xq.shape))
    # im2col on the operand dtype (int8: 4x less memory traffic than torch's float unfold):
    # a strided view of the padded input, copied once into (pixels, C * kh * kw) order
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _conv2d_params(module)
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
    b, _, h, w = _as_2d(module, x_shape)
    oh, ow = _out_hw(module, h, w)
    y = y.reshape(b, oh, ow, module.out_channels).permute(0, 3, 1, 2).contiguous()
    return y.reshape(b, module.out_channels, ow) if isinstance(module, nn.Conv1d) else y
