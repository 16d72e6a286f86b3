"""The demo's summary text when only one population retrained anything (found by bench_efat on
MNIST: its ratio has no interval, stored as null, and the text raised a TypeError)."""

from __future__ import annotations

import json
import pathlib

from cli.pipeline import summary_text


def test_a_ratio_from_one_population_prints_without_an_interval():
    s = json.loads((pathlib.Path(__file__).parent / "data" / "summary_one_population_retrains.json").read_text())
    assert s["efat_of_reduce"]["n"] == 1 and s["efat_of_reduce"]["lower"] is None
    text = summary_text(s)
    assert "eFAT = 100.0% (one population, over the 1 populations with any retraining) of Reduce" in text
