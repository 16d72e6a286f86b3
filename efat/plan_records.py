"""The records a plan is made of: chips, groups and the costs of the three policies.

Plain frozen dataclasses, apart from :class:`efat.plans.Plan` so that the plan file format
(:mod:`efat.plan_files`) can build them without importing the plan itself.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChipPlan", "GroupPlan", "PolicyCost", "Costs", "STATUSES"]

STATUSES = ("retrain", "no_retraining", "infeasible")


@dataclass(frozen=True)
class ChipPlan:
    """One chip in a plan: ``epochs`` is its ``E*`` (``inf`` if infeasible)."""

    id: str
    rate: float
    epochs: float
    status: str
    group: int | None


@dataclass(frozen=True)
class GroupPlan:
    """One retraining run: its members, fused map (as faulty PEs ``(r, c)``) and amount.

    ``pass_probability`` is ``(estimate, lower, upper)``: the chance that the group's
    model meets the constraint at its amount (the map's chips at the fused rate, with the
    two-sided Clopper-Pearson interval at the plan's confidence); ``expected_epochs`` its
    expected cost, escalations included (:mod:`efat.costs`).
    """

    index: int
    members: tuple[str, ...]
    fused_rate: float
    fused_pes: tuple[tuple[int, int], ...]
    epochs: float
    pass_probability: tuple[float, float, float]
    expected_epochs: float


@dataclass(frozen=True)
class PolicyCost:
    """Total retraining of one policy: ``epochs`` on paper (every unit passing at its planned
    amount) over ``runs`` retraining runs, and the ``expected`` epochs with escalations,
    with its interval ``(lower, upper)`` at the plan's confidence (:mod:`efat.costs`)."""

    epochs: float
    runs: int
    expected: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Costs:
    """The three policies side by side; ``fixed_amount`` = epochs per chip under ``fixed``."""

    fixed: PolicyCost
    reduce: PolicyCost
    efat: PolicyCost
    fixed_amount: float
