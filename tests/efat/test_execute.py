"""Executing plans: group retraining, per-chip verification, resume, reports."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from efat import PlanError, ResilienceMap, execute, plan
from efat import execution as execution_module
from faults import Population
from simulator import ArrayConfig

CFG = ArrayConfig(16, 16)


@pytest.fixture(scope="module")
def setup(efat_case):
    return efat_case


def _chips(report):
    return [(c.id, c.group, c.planned_epochs, c.accuracy, c.passed, c.own_epochs) for c in report.chips]


def test_execute_verifies_every_chip(setup, tmp_path):
    model, data, rmap, pop = setup
    p = plan(pop, rmap, 0.03)
    rep = execute(p, model, data, pop, tmp_path, progress=False)
    assert [c.id for c in rep.chips] == list(pop.ids)
    threshold = rep.baseline - 0.03
    assert all(c.passed == (c.accuracy >= threshold - 1e-12) for c in rep.chips)
    assert len(os.listdir(tmp_path / "groups")) == len(p.groups)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert [c["id"] for c in saved["chips"]] == list(pop.ids)
    assert (tmp_path / "report.csv").read_text().count("\n") == len(pop) + 1
    t = rep.totals
    assert t["efat"]["epochs"] == pytest.approx(sum(g.epochs for g in p.groups) + sum(c.own_epochs for c in rep.chips))
    assert t["fixed"]["epochs"] == p.costs.fixed.epochs and t["reduce"]["epochs"] == p.costs.reduce.epochs


def test_execute_resumes_after_interrupt(setup, tmp_path, monkeypatch):
    model, data, rmap, pop = setup
    p = plan(pop, rmap, 0.03)
    assert len(p.groups) >= 2
    full = execute(p, model, data, pop, tmp_path / "full", progress=False)
    real = execution_module.fat_retrain
    calls = {"n": 0}

    def flaky(*a, **k):
        if a[3] > 0:  # a retraining run, not the 0-epoch pruning of a chip needing none
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(execution_module, "fat_retrain", flaky)
    with pytest.raises(KeyboardInterrupt):
        execute(p, model, data, pop, tmp_path / "part", progress=False)
    assert len(os.listdir(tmp_path / "part" / "groups")) == 1  # the first group survived the interrupt
    monkeypatch.setattr(execution_module, "fat_retrain", real)
    resumed = execute(p, model, data, pop, tmp_path / "part", progress=False)
    assert _chips(resumed) == _chips(full)


def test_failing_chips_are_retrained_on_their_own(setup, tmp_path):
    """A map that claims bypass alone suffices everywhere: the check catches the chips it wrongs."""
    model, data, rmap, pop = setup
    liar = ResilienceMap(rmap.fault_rates, rmap.epochs, np.full(rmap.accuracy.shape, rmap.baseline),
                         rmap.baseline, rmap.meta)
    bad = Population.generate(CFG, 3, rates=0.09, seed=9)
    p = plan(bad, liar, 0.005)
    assert {c.status for c in p.chips} == {"no_retraining"}
    rep = execute(p, model, data, bad, tmp_path, progress=False)
    failed_first = [c for c in rep.chips if c.own_epochs > 0]
    assert failed_first, "a 9% chip on bypass alone should miss a 0.5-point constraint"
    assert rep.totals["chips_failing_group_model"] == len(failed_first)
    assert all(c.passed or c.own_epochs > 0 for c in rep.chips)  # never passed silently


def test_execute_rejects_another_population(setup, tmp_path):
    model, data, rmap, pop = setup
    p = plan(pop, rmap, 0.03)
    other = Population.generate(CFG, 8, rates="uniform:0.005,0.06", seed=4)
    with pytest.raises(PlanError):
        execute(p, model, data, other, tmp_path, progress=False)


def test_checkpoints_of_another_plan_are_not_reused(setup, tmp_path):
    model, data, rmap, pop = setup
    p = plan(pop, rmap, 0.03)
    execute(p, model, data, pop, tmp_path, progress=False)
    first = {f: os.path.getmtime(tmp_path / "groups" / f) for f in os.listdir(tmp_path / "groups")}
    execute(p, model, data, pop, tmp_path, progress=False)  # same plan: every group reused
    assert {f: os.path.getmtime(tmp_path / "groups" / f) for f in first} == first
    other = Population.generate(CFG, 8, rates="uniform:0.005,0.06", seed=5)
    q = plan(other, rmap, 0.03)
    execute(q, model, data, other, tmp_path, progress=False)  # same folder, other fused maps: retrained
    redone = [f for f in first if (tmp_path / "groups" / f).exists() and os.path.getmtime(tmp_path / "groups" / f) != first[f]]
    assert redone
