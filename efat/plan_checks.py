"""A plan checked against itself: every number follows from the others.

:func:`check_plan` is what :class:`efat.Plan` runs when it is built or loaded. It
recomputes, from the plan's own grid, each chip's amount and status, each group's fused
rate and amount, and the three policy costs, and raises :class:`PlanError` naming the
first thing that disagrees. (That the plan fits a population is
:meth:`efat.Plan.check_population`.)
"""

from __future__ import annotations

import math
import sys
from numbers import Real

import numpy as np

from .constraint import Constraint
from .errors import PlanError
from .resilience import amount_at

__all__ = ["check_plan"]

MAX_DIM = 4096  # as simulator.ArrayConfig
_TOL = 1e-9


def check_plan(p) -> None:
    """Raise :class:`PlanError` unless plan ``p`` is consistent in itself."""
    _check_settings(p)
    n_pes = p.shape[0] * p.shape[1]
    rates, need = np.array(p.fault_rates), np.array(p.required_epochs_grid)
    ids = [c.id for c in p.chips]  # unique: checked by Plan before the group structure
    for c in p.chips:
        _check_chip(c, n_pes, rates, need)
    position = {chip_id: i for i, chip_id in enumerate(ids)}
    last_first = -1
    for g in p.groups:
        first = _check_group(g, p.shape, rates, need, position, p.epochs)
        if first <= last_first:
            raise PlanError(f"group {g.index}: groups must be ordered by their first member's position.")
        last_first = first
    _check_costs(p)


def _check_settings(p) -> None:
    if not isinstance(p.constraint, Constraint):
        raise PlanError(f"constraint must be an efat.Constraint; got {type(p.constraint).__name__}.")
    if not isinstance(p.provenance, dict):
        raise PlanError(f"provenance must be a dict; got {type(p.provenance).__name__}.")
    _number("baseline", p.baseline, 0.0, 1.0)
    if (len(p.shape) != 2 or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_DIM
                                     for d in p.shape)):
        raise PlanError(f"shape must be (rows, cols), each an int in [1, {MAX_DIM}]; got {p.shape!r}.")
    if not isinstance(p.fingerprint, str) or len(p.fingerprint) != 64:
        raise PlanError(f"fingerprint must be a sha256 hex digest; got {p.fingerprint!r}.")
    _grid("fault_rates", p.fault_rates, 0.0, 1.0)
    epochs = _grid("epochs", p.epochs, 0.0, math.inf)
    if epochs[0] != 0:
        raise PlanError(f"epochs (the map's grid of amounts) must start with 0; got {list(p.epochs)}.")
    need = np.array(p.required_epochs_grid, float)
    if need.shape != (len(p.fault_rates),):
        raise PlanError(f"required_epochs_grid must have one amount per grid rate ({len(p.fault_rates)}); "
                        f"got {len(p.required_epochs_grid)}.")
    off = [e for e in need.tolist() if not math.isinf(e) and e not in p.epochs]
    if off or np.isneginf(need).any() or np.isnan(need).any():
        raise PlanError(f"required_epochs_grid holds {off[0] if off else need.tolist()!r}, not an amount on the "
                        f"map's grid {list(p.epochs)} (or null).")
    if (need[1:] < need[:-1]).any():
        raise PlanError(f"required_epochs_grid must not decrease with the fault rate; got {need.tolist()}.")


def _check_chip(c, n_pes: int, rates: np.ndarray, need: np.ndarray) -> None:
    rate = _number(f"chip {c.id!r}: rate", c.rate, 0.0, 1.0)
    if abs(rate * n_pes - round(rate * n_pes)) > 1e-6:
        raise PlanError(f"chip {c.id!r}: rate {rate!r} is not a number of faulty PEs over {n_pes} PEs.")
    want = float(amount_at(rates, need, rate))
    if c.epochs != want:
        raise PlanError(f"chip {c.id!r}: the plan says {c.epochs!r} epochs, but E* at its rate {rate:g} on the "
                        f"plan's grid is {want!r}.")
    status = "infeasible" if math.isinf(want) else "no_retraining" if want == 0 else "retrain"
    if c.status != status:
        raise PlanError(f"chip {c.id!r}: status {c.status!r}, but its amount {want!r} makes it {status!r}.")


def _check_group(g, shape, rates, need, position, grid) -> int:
    """Check one group; returns the position of its first member."""
    rows, cols = shape
    if not g.members:
        raise PlanError(f"group {g.index} has no members.")
    where = [position[m] for m in g.members]
    if where != sorted(where):
        raise PlanError(f"group {g.index}: members must be listed in population order.")
    pes = list(g.fused_pes)
    bad = next((pe for pe in pes if not (0 <= pe[0] < rows and 0 <= pe[1] < cols)), None)
    if bad is not None:
        raise PlanError(f"group {g.index}: fused PE {bad} lies outside the {rows}x{cols} array.")
    if pes != sorted(set(pes)):
        raise PlanError(f"group {g.index}: fused PEs must be distinct and in row-major order.")
    if abs(g.fused_rate - len(pes) / (rows * cols)) > 1e-12:
        raise PlanError(f"group {g.index}: fused_rate {g.fused_rate!r} disagrees with its {len(pes)} fused PEs "
                        f"({len(pes)}/{rows * cols} = {len(pes) / (rows * cols)!r}).")
    want = float(amount_at(rates, need, g.fused_rate))
    if g.epochs not in grid or g.epochs != want:
        raise PlanError(f"group {g.index}: the plan says {g.epochs!r} epochs, but E* at its fused rate "
                        f"{g.fused_rate:g} on the plan's grid is {want!r}"
                        + ("" if g.epochs in grid else f" ({g.epochs!r} is not on the map's grid {list(grid)})")
                        + ".")
    est, lo, hi = (_number(f"group {g.index}: pass_probability", v, 0.0, 1.0) for v in g.pass_probability)
    if not lo <= est <= hi:
        raise PlanError(f"group {g.index}: pass_probability {list(g.pass_probability)} is not (estimate, lower, "
                        "upper) with lower <= estimate <= upper.")
    _number(f"group {g.index}: expected_epochs", g.expected_epochs, g.epochs - _TOL, sys.float_info.max)
    return where[0]


def _check_costs(p) -> None:
    c = p.costs
    amounts = [ch.epochs for ch in p.chips]
    finite = [e for e in amounts if math.isfinite(e)]
    retrain = [ch.epochs for ch in p.chips if ch.status == "retrain"]
    largest = max(finite, default=0.0)
    _number("costs.fixed_amount", c.fixed_amount, largest, math.inf)
    expect = {
        "fixed": (c.fixed_amount * len(finite), len(finite)),
        "reduce": (math.fsum(retrain), len(retrain)),
        "efat": (math.fsum(g.epochs for g in p.groups), len(p.groups)),
    }
    for name, (epochs, runs) in expect.items():
        got = getattr(c, name)
        if got.runs != runs or abs(got.epochs - epochs) > _TOL * max(1.0, abs(epochs)):
            raise PlanError(f"costs.{name} says {got.epochs!r} epochs in {got.runs} runs; the chips and groups "
                            f"of the plan add up to {epochs!r} in {runs}.")
        for part in ("expected", "lower", "upper"):
            _number(f"costs.{name}.{part}", getattr(got, part), 0.0, sys.float_info.max)
        if got.lower > got.upper:
            raise PlanError(f"costs.{name}: the interval [{got.lower!r}, {got.upper!r}] is empty.")


def _number(name: str, x, lo: float, hi: float) -> float:
    if isinstance(x, bool) or not isinstance(x, Real) or not lo <= float(x) <= hi:
        raise PlanError(f"{name} must be a number in [{lo:g}, {hi:g}]; got {x!r}.")
    return float(x)


def _grid(name: str, values, lo: float, hi: float) -> np.ndarray:
    arr = np.array(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all() or (arr < lo).any() or (arr > hi).any():
        raise PlanError(f"{name} must be a non-empty list of numbers in [{lo:g}, {hi:g}]; got {list(values)!r}.")
    if (np.diff(arr) <= 0).any():
        raise PlanError(f"{name} must be strictly increasing; got {arr.tolist()}.")
    return arr
