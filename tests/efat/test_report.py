"""report.json is strict JSON: an infinite amount or an undefined rate is written as null."""

from __future__ import annotations

import csv
import json
import math

from efat import ChipResult, Report


def _strict(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_infinite_and_undefined_numbers_are_null(tmp_path):
    chips = [ChipResult("chip-00000", 0.5, "infeasible", None, math.inf, 3.0, 0.4, False, 3.0),
             ChipResult("chip-00001", 0.01, "no_retraining", None, 0.0, 0.0, 0.97, True, 0.0)]
    policy = {"runs": 0, "epochs": 0.0, "expected": 0.0, "lower": 0.0, "upper": 0.0}
    totals = {"executed": {**policy, "seconds": 0.0, "planned_epochs": 0.0}, "seconds_per_epoch": math.nan,
              "infeasible": {"chips": 1, "runs": 1, "epochs": 3.0, "seconds": 1.0},
              "units_failing_first_check": 1, "chips_failing_first_check": 1, "chips_retrained_on_their_own": 1,
              "expected": {"efat": policy, "reduce": policy, "fixed": policy}}
    report = Report(0.98, 0.02, chips, totals)
    report.save(tmp_path)
    assert "infeasible chips (apart): 1, 3 epochs" in report.summary_text()
    saved = _strict((tmp_path / "report.json").read_text())
    assert saved["format"] == "efat.Report"
    assert saved["chips"][0]["planned_epochs"] is None and saved["chips"][1]["planned_epochs"] == 0.0
    assert saved["totals"]["seconds_per_epoch"] is None
    with open(tmp_path / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["chip-00000", "chip-00001"] and rows[0]["planned_epochs"] == "inf"
