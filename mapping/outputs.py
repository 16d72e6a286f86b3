"""Model outputs of any structure, batch by batch, and the predictions read from them.

A model may return a tensor, a tuple or list, a dict or a named tuple of them (nested);
:func:`run_model` runs it batch by batch and joins the batches leaf by leaf along the first
dimension, so the result has the structure the model returns. Predictions are read from the
first tensor in it (depth first): the argmax over its **last** dimension, so per-token
logits ``(n, T, classes)`` give per-token predictions ``(n, T)``, compared with labels of
the same shape.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import MappingError

__all__ = ["concat_outputs", "first_tensor", "predictions_of", "accuracy_of"]


def concat_outputs(batches: list):
    """Join per-batch outputs of one structure along the first dimension of every tensor."""
    first = batches[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(batches) if first.dim() else torch.stack(batches)
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # a named tuple
        return type(first)(*(concat_outputs([b[i] for b in batches]) for i in range(len(first))))
    if isinstance(first, (tuple, list)):
        return type(first)(concat_outputs([b[i] for b in batches]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: concat_outputs([b[k] for b in batches]) for k in first}
    return batches  # anything else (None, numbers): one per batch


def first_tensor(out):
    """The first tensor of an output structure (depth first), or None."""
    if isinstance(out, torch.Tensor):
        return out
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    for v in values:
        t = first_tensor(v)
        if t is not None:
            return t
    return None


def predictions_of(out) -> np.ndarray:
    """Argmax over the last dimension of the output's first tensor."""
    logits = first_tensor(out)
    if logits is None or logits.dim() < 1:
        raise MappingError("the model's output holds no tensor of scores to read predictions from.")
    return logits.argmax(dim=-1).numpy()


def accuracy_of(pred: np.ndarray, labels) -> float:
    """Fraction of predictions equal to ``labels`` (same shape: per input, or per token)."""
    y = np.asarray(labels)
    if y.shape != pred.shape:
        raise MappingError(f"labels of shape {y.shape} do not match the predictions' shape {pred.shape} "
                           "(the argmax over the last dimension of the model's first output).")
    return float((pred == y).mean())
