"""The outcome of executing a plan: per-chip verification and the three policies' costs.

``report.json`` (format ``"efat.Report"``, version 1) holds ``baseline``,
``max_accuracy_drop``, ``totals`` and ``chips``; ``report.csv`` one row per chip. JSON
has no infinity: ``planned_epochs`` of a chip the map calls infeasible is written as
``null``, and so is ``seconds_per_epoch`` when nothing was retrained.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass

from fileio import atomic_write, json_clean, write_json

__all__ = ["ChipResult", "Report", "FORMAT"]

FORMAT = "efat.Report"
VERSION = 1
_POLICIES = (("fixed", "fixed-amount per-chip FAT"), ("reduce", "per-chip resilience-driven (Reduce)"),
             ("efat", "eFAT (grouped, as executed)"))


@dataclass(frozen=True)
class ChipResult:
    """One chip verified on the simulator with its own fault map."""

    id: str
    rate: float
    status: str  # retrain / no_retraining / infeasible (from the plan)
    group: int | None
    planned_epochs: float
    accuracy: float
    passed: bool
    own_epochs: float  # epochs of individual retraining after a failed check (0 if none)


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
        n = len(self.chips)
        passed = sum(c.passed for c in self.chips)
        lines = [f"{passed}/{n} chips meet the constraint (accuracy >= {100 * (self.baseline - self.max_accuracy_drop):.2f}%,"
                 f" baseline {100 * self.baseline:.2f}%) on the simulator",
                 f"{'policy':<34}{'retraining runs':>16}{'epochs':>10}{'seconds':>10}"]
        for key, label in _POLICIES:
            p = t[key]
            lines.append(f"{label:<34}{p['runs']:>16}{p['epochs']:>10.2f}{p['seconds']:>10.1f}"
                         + ("  (estimated)" if p.get("estimated") else ""))
        if t["fixed"]["epochs"] > 0:
            lines.append(f"eFAT = {t['efat']['epochs'] / t['fixed']['epochs']:.1%} of fixed FAT"
                         + (f", {t['efat']['epochs'] / t['reduce']['epochs']:.1%} of Reduce" if t["reduce"]["epochs"] else ""))
        return "\n".join(lines)
