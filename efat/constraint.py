"""The user's accuracy constraint, as the statistics read it.

A chip **meets** the constraint when its accuracy on the simulator is at least
``baseline - max_accuracy_drop`` (the baseline is the fault-free int8 accuracy). A
retraining amount **suffices** at a fault rate when at least ``pass_target`` of all
chips at that rate meet the constraint after it, with ``confidence``: the one-sided
Clopper-Pearson lower bound of the pass probability, from the chips a resilience map
measured, reaches ``pass_target`` (:mod:`efat.stats`). The defaults, 90% of chips at
90% confidence, need at least 22 chips per rate to certify anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

from .errors import ResilienceError
from .stats import check_level, trials_to_certify

__all__ = ["Constraint", "DEFAULT_PASS_TARGET", "DEFAULT_CONFIDENCE", "TOLERANCE"]

DEFAULT_PASS_TARGET = 0.9
DEFAULT_CONFIDENCE = 0.9
#: Accuracies within this of the threshold count as meeting it (float noise of k / n).
TOLERANCE = 1e-12


@dataclass(frozen=True)
class Constraint:
    """``max_accuracy_drop`` (0.02 = 2 points), met by at least ``pass_target`` of chips
    with ``confidence``."""

    max_accuracy_drop: float
    pass_target: float = DEFAULT_PASS_TARGET
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self):
        drop = self.max_accuracy_drop
        if isinstance(drop, bool) or not isinstance(drop, Real) or not 0 <= float(drop) <= 1:
            raise ResilienceError(f"max_accuracy_drop must be a number in [0, 1] (0.01 = one point); got {drop!r}.")
        object.__setattr__(self, "max_accuracy_drop", float(drop))
        object.__setattr__(self, "pass_target", check_level("pass_target", self.pass_target))
        object.__setattr__(self, "confidence", check_level("confidence", self.confidence))

    @classmethod
    def of(cls, value) -> Constraint:
        """``value`` if it is a Constraint, else ``Constraint(value)`` (a drop, default statistics)."""
        return value if isinstance(value, Constraint) else cls(value)

    def threshold(self, baseline: float) -> float:
        """The least accuracy that meets the constraint."""
        return baseline - self.max_accuracy_drop - TOLERANCE

    @property
    def min_trials(self) -> int:
        """The fewest chips per rate with which an amount can be certified (all passing)."""
        return trials_to_certify(self.pass_target, self.confidence)

    def text(self) -> str:
        """E.g. ``"drop <= 2 points for >= 90% of chips (90% confidence)"``."""
        points = 100 * self.max_accuracy_drop
        return (f"drop <= {points:g} point{'' if points == 1 else 's'} for >= {100 * self.pass_target:g}% of chips "
                f"({100 * self.confidence:g}% confidence)")

    def to_json(self) -> dict:
        return {"max_accuracy_drop": self.max_accuracy_drop, "pass_target": self.pass_target,
                "confidence": self.confidence}

    @classmethod
    def from_json(cls, obj) -> Constraint:
        return cls(float(obj["max_accuracy_drop"]), float(obj["pass_target"]), float(obj["confidence"]))
