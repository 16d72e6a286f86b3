"""Range-check detection and correction of GEMM results (docs/semantics.md, "Range check").

A fault that matters in a float GEMM usually makes an output huge (an exponent bit) or not
a number; in an integer GEMM, a high bit. A *range check* compares every result of a layer's
GEMM, as it leaves the array, with a bound calibrated on fault-free data: the largest
``|output|`` the layer produced on calibration inputs, times a margin. An output that is
not finite or beyond the bound is *flagged* and corrected:

* ``"zero"``: set to 0 (the layer's bias is still added on the host);
* ``"clamp"``: set to the bound with its sign (a NaN becomes 0).

The check runs on the host, after the array: 0 extra array cycles; per output, a float
check costs 4 operations (is-finite, absolute value, comparison, select) and an integer one
3 (no is-finite). Outputs that a fault corrupts without leaving the calibrated range pass:
the check trades detection for no false alarms on fault-free data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import torch

from mapping import MappingError, QuantizedModel, quantize
from simulator import ArrayConfig, SystolicArray

__all__ = ["RangeCheck", "CheckStats", "LayerStats", "MODES"]

MODES = ("zero", "clamp")


@dataclass
class LayerStats:
    """What the check saw in one layer's GEMMs.

    ``corrupted``, ``detected`` and ``false_alarms`` are counted only when the session
    measures against a fault-free reference (``session(measure=True)``: the same inputs on a
    fault-free array), else they stay 0. A *false alarm* is an output flagged although this
    GEMM computed it exactly: on a fault-free chip a false positive; with faults, mostly an
    error an earlier layer passed on (its input was already wrong).
    """

    outputs: int = 0
    flagged: int = 0
    corrupted: int = 0  # outputs whose bits differ from the fault-free GEMM on the same inputs
    detected: int = 0  # flagged and corrupted
    false_alarms: int = 0  # flagged though this GEMM computed the fault-free bits (see below)


@dataclass
class CheckStats:
    """Per-layer :class:`LayerStats` of one run, and their totals."""

    layers: dict = field(default_factory=dict)
    host_ops_per_output: int = 4

    def total(self) -> LayerStats:
        t = LayerStats()
        for s in self.layers.values():
            for k in ("outputs", "flagged", "corrupted", "detected", "false_alarms"):
                setattr(t, k, getattr(t, k) + getattr(s, k))
        return t

    @property
    def detection_rate(self) -> float:
        """Share of corrupted outputs that were flagged (NaN when none was corrupted)."""
        t = self.total()
        return t.detected / t.corrupted if t.corrupted else float("nan")

    @property
    def flag_rate(self) -> float:
        """Share of all outputs flagged."""
        t = self.total()
        return t.flagged / t.outputs if t.outputs else 0.0

    @property
    def host_ops(self) -> int:
        return self.total().outputs * self.host_ops_per_output


class _Session:
    """The guard one run uses: checks and corrects every GEMM result, counting as it goes."""

    def __init__(self, check: RangeCheck, measure: bool):
        self.check, self.measure = check, measure
        self.stats = CheckStats()
        self._refs: dict = {}

    def __call__(self, name, array, x, w, out):
        bound = self.check.bounds.get(name)
        if bound is None:
            raise MappingError(f"the range check has no bound for layer {name!r}; calibrate it on this model.")
        is_float = out.dtype.kind == "f"
        self.stats.host_ops_per_output = 4 if is_float else 3
        mag = np.abs(out.astype(np.float64))
        flagged = (mag > bound) | ~np.isfinite(mag)
        s = self.stats.layers.setdefault(name, LayerStats())
        s.outputs += out.size
        s.flagged += int(flagged.sum())
        if self.measure:
            key = array.cfg
            if key not in self._refs:
                self._refs[key] = SystolicArray(array.cfg)
            ref = self._refs[key].matmul(x, w).out
            bad = out.view(np.int32) != ref.view(np.int32) if is_float else out != ref
            s.corrupted += int(bad.sum())
            s.detected += int((flagged & bad).sum())
            s.false_alarms += int((flagged & ~bad).sum())
        if not flagged.any():
            return out
        fixed = out.copy()
        if self.check.mode == "zero":
            fixed[flagged] = 0
        else:
            b = np.array(bound).astype(out.dtype) if is_float else np.array(min(bound, 2**31 - 1)).astype(out.dtype)
            fixed[flagged] = np.where(out[flagged] > 0, b, -b)
            if is_float:
                fixed[np.isnan(out)] = 0
        return fixed


@dataclass(frozen=True)
class RangeCheck:
    """Per-layer bounds on GEMM results, and what to do with an output beyond them.

    Build one with :meth:`calibrate`; pass it as ``run_model(..., protect=check)``.

    Parameters
    ----------
    bounds : dict[str, float]
        Per lowered layer (qualified name): flag outputs with ``|y| > bound``.
    mode : {"zero", "clamp"}
    """

    bounds: dict
    mode: str = "zero"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"RangeCheck.mode must be one of {list(MODES)}; got {self.mode!r}.")
        for name, b in self.bounds.items():
            if isinstance(b, bool) or not isinstance(b, Real) or not b >= 0:
                raise ValueError(f"RangeCheck bound of layer {name!r} must be a number >= 0; got {b!r}.")

    @classmethod
    def calibrate(cls, model, calib, cfg: ArrayConfig, margin: float = 1.0, mode: str = "zero",
                  batch_size: int = 256) -> RangeCheck:
        """Bounds from the fault-free chip: ``margin x`` the largest finite ``|output|`` of each
        layer's GEMM on the calibration inputs ``calib``.

        ``model`` is a :class:`mapping.QuantizedModel` for ``cfg.precision`` or a float
        model (quantized on ``calib`` first).
        """
        if isinstance(margin, bool) or not isinstance(margin, Real) or not margin >= 1:
            raise ValueError(f"margin must be a number >= 1; got {margin!r}.")
        qm = model if isinstance(model, QuantizedModel) else quantize(model, calib, cfg.precision)
        peak = {name: 0.0 for name, _ in qm.layers}

        def record(name, array, x, w, out):
            mag = np.abs(out.astype(np.float64))
            finite = mag[np.isfinite(mag)]
            if finite.size:
                peak[name] = max(peak[name], float(finite.max()))
            return out

        with qm.on(SystolicArray(cfg), guard=record) as module, torch.no_grad():
            for i in range(0, len(calib), batch_size):
                module(calib[i : i + batch_size].float())
        return cls({name: p * float(margin) for name, p in peak.items()}, mode)

    def with_mode(self, mode: str) -> RangeCheck:
        return RangeCheck(dict(self.bounds), mode)

    def session(self, measure: bool = False) -> _Session:
        """A guard for one run; ``measure=True`` also runs each GEMM on a fault-free array
        to count corrupted, detected and falsely flagged outputs (twice the array work)."""
        return _Session(self, measure)
