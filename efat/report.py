"""The outcome of executing a plan: per-chip verification, and the real cost beside the
expected one.

``report.json`` (format ``"efat.Report"``, version 2) holds ``baseline``,
``max_accuracy_drop``, ``totals`` and ``chips``; ``report.csv`` one row per chip. JSON
has no infinity: ``planned_epochs`` of a chip the map calls infeasible is written as
``null``, and so is ``seconds_per_epoch`` when nothing was retrained.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass

from fileio import atomic_write, json_clean, write_json

__all__ = ["ChipResult", "Report", "FORMAT", "totals"]

FORMAT = "efat.Report"
VERSION = 2


@dataclass(frozen=True)
class ChipResult:
    """One chip verified on the simulator with its own fault map.

    ``planned_epochs`` is its ``E*`` from the plan; ``unit_epochs`` the amount its unit
    (its group, or itself) reached, escalations included; ``own_epochs`` the epochs it
    was then retrained on its own map, warm from the unit's model (0 if none).
    """

    id: str
    rate: float
    status: str  # retrain / no_retraining / infeasible (from the plan)
    group: int | None
    planned_epochs: float
    unit_epochs: float
    accuracy: float
    passed: bool
    own_epochs: float


@dataclass(frozen=True)
class Report:
    """Outcome of :func:`efat.execute` (also written as JSON and CSV by :meth:`save`)."""

    baseline: float
    max_accuracy_drop: float
    chips: list
    totals: dict

    @property
    def all_passed(self) -> bool:
        return all(c.passed for c in self.chips)

    def to_json(self) -> dict:
        """A JSON-clean dict (infinite or undefined numbers as ``null``)."""
        return json_clean({"format": FORMAT, "version": VERSION, "baseline": self.baseline,
                           "max_accuracy_drop": self.max_accuracy_drop, "totals": self.totals,
                           "chips": [asdict(c) for c in self.chips]})

    def save(self, out_dir) -> None:
        """Write ``report.json`` and ``report.csv`` into ``out_dir``, atomically."""
        write_json(os.path.join(out_dir, "report.json"), self.to_json())
        with atomic_write(os.path.join(out_dir, "report.csv"), newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(ChipResult.__dataclass_fields__))
            w.writeheader()
            w.writerows(asdict(r) for r in self.chips)

    def summary_text(self) -> str:
        t = self.totals
        n, passed = len(self.chips), sum(c.passed for c in self.chips)
        e = t["efat"]
        lines = [f"{passed}/{n} chips meet the constraint (accuracy >= {100 * (self.baseline - self.max_accuracy_drop):.2f}%,"
                 f" baseline {100 * self.baseline:.2f}%) on the simulator; {t['chips_failing_first_check']} chips "
                 f"failed their first check ({t['units_failing_first_check']} units, retrained on warm; "
                 f"{t['chips_retrained_on_their_own']} chips then on their own map)",
                 f"{'policy':<36}{'runs':>6}{'epochs':>9}   {'expected [interval]':<24}{'seconds':>8}",
                 f"{'eFAT as executed':<36}{e['runs']:>6}{e['epochs']:>9.2f}   "
                 f"{_interval(e):<24}{e['seconds']:>8.1f}"]
        for key, label in (("reduce", "Reduce (E* per chip), expected"), ("fixed", "fixed-amount FAT, expected")):
            p = t[key]
            lines.append(f"{label:<36}{p['runs']:>6}{p['epochs']:>9.2f}   {_interval(p):<24}{p['seconds']:>8.1f}"
                         "  (seconds estimated)")
        if t["fixed"]["expected"] > 0:
            lines.append(f"eFAT as executed = {e['epochs'] / t['fixed']['expected']:.1%} of fixed FAT"
                         + (f", {e['epochs'] / t['reduce']['expected']:.1%} of Reduce" if t["reduce"]["expected"] else "")
                         + " (their expected epochs)")
        return "\n".join(lines)


def _interval(p: dict) -> str:
    return f"{p['expected']:.4g} [{p['lower']:.4g}, {p['upper']:.4g}]"


def totals(plan, units, outcome, own, failed_first) -> dict:
    """The report's totals: eFAT as executed (epochs: the amount every unit reached, warm,
    plus every chip's own extra retraining), and the plan's expected costs of all three
    policies (seconds of those two estimated from the seconds per epoch measured here)."""
    reached = [outcome[u["name"]] for u in units]
    epochs = sum(r["amount"] for r in reached) + sum(r["extra"] for r in own.values())
    seconds = sum(r["seconds"] for r in reached) + sum(r["extra_seconds"] for r in own.values())
    runs = sum(r["amount"] > 0 for r in reached) + len(own)
    per_epoch = seconds / epochs if epochs else float("nan")
    out = {
        "efat": {"runs": runs, "epochs": epochs, "seconds": seconds, "planned_epochs": plan.costs.efat.epochs,
                 **_expected(plan.costs.efat)},
        "seconds_per_epoch": per_epoch,
        "units_failing_first_check": len(failed_first),
        "chips_failing_first_check": sum(len(u["members"]) for u in units if u["name"] in failed_first),
        "chips_retrained_on_their_own": len(own),
    }
    for key in ("fixed", "reduce"):
        policy = getattr(plan.costs, key)
        out[key] = {"runs": policy.runs, "epochs": policy.epochs, **_expected(policy),
                    "seconds": policy.expected * per_epoch if per_epoch == per_epoch else 0.0, "estimated": True}
    return out


def _expected(policy) -> dict:
    return {"expected": policy.expected, "lower": policy.lower, "upper": policy.upper}
