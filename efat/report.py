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
    """Outcome of :func:`efat.execute` for one policy (also written as JSON and CSV by
    :meth:`save`)."""

    baseline: float
    max_accuracy_drop: float
    chips: list
    totals: dict
    policy: str = "efat"

    @property
    def all_passed(self) -> bool:
        return all(c.passed for c in self.chips)

    def to_json(self) -> dict:
        """A JSON-clean dict (infinite or undefined numbers as ``null``)."""
        return json_clean({"format": FORMAT, "version": VERSION, "policy": self.policy, "baseline": self.baseline,
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
        e, x = t["executed"], t["expected"]
        label = {"efat": "eFAT (grouped)", "reduce": "Reduce (E* per chip)", "fixed": "fixed-amount FAT"}
        lines = [f"{passed}/{n} chips meet the constraint (accuracy >= {100 * (self.baseline - self.max_accuracy_drop):.2f}%,"
                 f" baseline {100 * self.baseline:.2f}%) on the simulator; {t['chips_failing_first_check']} chips "
                 f"failed their first check ({t['units_failing_first_check']} units, retrained on warm; "
                 f"{t['chips_retrained_on_their_own']} chips then on their own map)",
                 f"{label[self.policy] + ' as executed':<36}{e['runs']:>6} runs{e['epochs']:>9.2f} epochs"
                 f"{e['seconds']:>8.1f} s; expected {_interval(x[self.policy])}",
                 "expected by the plan: " + ", ".join(f"{k} {_interval(v)}" for k, v in x.items())]
        if t["infeasible"]["chips"]:
            lines.append(f"infeasible chips (apart): {t['infeasible']['chips']}, {t['infeasible']['epochs']:g} epochs")
        return "\n".join(lines)


def _interval(p: dict) -> str:
    return f"{p['expected']:.4g} [{p['lower']:.4g}, {p['upper']:.4g}]"


def totals(plan, policy: str, units, outcome, own, failed_first) -> dict:
    """The report's totals: the policy as executed (epochs: the amount every unit reached,
    warm, plus every chip's own extra retraining; infeasible chips counted apart), and the
    plan's expected costs of all three policies."""
    def cost(selected):
        reached = [outcome[u["name"]] for u in selected]
        extra = [own[cid] for u in selected for cid, _ in u["members"] if cid in own]
        return {"runs": sum(r["amount"] > 0 for r in reached) + len(extra),
                "epochs": sum(r["amount"] for r in reached) + sum(r["extra"] for r in extra),
                "seconds": sum(r["seconds"] for r in reached) + sum(r["extra_seconds"] for r in extra)}

    executed = cost([u for u in units if not u.get("infeasible")])
    apart = [u for u in units if u.get("infeasible")]
    per_epoch = executed["seconds"] / executed["epochs"] if executed["epochs"] else float("nan")
    on_paper = getattr(plan.costs, policy)
    return {
        "executed": {**executed, "planned_epochs": on_paper.epochs, **_expected(on_paper)},
        "infeasible": {"chips": len(apart), **cost(apart)},
        "expected": {k: {"runs": getattr(plan.costs, k).runs, "epochs": getattr(plan.costs, k).epochs,
                         **_expected(getattr(plan.costs, k))} for k in ("efat", "reduce", "fixed")},
        "seconds_per_epoch": per_epoch,
        "units_failing_first_check": len(failed_first),
        "chips_failing_first_check": sum(len(u["members"]) for u in units if u["name"] in failed_first),
        "chips_retrained_on_their_own": len(own),
    }


def _expected(policy) -> dict:
    return {"expected": policy.expected, "lower": policy.lower, "upper": policy.upper}
