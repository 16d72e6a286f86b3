"""ApproxABFT thresholds by fault injection, and checksum blocks of even size across layers
(docs/semantics.md, "ApproxABFT, as this project implements it").

:func:`calibrate_thresholds` finds, layer by layer, the largest threshold whose unrecovered errors
cost at most ``max_drop`` accuracy on calibration data:

1. a fault-free run gives the reference accuracy (against the labels, or against its own
   predictions when there are none: then accuracy is agreement and the reference 1) and the
   names of the layers that run GEMMs;
2. for each layer ``L`` and run ``r``, transient flips are injected into ``L``'s GEMMs only (the
   source ``flips(seed_r)``, or ``TransientFaults(ber, seed_r)``; ``seed_r = crc32([seed, L, r])``)
   and a detection-only run (threshold inf) records every mismatched block's magnitude;
3. the candidates are 0 and the distinct finite magnitudes seen; ``acc(t)`` is the mean accuracy
   over the runs when ``L``'s blocks above ``t`` are recovered *ideally* (recomputed on a
   fault-free array, drawing no flips, so every candidate sees the same flips in ``L``'s GEMMs);
4. the threshold is the largest candidate with ``reference - acc(t) <= max_drop``: the largest
   one if it passes, else a binary search (assuming accuracy falls as the threshold rises; the
   chosen threshold's accuracy is always measured); 0 when none passes or no block mismatched.

Each layer's bound holds for faults in that layer alone; with every layer faulty at once the
drops can add up (calibrate with ``max_drop / layers`` for a bound on the sum).
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from .approx import ApproxAbft

__all__ = ["calibrate_thresholds", "ThresholdCalibration", "LayerCalibration", "gemm_shapes"]


@dataclass
class LayerCalibration:
    """How one layer's threshold was chosen."""

    threshold: float
    mismatched: int  # mismatched blocks seen in the detection-only runs
    candidates: int  # distinct finite magnitudes seen (0 not counted)
    accuracy: float  # calibration accuracy at the threshold (mean over runs)
    accuracy_unrecovered: float  # with no recovery at all (threshold inf)
    evaluations: int  # candidate thresholds measured


@dataclass
class ThresholdCalibration:
    """Per-layer thresholds and how they were found (:func:`calibrate_thresholds`)."""

    thresholds: dict
    block: object
    reference: float  # fault-free accuracy on the calibration data
    max_drop: float
    layers: tuple  # every layer that ran a GEMM, in order
    details: dict = field(default_factory=dict)  # layer -> LayerCalibration

    def protect(self, **kwargs) -> ApproxAbft:
        """An :class:`ApproxAbft` with these thresholds and blocks (``kwargs``: e.g. ``recompute``)."""
        return ApproxAbft(self.thresholds, block=self.block, layers=self.layers, **kwargs)


class _Recorder:
    def __init__(self):
        self.shapes = {}

    def session(self):
        return self

    def run_gemm(self, name, array, x, w, matmul):
        self.shapes.setdefault(name, (x.shape[0], x.shape[1], w.shape[1]))
        return matmul(x, w)


def gemm_shapes(qm, x, cfg) -> dict:
    """``{layer: (m, k, n)}`` of each layer's first GEMM on the inputs ``x`` (a fault-free run), e.g.
    one image for :func:`protect.approx.block_shapes`."""
    from mapping import run_model
    from simulator import SystolicArray

    rec = _Recorder()
    run_model(qm, x, SystolicArray(cfg), batch_size=max(len(x), 1), protect=rec, progress=False)
    return rec.shapes


class _OneLayer:
    """A transient fault source that strikes one layer's GEMMs only."""

    def __init__(self, source, layer):
        self.source, self.layer = source, layer

    def session(self):
        inner = self.source.session() if hasattr(self.source, "session") else self.source

        def draw(name, cfg, m, k, n, batch=1):
            return inner(name, cfg, m, k, n, batch) if name == self.layer else (None, None)

        return draw


def _inputs(data):
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        return data.x_train, data.y_train
    return data, None


def calibrate_thresholds(qm, data, cfg, ber=None, max_drop: float = 0.005, *, flips=None, block=None,
                         runs: int = 1, seed: int = 0, batch_size: int = 256, layers=None,
                         progress=None) -> ThresholdCalibration:
    """Per-layer ApproxABFT thresholds by fault injection (the procedure of the module).

    Parameters
    ----------
    qm : mapping.QuantizedModel
        The model as it runs on the array (quantize once, e.g. with :func:`mapping.quantize`).
    data : Tensor, (inputs, labels) or Dataset
        Calibration data (a Dataset: its training split; use a few hundred images). Without
        labels, accuracy is agreement with the fault-free predictions.
    cfg : simulator.ArrayConfig
        The array (fault-free: transient faults only).
    ber : float, optional
        Inject ``faults.TransientFaults(ber=ber, seed=...)``; or give ``flips``.
    max_drop : float in [0, 1]
        Largest accuracy drop (a fraction: 0.005 = half a point) the errors a layer leaves
        unrecovered may cost, with faults in that layer alone.
    flips : callable, optional
        ``seed -> fault source`` (e.g. ``lambda s: TransientFaults(per_image=0.1, seed=s)``), instead
        of ``ber``.
    block : None, (rows, cols) or dict
        The checksum blocks, as :class:`ApproxAbft` will use them (the magnitudes depend on them).
    runs : int
        Fault-injection runs per layer (seeds derived from ``seed``, the layer and the run).
    layers : iterable of str, optional
        Calibrate only these layers (default: every layer that runs a GEMM).

    Returns
    -------
    ThresholdCalibration (``.thresholds``, ``.protect()`` for the :class:`ApproxAbft`).
    """
    from mapping import MappingError, run_model
    from simulator import SystolicArray

    if (ber is None) == (flips is None):
        raise ValueError(f"give one of ber and flips (a seed -> fault source callable); got ber={ber!r}, "
                         f"flips={flips!r}.")
    if flips is None:
        from faults import TransientFaults

        TransientFaults(ber=ber)  # checks the rate

        def flips(s):
            return TransientFaults(ber=ber, seed=s)
    if isinstance(max_drop, bool) or not isinstance(max_drop, Real) or not 0 <= max_drop <= 1:
        raise ValueError(f"max_drop must be an accuracy fraction in [0, 1] (0.005 = half a point); got {max_drop!r}.")
    for name, v in (("runs", runs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v!r}.")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed!r}.")
    ApproxAbft(block=block)  # checks the blocks
    x, y = _inputs(data)
    array, clean = SystolicArray(cfg), SystolicArray(cfg)

    def recover(a, b):  # ideal recovery: a fault-free array, no flips drawn
        return clean.matmul(a, b).out

    def run(protect, source=None):
        return run_model(qm, (x, y), array, batch_size=batch_size, flips=source, protect=protect, progress=False)

    ref_run = run(ApproxAbft(math.inf, block=block).session())
    names = tuple(ref_run.protection.layers)
    if y is None:
        y = ref_run.predictions
        ref = 1.0
    else:
        ref = float(ref_run.accuracy)
    todo = names if layers is None else tuple(layers)
    for n in todo:
        if n not in names:
            raise MappingError(f"layers names {n!r}, which runs no GEMM in this model; its layers: "
                               f"{', '.join(map(repr, names))}.")
    from tqdm.auto import tqdm

    thresholds, details = {}, {}
    for layer in tqdm(todo, desc="calibrate", unit="layer", disable=not progress):
        sources = [_OneLayer(flips(zlib.crc32(json.dumps([seed, layer, r]).encode())), layer) for r in range(runs)]
        mags, acc_inf = [], []
        for src in sources:
            res = run(ApproxAbft(math.inf, block=block).session(record=True), src)
            st = res.protection.layers.get(layer)
            mags += st.magnitudes if st is not None else []
            acc_inf.append(res.accuracy)
        cands = [0.0] + sorted({m for m in mags if math.isfinite(m) and m > 0})
        accs = {}

        def acc(i):
            if i not in accs:
                prot = ApproxAbft({layer: cands[i]}, block=block, default_threshold=math.inf)
                accs[i] = float(np.mean([run(prot.session(recover=recover), s).accuracy for s in sources]))
            return accs[i]

        def ok(i):
            return ref - acc(i) <= max_drop + 1e-12

        lo = len(cands) - 1
        if not mags:
            lo = 0
        elif not ok(lo):
            lo, hi = 0, lo
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        thresholds[layer] = cands[lo]
        unrecovered = float(np.mean(acc_inf))
        details[layer] = LayerCalibration(cands[lo], len(mags), len(cands) - 1, acc(lo) if mags else unrecovered,
                                          unrecovered, len(accs))
    return ThresholdCalibration(thresholds, block, ref, float(max_drop), names, details)
