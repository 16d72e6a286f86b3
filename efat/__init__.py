"""eFAT: fault-aware retraining for a whole population of faulty chips, cheaply.

>>> import efat                                                        # doctest: +SKIP
>>> rmap = efat.resilience_map(model, data, cfg, fault_rates=[...], epochs=[...], trials=3)
>>> plan = efat.plan(population, rmap, max_accuracy_drop=0.01)
>>> report = efat.execute(plan, model, data, population, "out/")

The method as this project implements it is in ``docs/semantics.md`` ("eFAT").

Planning, plans, resilience maps and reports are pure NumPy: ``import efat`` and
``import efat.planner`` work without torch. Measuring a map (:func:`resilience_map`,
:func:`map_chip`) and executing a plan (:func:`execute`) retrain models; they live in
:mod:`efat.measure` and :mod:`efat.execution` and are loaded (with torch) on first use.
"""

from importlib import import_module

from .assign import Assignment, assign
from .bitsets import population_fingerprint
from .constraint import Constraint
from .errors import PlanError, PlanFileError, ResilienceError, ResilienceFileError
from .grouping import EXACT_MAX_CHIPS, STRATEGIES
from .planner import plan
from .plans import STATUSES, ChipPlan, Costs, GroupPlan, Plan, PolicyCost
from .report import ChipResult, Report
from .resilience import ResilienceMap

# the names that need torch, and the module each comes from
_WITH_TORCH = {"resilience_map": "measure", "map_chip": "measure", "execute": "execution",
               "verify_assignment": "assign"}

__all__ = [
    "resilience_map", "map_chip", "ResilienceMap", "Constraint",
    "plan", "Plan", "ChipPlan", "GroupPlan", "Costs", "PolicyCost", "STRATEGIES", "STATUSES", "EXACT_MAX_CHIPS",
    "population_fingerprint",
    "execute", "Report", "ChipResult", "assign", "verify_assignment", "Assignment",
    "PlanError", "PlanFileError", "ResilienceError", "ResilienceFileError",
]


def __getattr__(name):
    if name in _WITH_TORCH:
        return getattr(import_module(f".{_WITH_TORCH[name]}", __name__), name)
    raise AttributeError(f"module 'efat' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
