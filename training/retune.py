"""Fal-reTune, as this project implements it: fault-aware retuning of the weights on faulty PEs.

Siddique & Hoque (2023) retune an approximate DNN's weights with the chip's faults in view
instead of retraining it. docs/semantics.md ("Fal-reTune") states our precise version:

1. **Activation distribution.** Per lowered layer, the histogram ``h(a)`` of the int8 act
   codes the layer's GEMM receives, over calibration inputs on the fault-free chip
   (:func:`activation_histograms`, once per model).
2. **What a faulty PE computes.** A weight ``w`` on PE ``(r, c)`` meets activation ``a`` as
   ``g(w', a) = product(T[weight(w'), act(a)])``: the PE's weight and product stuck-at masks,
   the act masks of its row up to and including it (an act fault upstream changes what it
   sees), and ``T`` the precision's product (the LUT, or ``w * a``). A PE whose psum register
   is stuck is not retuned: a psum fault acts on the sum, which no weight value undoes.
3. **The best weight.** For each weight value ``w`` the retuned value is
   ``argmin over w' in [-128, 127] of sum_a h(a) (g(w', a) - T[w, a])**2``: the weight whose
   faulty product is closest, in mean square over the layer's activations, to what a
   fault-free PE of the same multiplier computes. ``w' = w`` wins ties, so retuning never
   makes a weight's expected error larger. One 256 x 256 table per distinct PE behaviour and
   layer; no gradient steps.
4. Only weights on faulty PEs change (``W[k, n]`` sits on PE ``(k mod R, n mod C)``); the
   chip then runs without bypass.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from mapping import MappingError, QuantizedModel
from simulator import ArrayConfig, FloatPrecision, SystolicArray, composed_act_masks, stuck
from simulator.precision import LutPrecision, lookup, sext

__all__ = ["activation_histograms", "fal_retune", "RetuneReport", "product_table", "expected_errors"]

_V = np.arange(-128, 128, dtype=np.int64)


def product_table(precision) -> np.ndarray:
    """``T[w + 128, a + 128]``: the fault-free product of every int8 pair (int64 256 x 256)."""
    if isinstance(precision, LutPrecision):
        return lookup(precision.table, precision.signed, _V[:, None], _V[None, :])
    if isinstance(precision, FloatPrecision) or not hasattr(precision, "act_bits"):
        raise MappingError(f"Fal-reTune needs an integer or LUT precision; got {precision.name}.")
    return np.multiply.outer(_V, _V)


def activation_histograms(qm: QuantizedModel, calib, cfg: ArrayConfig, batch_size: int = 256) -> dict:
    """Per lowered layer: counts of each act code (index ``code + 128``) the layer's GEMM
    receives over ``calib`` on the fault-free array of ``cfg`` (float64, length 256)."""
    hist = {name: np.zeros(256) for name, _ in qm.layers}

    def record(name, array, x, w, out):
        hist[name] += np.bincount(x.astype(np.int64).ravel() + 128, minlength=256)[:256]
        return out

    with qm.on(SystolicArray(ArrayConfig(cfg.rows, cfg.cols, qm.precision)), guard=record) as module, torch.no_grad():
        for i in range(0, len(calib), batch_size):
            module(calib[i : i + batch_size].float())
    return hist


def _pe_function(T, masks, cum_and, cum_or, r, c, p_bits):
    """``g[w' + 128, a + 128]``: what PE ``(r, c)`` contributes for weight ``w'`` and act code ``a``."""
    w_eff = np.array([sext((int(v) & int(masks[1, 0, r, c])) | int(masks[1, 1, r, c]), 8) for v in _V])
    a_eff = np.array([sext((int(v) & int(cum_and[r, c])) | int(cum_or[r, c]), 8) for v in _V])
    prod = T[np.ix_(w_eff + 128, a_eff + 128)]
    pa, po = int(masks[2, 0, r, c]), int(masks[2, 1, r, c])
    raw = (prod & pa) | po
    sh = 64 - p_bits
    return (raw << sh) >> sh


def expected_errors(g, T, h) -> np.ndarray:
    """``E[w, w']``: expected squared error of the faulty product with ``w'`` against ``T[w, .]``."""
    p = h / h.sum() if h.sum() > 0 else np.full(256, 1 / 256)
    gf, tf = g.astype(np.float64), T.astype(np.float64)
    return ((gf ** 2) @ p)[None, :] - 2 * (tf * p) @ gf.T + ((tf ** 2) @ p)[:, None]


@dataclass
class RetuneReport:
    """What :func:`fal_retune` did on one chip."""

    retuned_pes: int = 0  # faulty PEs whose weights were retuned
    psum_pes: int = 0  # faulty PEs left alone (stuck psum bits)
    changed_weights: int = 0  # weight values that changed, over all layers
    weights_on_faulty_pes: int = 0
    error_before: float = 0.0  # sum over retuned weights of the expected squared product error
    error_after: float = 0.0
    seconds: float = 0.0
    per_layer: dict = field(default_factory=dict)


def fal_retune(qm: QuantizedModel, fault_map, hists: dict) -> tuple[QuantizedModel, RetuneReport]:
    """A copy of ``qm`` whose weights on ``fault_map``'s faulty PEs are retuned (module docstring).

    ``qm`` must be quantized for the map's precision; ``hists`` comes from
    :func:`activation_histograms`. Deterministic.
    """
    t0 = time.perf_counter()
    cfg = fault_map.cfg
    if cfg.precision != qm.precision:
        raise MappingError(f"the model is quantized for {qm.precision.name}; the chip computes {cfg.precision.name}.")
    missing = [n for n, _ in qm.weight_layers if n not in hists]
    if missing:
        raise MappingError(f"no activation histogram for layer(s) {missing}; use activation_histograms().")
    T = product_table(cfg.precision)
    masks = fault_map.masks
    R, C = cfg.shape
    faulty = fault_map.faulty
    psum_stuck = stuck(masks[3, 0], masks[3, 1])
    cum_and, cum_or = composed_act_masks(masks[0], np.ones((R, C), bool))
    p_bits = cfg.precision.widths()[2]
    pes = [(r, c) for r, c in zip(*np.nonzero(faulty & ~psum_stuck))]
    report = RetuneReport(retuned_pes=len(pes), psum_pes=int((faulty & psum_stuck).sum()))
    behaviours = {}  # behaviour key -> g table
    pe_key = {}
    for r, c in pes:
        key = (int(cum_and[r, c]), int(cum_or[r, c]), *(int(v) for v in masks[1:3, :, r, c].ravel()))
        if key not in behaviours:
            behaviours[key] = _pe_function(T, masks, cum_and, cum_or, r, c, p_bits)
        pe_key[(r, c)] = key
    new = QuantizedModel(copy.deepcopy(qm.module), qm.precision, dict(qm.act_amax), qm.order)
    for name, layer in new.weight_layers:
        wq = layer.sim.w_q.astype(np.int64)
        K, N = wq.shape
        best = {}
        for key, g in behaviours.items():
            E = expected_errors(g, T, hists[name])
            choice = np.argmin(E, axis=1)
            keep = E[np.arange(256), np.arange(256)] <= E[np.arange(256), choice]
            choice = np.where(keep, np.arange(256), choice)  # w' = w wins ties
            best[key] = (choice - 128, E)
        k_idx, n_idx = np.indices((K, N))
        on = faulty[k_idx % R, n_idx % C] & ~psum_stuck[k_idx % R, n_idx % C]
        out = wq.copy()
        changed = 0
        for k, n in zip(*np.nonzero(on)):
            choice, E = best[pe_key[(k % R, n % C)]]
            w = int(wq[k, n])
            out[k, n] = choice[w + 128]
            changed += int(out[k, n] != w)
            report.error_before += float(E[w + 128, w + 128])
            report.error_after += float(E[w + 128, out[k, n] + 128])
        report.weights_on_faulty_pes += int(on.sum())
        report.changed_weights += changed
        report.per_layer[name] = {"weights_on_faulty_pes": int(on.sum()), "changed": changed}
        layer.sim.w_q = out.astype(np.int8)
    report.seconds = time.perf_counter() - t0
    return new, report
