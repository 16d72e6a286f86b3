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
    policy = {"runs": 0, "epochs": 0.0, "seconds": 0.0, "expected": 0.0, "lower": 0.0, "upper": 0.0}
    totals = {"efat": {**policy, "planned_epochs": 0.0}, "seconds_per_epoch": math.nan,
              "units_failing_first_check": 1, "chips_failing_first_check": 1, "chips_retrained_on_their_own": 1,
              "fixed": {**policy, "estimated": True}, "reduce": {**policy, "estimated": True}}
    Report(0.98, 0.02, chips, totals).save(tmp_path)
    saved = _strict((tmp_path / "report.json").read_text())
    assert saved["format"] == "efat.Report"
    assert saved["chips"][0]["planned_epochs"] is None and saved["chips"][1]["planned_epochs"] == 0.0
    assert saved["totals"]["seconds_per_epoch"] is None
    with open(tmp_path / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["chip-00000", "chip-00001"] and rows[0]["planned_epochs"] == "inf"
