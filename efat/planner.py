"""eFAT planning: which chips of a population retrain, in which groups, for how long.

This is our precise version of eFAT's planning (``docs/semantics.md``, "eFAT",
steps 2-4 and 6). Given a population, a :class:`ResilienceMap` and a user's
``max_accuracy_drop``:

1. **Per chip.** ``E* = rmap.required_epochs(rate, drop - margin, quantile)`` (the rate
   rounds up to the map's grid). ``E* == 0``: bypass alone meets the constraint, status
   ``"no_retraining"``. ``E* == inf``: nothing on the map meets it, status
   ``"infeasible"`` (reported, never grouped). Otherwise ``"retrain"``.
2. **Fusion.** A group's fused map is the OR of its members' faulty PEs; its fused rate
   is (faulty PEs of the OR) / (R*C) and its cost ``E*(fused rate)``. A fusion is
   allowed only while that cost is finite.
3. **Grouping**: a strategy of :mod:`efat.grouping` (``"reward"``, ``"none"``,
   ``"exact"``).
4. **Costs** of three policies, in epochs and retraining runs:

   * ``fixed``: every feasible chip (``"retrain"`` and ``"no_retraining"`` alike, since
     this policy does not consult the map per chip) retrained once with one amount:
     ``fixed_epochs`` if given (it must be at least the largest finite ``E*``, so the
     policy meets the constraint on every feasible chip), else the largest finite
     ``E*`` among the chips, the one amount that suits them all;
   * ``reduce``: the sum of ``E*`` over the chips to retrain, one run each;
   * ``efat``: the sum over groups of the group's ``E*``, one run per group.

   By construction ``efat <= reduce <= fixed``.

Grouping is fast: each chip's faulty PEs are bit-packed into 64-bit words
(:mod:`efat.bitsets`), union sizes are popcounts of ORs, and the reward matrix is
updated only in the merged group's row and column (under 1 s for 1,000 chips of a
128x128 array; ``bench/bench_plan.py``). Torch-free.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from faults import Population

from .bitsets import faulty_pe_lists, pack, population_fingerprint, unpack
from .errors import PlanError
from .grouping import GROUPERS, STRATEGIES, Cost
from .plans import ChipPlan, Costs, GroupPlan, Plan, PolicyCost
from .resilience import ResilienceMap

__all__ = ["plan"]


def _check_inputs(population, rmap, drop, strategy, quantile) -> float:
    if not isinstance(rmap, ResilienceMap):
        raise PlanError(f"rmap must be a ResilienceMap; got {type(rmap).__name__}.")
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy must be one of {list(STRATEGIES)}; got {strategy!r}.")
    if isinstance(drop, bool) or not isinstance(drop, Real) or not 0 <= float(drop) <= 1:
        raise PlanError(f"max_accuracy_drop must be a number in [0, 1] (0.01 = one point); got {drop!r}.")
    if quantile is not None and (isinstance(quantile, bool) or not isinstance(quantile, Real)
                                 or not 0 < float(quantile) <= 1):
        raise PlanError(f"quantile must be None (every trial) or a number in (0, 1]; got {quantile!r}.")
    if len(population) == 0:
        raise PlanError("the population is empty; there is nothing to plan.")
    if not isinstance(population, Population):
        raise PlanError(f"population must be a faults.Population; got {type(population).__name__}.")
    if not rmap.complete:
        missing = int(np.isnan(rmap.accuracy).sum())
        raise PlanError(f"the resilience map is incomplete ({missing} of {rmap.accuracy.size} cells not "
                        "measured); finish it before planning.")
    precision = rmap.meta.get("precision")
    if precision is not None and precision != population.cfg.precision.name:
        raise PlanError(f"the resilience map was measured with precision {precision}; the population's chips "
                        f"compute {population.cfg.precision.name}.")
    if rmap.shape != population.cfg.shape:
        raise PlanError(f"the resilience map was measured on a {rmap.shape[0]}x{rmap.shape[1]} array; the "
                        f"population is {population.cfg.rows}x{population.cfg.cols}.")
    return float(drop)


def _fixed_amount(fixed_epochs, chip_epochs: np.ndarray) -> float:
    largest = float(np.max(chip_epochs[np.isfinite(chip_epochs)]))
    if fixed_epochs is None:
        return largest
    if isinstance(fixed_epochs, bool) or not isinstance(fixed_epochs, Real) or not math.isfinite(fixed_epochs):
        raise PlanError(f"fixed_epochs must be None or a finite number; got {fixed_epochs!r}.")
    if fixed_epochs < largest:
        raise PlanError(f"fixed_epochs must be >= {largest:g}, the largest E* among the feasible chips, so the "
                        f"fixed policy meets the constraint on every one of them; got {fixed_epochs!r}.")
    return float(fixed_epochs)


def _impossible(rmap, drop, quantile, rates) -> PlanError:
    best = rmap.max_feasible_rate(drop, quantile)
    where = ("no fault rate on the map meets it, not even the lowest" if best < 0
             else f"the largest feasible rate on the map is {best:g}")
    return PlanError(f"no chip can meet max_accuracy_drop = {drop:g}: {where}, and the chips' fault rates are "
                     f"{float(np.min(rates)):g} .. {float(np.max(rates)):g}.")


def plan(population, rmap: ResilienceMap, max_accuracy_drop: float, strategy: str = "reward",
         fixed_epochs: float | None = None, quantile: float | None = None, margin: float = 0.0) -> Plan:
    """Decide how much each chip retrains, and which chips share one retraining.

    Pure and deterministic: the same inputs give the same plan.

    Parameters
    ----------
    population : faults.Population
    rmap : ResilienceMap
        Complete (no unmeasured cells), measured on the population's array shape.
    max_accuracy_drop : float in [0, 1]
        Allowed drop below the map's baseline accuracy (0.01 = one point).
    strategy : {"reward", "none", "exact"}
        Grouping strategy (see the module docstring); ``"none"`` is the Reduce policy.
    fixed_epochs : float, optional
        Per-chip amount of the fixed-amount policy in the cost comparison; at least the
        largest finite ``E*``, which is the default.
    quantile : float in (0, 1], optional
        Meet the constraint for this quantile of the map's trials instead of every trial.
    margin : float in [0, max_accuracy_drop]
        Choose amounts that meet ``max_accuracy_drop - margin`` on the map. A map
        measures a few random chips per rate; a margin buys confidence that unseen
        chips (and fused maps) also pass verification at ``max_accuracy_drop``.

    Returns
    -------
    Plan

    Raises
    ------
    PlanError
        Empty population, array mismatch, drop or quantile out of range, unknown
        strategy, incomplete map, or no chip able to meet the constraint.
    """
    drop = _check_inputs(population, rmap, max_accuracy_drop, strategy, quantile)
    if isinstance(margin, bool) or not isinstance(margin, Real) or not 0 <= margin <= drop:
        raise PlanError(f"margin must be a number in [0, max_accuracy_drop = {drop:g}]; got {margin!r}.")
    verify_drop, drop = drop, drop - float(margin)
    grid = rmap.required_epochs_grid(drop, quantile)
    rates = np.asarray(population.rates, float)
    chip_epochs = np.atleast_1d(rmap.required_epochs(rates, drop, quantile))
    if not np.isfinite(chip_epochs).any():
        raise _impossible(rmap, drop, quantile, rates)
    fixed_amount = _fixed_amount(fixed_epochs, chip_epochs)
    n_pes = population.cfg.n_pes
    offsets, flat = faulty_pe_lists(population)
    todo = np.flatnonzero(np.isfinite(chip_epochs) & (chip_epochs > 0))
    bits = pack(offsets, flat, todo, n_pes)
    cost_of = Cost(rmap.fault_rates, grid, n_pes)
    local_groups = sorted(GROUPERS[strategy](bits, chip_epochs[todo], cost_of), key=min)
    groups = tuple(_group_plan(k, todo[g], bits[g], population, cost_of) for k, g in enumerate(local_groups))
    chips = _chip_plans(population, rates, chip_epochs, todo, local_groups)
    feasible = int(np.isfinite(chip_epochs).sum())
    costs = Costs(
        fixed=PolicyCost(fixed_amount * feasible, feasible),
        reduce=PolicyCost(math.fsum(chip_epochs[todo].tolist()), len(todo)),  # fsum: order-free
        efat=PolicyCost(math.fsum(g.epochs for g in groups), len(groups)),
        fixed_amount=fixed_amount,
    )
    return Plan(verify_drop, None if quantile is None else float(quantile), strategy, tuple(population.cfg.shape),
                chips, groups, costs, tuple(rmap.fault_rates.tolist()), tuple(grid.tolist()), rmap.baseline,
                population_fingerprint(population), float(margin), tuple(rmap.epochs.tolist()))


def _group_plan(index: int, positions: np.ndarray, bits: np.ndarray, population, cost_of) -> GroupPlan:
    fused_bits = np.bitwise_or.reduce(bits, axis=0)
    flat = unpack(fused_bits, population.cfg.n_pes)
    epochs = float(cost_of(len(flat)))
    assert math.isfinite(epochs), "a group's fused map must stay feasible"
    rows, cols = np.divmod(flat, population.cfg.cols)
    return GroupPlan(index, tuple(population.ids[p] for p in sorted(positions.tolist())),
                     len(flat) / population.cfg.n_pes,
                     tuple(zip(rows.tolist(), cols.tolist())), epochs)


def _chip_plans(population, rates, chip_epochs, todo, local_groups) -> tuple[ChipPlan, ...]:
    group_of = {int(todo[i]): k for k, g in enumerate(local_groups) for i in g}
    out = []
    for p, (chip_id, rate, epochs) in enumerate(zip(population.ids, rates.tolist(), chip_epochs.tolist())):
        status = "infeasible" if math.isinf(epochs) else "no_retraining" if epochs == 0 else "retrain"
        out.append(ChipPlan(chip_id, rate, epochs, status, group_of.get(p)))
    return tuple(out)
