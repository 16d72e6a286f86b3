"""``efat plan``, ``efat retrain`` and the demo pipeline, end to end on a small case."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from cli.pipeline import DemoConfig, run_demo


@pytest.fixture(scope="module")
def setup(efat_case):
    return efat_case


def test_cli_plan_and_retrain(setup, tmp_path, capsys):
    model, data, rmap, pop = setup
    rmap.save(tmp_path / "rmap.json")
    pop.save(tmp_path / "pop.npz")
    assert main(["plan", "--population", str(tmp_path / "pop.npz"), "--rmap", str(tmp_path / "rmap.json"),
                 "--max-drop", "0.03", "--out", str(tmp_path / "plan.json"), "--plot", str(tmp_path / "e.png")]) == 0
    assert "eFAT" in capsys.readouterr().out
    code = main(["retrain", "--model", "mlp", "--plan", str(tmp_path / "plan.json"), "--population",
                 str(tmp_path / "pop.npz"), "--out-dir", str(tmp_path / "run")])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert code == (0 if all(c["passed"] for c in report["chips"]) else 1)  # exit 1 exactly when a chip fails
    capsys.readouterr()
    (tmp_path / "broken.json").write_text('{"format": "efat.Plan", "version": 1')
    assert main(["retrain", "--model", "mlp", "--plan", str(tmp_path / "broken.json"), "--population",
                 str(tmp_path / "pop.npz"), "--out-dir", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "broken.json" in err and len(err.splitlines()) == 1
    assert main(["plan", "--population", str(tmp_path / "pop.npz"), "--rmap", str(tmp_path / "rmap.json"),
                 "--max-drop", "-1", "--out", str(tmp_path / "p2.json")]) == 2
    assert main(["plan", "--population", str(tmp_path / "missing.npz"), "--rmap", str(tmp_path / "rmap.json"),
                 "--out", str(tmp_path / "p3.json")]) == 2


def test_demo_pipeline_small(setup, tmp_path):
    cfg = DemoConfig(model="mlp", rows=16, cols=16, chips=6, chip_rates="uniform:0.01,0.06",
                     fault_rates=(0.02, 0.06, 0.1), epochs=(0.5,), trials=1, max_accuracy_drop=0.03)
    p, rep = run_demo(tmp_path, cfg, log=lambda *a: None)
    for name in ("resilience_map.json", "resilience_map.png", "population.npz", "plan.json", "required_epochs.png",
                 "costs.png", "retrain/report.json"):
        assert (tmp_path / name).exists(), name
    assert len(rep.chips) == 6
