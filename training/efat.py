"""The eFAT API in one namespace: ``from training import efat``.

>>> from training import efat                                      # doctest: +SKIP
>>> rmap = efat.resilience_map(model, data, cfg, fault_rates=[...], epochs=[...], trials=3)
>>> plan = efat.plan(population, rmap, max_accuracy_drop=0.01)
>>> report = efat.execute(plan, model, data, population, "out/")

See README ("eFAT, as this project implements it") for the algorithm.
"""

from .execute import ChipResult, Report, execute
from .fat import chip_accuracy, fat_retrain, resilience_map
from .planner import Plan, PlanError, plan
from .resilience import ResilienceError, ResilienceMap

__all__ = [
    "resilience_map",
    "ResilienceMap",
    "fat_retrain",
    "chip_accuracy",
    "plan",
    "Plan",
    "execute",
    "Report",
    "ChipResult",
    "PlanError",
    "ResilienceError",
]
