"""``efat plan``, ``efat retrain`` and the demo pipeline, end to end on a small case."""

from __future__ import annotations

import json
import re

import pytest

from cli.main import main
from cli.pipeline import DemoConfig, demo_succeeded, run_demo, summary_text
from efat import Constraint, Plan

from ..conftest import CASE_CONSTRAINT

CONSTRAINT_ARGS = ["--max-drop", str(CASE_CONSTRAINT["max_accuracy_drop"]), "--pass-target",
                   str(CASE_CONSTRAINT["pass_target"]), "--confidence", str(CASE_CONSTRAINT["confidence"])]


@pytest.fixture(scope="module")
def setup(efat_case):
    return efat_case


def test_cli_plan_and_retrain(setup, tmp_path, capsys):
    model, data, rmap, pop = setup
    rmap.save(tmp_path / "rmap.json")
    pop.save(tmp_path / "pop.npz")
    assert main(["plan", "--population", str(tmp_path / "pop.npz"), "--rmap", str(tmp_path / "rmap.json"),
                 *CONSTRAINT_ARGS, "--out", str(tmp_path / "plan.json"), "--plot", str(tmp_path / "e.png")]) == 0
    out = capsys.readouterr().out
    assert "eFAT" in out
    # the note on rates where the grid does not resolve E*, exactly when there are any
    assert ("note: E* is the grid's smallest amount" in out) == bool(rmap.unresolved(Constraint(**CASE_CONSTRAINT)).any())
    code = main(["retrain", "--model", "mlp", "--plan", str(tmp_path / "plan.json"), "--population",
                 str(tmp_path / "pop.npz"), "--out-dir", str(tmp_path / "run")])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert code == (0 if all(c["passed"] for c in report["chips"]) else 1)  # exit 1 exactly when a chip fails
    out = capsys.readouterr()
    failed = report["totals"]["chips_failing_first_check"]
    assert f"{failed} chips failed their first check" in out.out  # the summary counts them
    assert "units: retrain and verify" in out.err  # progress over the units
    # a plan refuses a model other than the one it was made for, before any work
    code = main(["retrain", "--model", "lenet5", "--plan", str(tmp_path / "plan.json"), "--population",
                 str(tmp_path / "pop.npz"), "--out-dir", str(tmp_path / "other")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "another model" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "other").exists()
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
    cfg = DemoConfig(model="mlp", rows=16, cols=16, chips=6, populations=2, chip_rates="uniform:0.01,0.06",
                     fault_rates=(0.02, 0.06, 0.1), epochs=(0.5, 1), **CASE_CONSTRAINT, max_trials=8)
    summary = run_demo(tmp_path, cfg, log=lambda *a: None)
    for name in ("resilience_map.json", "resilience_map.png", "population-0/population.npz", "population-1/plan.json",
                 "required_epochs.png", "costs.png", "population-1/efat/report.json", "summary.json"):
        assert (tmp_path / name).exists(), name
    assert summary["chips"] == 12 and len(summary["populations"]) == 2
    assert json.loads((tmp_path / "summary.json").read_text())["verified"] == summary["verified"]
    for row in summary["populations"]:  # all three policies executed, each into its own folder
        for policy in ("efat", "reduce", "fixed"):
            report = json.loads((tmp_path / f"population-{summary['populations'].index(row)}" / policy /
                                 "report.json").read_text())
            assert report["policy"] == policy and report["totals"]["executed"]["epochs"] == row[f"{policy}_executed"]
    # the counts behind the demo's exit code: failing chips split into feasible and beyond repair
    for policy in ("efat", "reduce", "fixed"):
        failed = summary["chips"] - summary[f"{policy}_verified"]
        assert 0 <= summary[f"{policy}_feasible_failed"] <= failed
    reports = [json.loads((tmp_path / f"population-{i}" / "efat" / "report.json").read_text()) for i in range(2)]
    short = [c for r in reports for c in r["chips"] if not c["passed"] and c["status"] == "infeasible"]
    assert [b["id"] for b in summary["beyond_repair"]] == [c["id"] for c in short]
    assert summary["efat_feasible_failed"] == sum(not c["passed"] and c["status"] != "infeasible"
                                                  for r in reports for c in r["chips"])
    clean = {**summary, **{f"{p}_feasible_failed": 0 for p in ("efat", "reduce", "fixed")}}
    assert demo_succeeded({**clean, "beyond_repair": [{"id": "x", "rate": 0.2, "accuracy": 0.5, "epochs": 2}]})
    assert not demo_succeeded({**clean, "fixed_feasible_failed": 1})  # a feasible chip failing fails the demo
    ratio = summary["efat_of_reduce"]
    assert ratio["min"] <= ratio["mean"] <= ratio["max"]
    assert ratio["min"] == min(r["efat_executed"] / r["reduce_executed"] for r in summary["populations"])
    for row, k in zip(summary["populations"], range(2)):  # the floor on paper, from the plan
        p = Plan.load(tmp_path / f"population-{k}" / "plan.json")
        assert row["floor"] == p.grouping_floor() <= row["reduce_paper"] == p.costs.reduce.epochs
    floor = summary["paper"]["floor_of_reduce"]["mean"]
    assert f"no grouping can cost less than {100 * floor:.1f}%" in summary_text(summary)


@pytest.mark.parametrize("argv, match", [
    (["--chips", "0"], "chips must be an int >= 1; got 0"),
    (["--populations", "0"], "populations must be an int >= 1; got 0"),
    (["--model", "resnet"], "unknown model 'resnet'"),
    (["--max-drop", "2"], r"max_accuracy_drop must be a number in \[0, 1\]"),
    (["--pass-target", "1"], "pass_target"),
    (["--workers", "0"], "--workers must be an int >= 1; got 0"),
])
def test_demo_checks_its_arguments_before_computing(tmp_path, capsys, monkeypatch, argv, match):
    import cli.pipeline

    monkeypatch.setattr(cli.pipeline, "load_dataset", lambda *a, **k: pytest.fail("computed before checking"))
    assert main(["demo", "--out", str(tmp_path / "d"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(match, err), err
    assert not (tmp_path / "d").exists()


def test_demo_with_nothing_to_retrain(setup, tmp_path):
    """A constraint every chip meets with bypass alone (MNIST's LeNet-5 at the demo's rates
    came close): Reduce and fixed FAT retrain nothing, so eFAT's share of them is
    undefined, and the demo says so instead of dividing by zero."""
    cfg = DemoConfig(model="mlp", rows=16, cols=16, chips=4, populations=2, chip_rates="uniform:0.01,0.03",
                     fault_rates=(0.03,), epochs=(0.5,), max_accuracy_drop=1.0, pass_target=0.5,
                     confidence=0.5, max_trials=2)
    summary = run_demo(tmp_path, cfg, log=lambda *a: None)
    assert all(r[f"{p}_executed"] == 0 for r in summary["populations"] for p in ("efat", "reduce", "fixed"))
    assert summary["efat_of_reduce"] is None and summary["efat_of_fixed"] is None
    assert json.loads((tmp_path / "summary.json").read_text())["efat_of_fixed"] is None
    assert "undefined (no chip needed retraining)" in summary_text(summary)
    assert summary["verified"] == summary["chips"] == 8 and demo_succeeded(summary)
