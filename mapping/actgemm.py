"""GEMMs between two activations on the array: ``Q @ K^T``, ``A @ V``, ``torch.bmm``.

Neither operand is a trained weight, so both are quantized per tensor with scales
calibrated like any layer input. The **right operand is the stationary one**: for
``a (..., M, K) @ b (..., K, N)``, ``b`` is loaded into the PEs as a layer's weights are
(``b[k, n]`` on PE ``(k mod R, n mod C)``, its load cycles counted in every fold like a
weight load) and the rows of ``a`` stream through as input vectors. Batch dimensions
(broadcast as ``torch.matmul`` does) are separate GEMMs, each with its own stationary
operand: attention over ``B`` inputs and ``h`` heads is ``B * h`` GEMMs per product.

Bypass on such a GEMM zeroes the stationary operand where it meets a faulty PE, exactly as
it zeroes a layer's weights; :meth:`QuantizedModel.with_masks` takes the chip's faulty-PE
map for these ops and zeroes their stationary operands at run time, every forward.

``F.scaled_dot_product_attention`` becomes :class:`SimAttention`: two such GEMMs (``Q K^T``
and ``A V``) with the scaling, masking and softmax on the host in float;
``nn.MultiheadAttention`` becomes :class:`AttentionHeads` (its q/k/v/out projections as
``nn.Linear`` layers and the same two products), which tracing then lowers like any code.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import MappingError, UnsupportedLayerError
from .layers import SimState, run_on_array

__all__ = ["SimMatmul", "SimAttention", "AttentionHeads"]


class SimMatmul(nn.Module):
    """``torch.matmul(a, b)`` of two activations on the array (``b`` stationary).

    ``kind="linear"`` computes ``F.linear(a, b, bias)`` (``b`` an activation ``(N, K)``).
    """

    def __init__(self, precision, name: str, kind: str = "matmul"):
        super().__init__()
        self.kind = kind
        self.sim = SimState(precision, name)
        self.sim.b_scale = 1.0
        self.sim.pe_mask = None  # (R, C) bool: stationary elements zeroed there (bypass), or None

    def calibrate(self) -> None:
        """Set both operands' scales from what float mode recorded."""
        st = self.sim
        st.a_scale, st.b_scale = st.codec.act_scale(st.amax[0]), st.codec.act_scale(st.amax[1])

    def forward(self, a, b, bias=None):
        st = self.sim
        if self.kind == "linear":
            b = b.transpose(-1, -2)
        if a.dim() < 2 or b.dim() < 2:
            raise MappingError(f"op {st.name!r}: a matrix product of 1-D operands ({tuple(a.shape)} @ "
                               f"{tuple(b.shape)}) has no GEMM form on the array; unsqueeze them to 2-D.")
        (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
        if k != k2:
            raise MappingError(f"op {st.name!r}: shapes {tuple(a.shape)} @ {tuple(b.shape)} do not match.")
        batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        g = int(np.prod(batch)) if batch else 1
        if st.mode == "float":
            st.see(a, b)
            st.gemms.extend([(m, k, n)] * g)
            y = torch.matmul(a, b)
            return y if bias is None else y + bias
        aq = st.codec.act(a.expand(*batch, m, k), st.a_scale).reshape(g, m, k)
        bq = st.codec.act(b.expand(*batch, k, n), st.b_scale).reshape(g, k, n)
        if st.pe_mask is not None:
            R, C = st.pe_mask.shape
            dead = st.pe_mask[np.arange(k)[:, None] % R, np.arange(n)[None, :] % C]
            bq = np.where(dead, np.zeros((), bq.dtype), bq)
        images = a.shape[0] if a.dim() > 2 else 1
        if st.flips is None and st.guard is None and st.array is not None:  # one batched call, same bits
            res = st.array.matmul_many(np.ascontiguousarray(aq), np.ascontiguousarray(bq), st.engine)
            st.n_cycles += res.n_cycles
            st.gemms.extend([(m, k, n)] * g)
            out = res.out
        else:  # each GEMM draws its flips and passes its check on its own
            out = np.stack([run_on_array(st, np.ascontiguousarray(aq[i]), np.ascontiguousarray(bq[i]), images)
                            for i in range(g)])
        y = st.codec.result(out, st.a_scale, torch.tensor(st.b_scale, dtype=torch.float64), None)
        y = y.reshape(*batch, m, n)
        return y if bias is None else y + bias


class SimAttention(nn.Module):
    """``F.scaled_dot_product_attention`` with its two products on the array."""

    def __init__(self, precision, name: str):
        super().__init__()
        self.qk = SimMatmul(precision, f"{name}.qk")
        self.av = SimMatmul(precision, f"{name}.av")
        self.name = name

    def forward(self, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if dropout_p:
            raise MappingError(f"attention {self.name!r} was called with dropout_p={dropout_p}; a chip runs "
                               "inference: call the model in eval mode (dropout_p=0).")
        if enable_gqa:
            raise UnsupportedLayerError(f"attention {self.name!r}: enable_gqa=True is not supported.")
        scores = self.qk(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]) if scale is None else scale)
        L, S = scores.shape[-2:]
        if is_causal:
            scores = scores.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool \
                else scores + attn_mask
        return self.av(scores.softmax(dim=-1), v)


class AttentionHeads(nn.Module):
    """``nn.MultiheadAttention`` as code tracing can lower: q, k, v and output projections
    (``nn.Linear``, from the module's ``in_proj`` and ``out_proj``) and the two per-head
    products as matrix products, softmax on the host. Same arguments and outputs as
    ``nn.MultiheadAttention.forward`` (weights averaged over heads unless told otherwise)."""

    def __init__(self, mha: nn.MultiheadAttention, name: str = ""):
        super().__init__()
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise UnsupportedLayerError(
                f"nn.MultiheadAttention {name!r}: kdim/vdim other than embed_dim, add_bias_kv and add_zero_attn "
                "are not supported; mark it as a leaf (quantize(..., leaves=[...])) to run it on the host.")
        e, self.heads, self.batch_first = mha.embed_dim, mha.num_heads, mha.batch_first
        self.head_dim = e // self.heads
        bias = mha.in_proj_bias is not None
        for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):
            lin = nn.Linear(e, e, bias=bias)
            with torch.no_grad():
                lin.weight.copy_(mha.in_proj_weight[i * e:(i + 1) * e])
                if bias:
                    lin.bias.copy_(mha.in_proj_bias[i * e:(i + 1) * e])
            setattr(self, proj, lin)
        self.out_proj = nn.Linear(e, e, bias=mha.out_proj.bias is not None)
        self.out_proj.load_state_dict(mha.out_proj.state_dict())

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        q = self.q_proj(query).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)  # (B, h, L, d)
        k = self.k_proj(key).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        v = self.v_proj(value).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        if attn_mask is not None:
            mask = attn_mask if attn_mask.dim() == 2 else attn_mask.unflatten(0, (-1, self.heads))
            scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        if key_padding_mask is not None:
            kpm = key_padding_mask[:, None, None, :]
            scores = scores.masked_fill(kpm, float("-inf")) if kpm.dtype == torch.bool else scores + kpm
        if is_causal and attn_mask is None:
            raise MappingError("nn.MultiheadAttention: is_causal=True needs attn_mask, as torch requires.")
        attn = F.softmax(scores, dim=-1)
        out = self.out_proj(torch.matmul(attn, v).transpose(1, 2).flatten(-2))
        if not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        return out, attn.mean(dim=1) if average_attn_weights else attn
