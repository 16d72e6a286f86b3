"""eFAT planning: which chips of a population retrain, in which groups, for how long.

This is our precise version of eFAT's planning (``docs/semantics.md``, "eFAT",
steps 2-4 and 6). Given a population, a :class:`ResilienceMap` and a
:class:`efat.Constraint` (a drop, met by at least ``pass_target`` of chips with
``confidence``):

1. **Per chip.** ``E* = rmap.required_epochs(rate, constraint)``: the least amount
   certified to suffice at the chip's rate (rounded up to the map's grid). ``E* == 0``:
   bypass alone suffices, status ``"no_retraining"``. ``E* == inf``: no amount is
   certified, status ``"infeasible"`` (reported, never grouped). Otherwise ``"retrain"``.
2. **Fusion.** A group's fused map is the OR of its members' faulty PEs; its fused rate
   is (faulty PEs of the OR) / (R*C) and its amount ``E*(fused rate)``, so a group is
   only ever planned at an amount certified to suffice at its fused rate. A fusion is
   allowed only while that amount is finite.
3. **Grouping**: a strategy of :mod:`efat.grouping` (``"reward"``, ``"none"``,
   ``"exact"``) that minimises the *expected* cost: a group's cost is its amount plus
   what escalating it costs when it fails its check (:mod:`efat.costs`).
4. **Costs** of three policies, each on paper (every unit passing at its planned
   amount), and expected with its interval:

   * ``fixed``: every feasible chip (``"retrain"`` and ``"no_retraining"`` alike)
     retrained once with one amount: ``fixed_epochs`` if given (on the map's grid, at
     least the largest finite ``E*``), else the largest finite ``E*`` among the chips;
   * ``reduce``: every chip to retrain with its own ``E*``, one run each;
   * ``efat``: every group with its ``E*``, one run per group.

   Chips that need no retraining count in the expected cost of ``reduce`` and ``efat``
   (they are verified, and retrained if they fail). Expected, ``efat <= reduce <= fixed``;
   on paper ``reduce <= fixed``, and eFAT may plan more epochs than Reduce where a group at a
   higher amount avoids its members' likely failures at their own (lower) amounts.

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
from .constraint import Constraint
from .costs import CostModel, Unit
from .errors import PlanError, ResilienceError
from .grouping import GROUPERS, STRATEGIES, Cost
from .plans import ChipPlan, Costs, GroupPlan, Plan, PolicyCost
from .resilience import ResilienceMap

__all__ = ["plan"]


def _check_inputs(population, rmap, constraint, strategy) -> Constraint:
    if not isinstance(rmap, ResilienceMap):
        raise PlanError(f"rmap must be a ResilienceMap; got {type(rmap).__name__}.")
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy must be one of {list(STRATEGIES)}; got {strategy!r}.")
    try:
        c = Constraint.of(constraint)
    except ResilienceError as e:
        raise PlanError(str(e)) from None
    if len(population) == 0:
        raise PlanError("the population is empty; there is nothing to plan.")
    if not isinstance(population, Population):
        raise PlanError(f"population must be a faults.Population; got {type(population).__name__}.")
    if not rmap.complete:
        missing = int(np.isnan(rmap.accuracy).sum())
        raise PlanError(f"the resilience map is incomplete ({missing} of {rmap.accuracy.size} cells not "
                        "measured, or a rate without any chip); finish it before planning.")
    precision = rmap.meta.get("precision")
    if precision is not None and precision != population.cfg.precision.name:
        raise PlanError(f"the resilience map was measured with precision {precision}; the population's chips "
                        f"compute {population.cfg.precision.name}.")
    if rmap.shape != population.cfg.shape:
        raise PlanError(f"the resilience map was measured on a {rmap.shape[0]}x{rmap.shape[1]} array; the "
                        f"population is {population.cfg.rows}x{population.cfg.cols}.")
    return c


def _fixed_amount(fixed_epochs, chip_epochs: np.ndarray, grid: np.ndarray) -> float:
    largest = float(np.max(chip_epochs[np.isfinite(chip_epochs)]))
    if fixed_epochs is None:
        return largest
    if isinstance(fixed_epochs, bool) or not isinstance(fixed_epochs, Real) or float(fixed_epochs) not in grid:
        raise PlanError(f"fixed_epochs must be None or an amount of the map's grid {grid.tolist()}; "
                        f"got {fixed_epochs!r}.")
    if fixed_epochs < largest:
        raise PlanError(f"fixed_epochs must be >= {largest:g}, the largest E* among the feasible chips, so the "
                        f"fixed policy meets the constraint on every one of them; got {fixed_epochs!r}.")
    return float(fixed_epochs)


def _impossible(rmap, c: Constraint, rates) -> PlanError:
    best = rmap.max_feasible_rate(c)
    where = ("no fault rate on the map meets it, not even the lowest" if best < 0
             else f"the largest feasible rate on the map is {best:g}")
    few = rmap.n_trials.min() < c.min_trials
    hint = (f" (the map has {int(rmap.n_trials.min())} chips at some rate; certifying {100 * c.pass_target:g}% "
            f"at {100 * c.confidence:g}% confidence takes at least {c.min_trials})" if few else "")
    return PlanError(f"no chip can meet the constraint ({c.text()}): {where}{hint}, and the chips' fault rates "
                     f"are {float(np.min(rates)):g} .. {float(np.max(rates)):g}.")


def plan(population, rmap: ResilienceMap, max_accuracy_drop, strategy: str = "reward",
         fixed_epochs: float | None = None, pass_target: float | None = None, confidence: float | None = None,
         seed: int = 0) -> Plan:
    """Decide how much each chip retrains, and which chips share one retraining.

    Pure and deterministic: the same inputs give the same plan.

    Parameters
    ----------
    population : faults.Population
    rmap : ResilienceMap
        Complete, measured on the population's array shape and precision.
    max_accuracy_drop : float in [0, 1], or Constraint
        Allowed drop below the map's baseline accuracy (0.01 = one point), verified on
        every chip; or a whole :class:`efat.Constraint`.
    strategy : {"reward", "none", "exact"}
        Grouping strategy (see the module docstring); ``"none"`` is the Reduce policy.
    fixed_epochs : float, optional
        Per-chip amount of the fixed-amount policy in the cost comparison; an amount of
        the map's grid, at least the largest finite ``E*``, which is the default.
    pass_target, confidence : float in (0, 1), optional
        At least ``pass_target`` of chips must meet the drop, with ``confidence``
        (defaults 0.9 and 0.9; with a Constraint, leave them out).
    seed : int
        Seed of the bootstrap of the expected costs' intervals.

    Returns
    -------
    Plan

    Raises
    ------
    PlanError
        Empty population, array or precision mismatch, a bad constraint, unknown
        strategy, incomplete map, or no chip able to meet the constraint.
    """
    c = _constraint(max_accuracy_drop, pass_target, confidence)
    c = _check_inputs(population, rmap, c, strategy)
    grid = rmap.required_epochs_grid(c)
    rates = np.asarray(population.rates, float)
    chip_epochs = np.atleast_1d(rmap.required_epochs(rates, c))
    if not np.isfinite(chip_epochs).any():
        raise _impossible(rmap, c, rates)
    fixed_amount = _fixed_amount(fixed_epochs, chip_epochs, rmap.epochs)
    n_pes = population.cfg.n_pes
    offsets, flat = faulty_pe_lists(population)
    todo = np.flatnonzero(np.isfinite(chip_epochs) & (chip_epochs > 0))
    bits = pack(offsets, flat, todo, n_pes)
    model = CostModel(rmap, c)
    cost_of = Cost(rmap.fault_rates, grid, rmap.epochs, n_pes, model)
    own = cost_of(np.round(rates[todo] * n_pes).astype(np.int64), 1)
    local_groups = sorted(GROUPERS[strategy](bits, own, cost_of), key=min)
    estimate, lower, upper = rmap.pass_probability(c)
    groups = tuple(_group_plan(k, todo[g], bits[g], population, cost_of, (estimate, lower, upper))
                   for k, g in enumerate(local_groups))
    chips = _chip_plans(population, rates, chip_epochs, todo, local_groups)
    costs = _costs(chips, groups, fixed_amount, rmap, c, model, population, cost_of, seed)
    provenance = {k: rmap.meta[k] for k in ("model_digest", "data_fingerprint") if isinstance(rmap.meta.get(k), str)}
    provenance["map_digest"] = _map_digest(rmap)
    return Plan(c, strategy, tuple(population.cfg.shape), chips, groups, costs, tuple(rmap.fault_rates.tolist()),
                tuple(grid.tolist()), rmap.baseline, population_fingerprint(population), tuple(rmap.epochs.tolist()),
                provenance)


def _constraint(drop, pass_target, confidence) -> Constraint:
    if isinstance(drop, Constraint):
        if pass_target is not None or confidence is not None:
            raise PlanError("give pass_target and confidence in the Constraint, not beside it.")
        return drop
    extra = {k: v for k, v in (("pass_target", pass_target), ("confidence", confidence)) if v is not None}
    if isinstance(drop, bool) or not isinstance(drop, Real) or not 0 <= float(drop) <= 1:
        raise PlanError(f"max_accuracy_drop must be a number in [0, 1] (0.01 = one point); got {drop!r}.")
    try:
        return Constraint(float(drop), **extra)
    except ResilienceError as e:
        raise PlanError(str(e)) from None


def _map_digest(rmap) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(rmap.to_json(), sort_keys=True).encode()).hexdigest()


def _costs(chips, groups, fixed_amount, rmap, c, model, population, cost_of, seed) -> Costs:
    """The three policies on paper and expected (:mod:`efat.costs`)."""
    n_pes = population.cfg.n_pes
    counts = {ch.id: int(round(ch.rate * n_pes)) for ch in chips}
    rows = {k: cost_of.amount_index(v) for k, v in counts.items()}
    fixed_index = int(np.searchsorted(rmap.epochs, fixed_amount))
    feasible = [ch for ch in chips if ch.status != "infeasible"]
    retrain = [ch for ch in chips if ch.status == "retrain"]
    none = [ch for ch in chips if ch.status == "no_retraining"]

    def own(ch):
        row, amount = rows[ch.id]
        return Unit(int(row), int(amount), 1)

    def group_unit(g):
        row, amount = cost_of.amount_index(len(g.fused_pes))
        return Unit(int(row), int(amount), len(g.members))

    policies = {
        "fixed": ([Unit(int(rows[ch.id][0]), fixed_index, 1) for ch in feasible], fixed_amount * len(feasible),
                  len(feasible)),
        "reduce": ([own(ch) for ch in retrain + none], math.fsum(ch.epochs for ch in retrain), len(retrain)),
        "efat": ([group_unit(g) for g in groups] + [own(ch) for ch in none], math.fsum(g.epochs for g in groups),
                 len(groups)),
    }
    out = {}
    for name, (units, on_paper, runs) in policies.items():
        expected, lo, hi = model.total(units, c.confidence, seed=seed)
        out[name] = PolicyCost(on_paper, runs, expected, lo, hi)
    return Costs(out["fixed"], out["reduce"], out["efat"], fixed_amount)


def _group_plan(index: int, positions: np.ndarray, bits: np.ndarray, population, cost_of, probability) -> GroupPlan:
    fused_bits = np.bitwise_or.reduce(bits, axis=0)
    flat = unpack(fused_bits, population.cfg.n_pes)
    row, amount = (int(v) for v in cost_of.amount_index(len(flat)))
    assert amount >= 0, "a group's fused map must stay feasible"
    epochs = float(cost_of.epochs[amount])
    expected = float(cost_of(len(flat), len(positions)))
    rows, cols = np.divmod(flat, population.cfg.cols)
    chance = tuple(float(a[row, amount]) for a in probability)
    members = tuple(population.ids[i] for i in sorted(positions.tolist()))
    return GroupPlan(index, members, len(flat) / population.cfg.n_pes, tuple(zip(rows.tolist(), cols.tolist())),
                     epochs, chance, expected)


def _chip_plans(population, rates, chip_epochs, todo, local_groups) -> tuple[ChipPlan, ...]:
    group_of = {int(todo[i]): k for k, g in enumerate(local_groups) for i in g}
    out = []
    for p, (chip_id, rate, epochs) in enumerate(zip(population.ids, rates.tolist(), chip_epochs.tolist())):
        status = "infeasible" if math.isinf(epochs) else "no_retraining" if epochs == 0 else "retrain"
        out.append(ChipPlan(chip_id, rate, epochs, status, group_of.get(p)))
    return tuple(out)
