"""Executing plans: group retraining, per-chip verification, resume, reports."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import copy

import torch

from efat import Constraint, PlanError, ResilienceMap, execute, plan
from efat import execution as execution_module
from faults import Population
from simulator import ArrayConfig

from ..conftest import CASE_CONSTRAINT

CFG = ArrayConfig(16, 16)


@pytest.fixture(scope="module")
def setup(efat_case):
    return efat_case


def _chips(report):
    return [(c.id, c.group, c.planned_epochs, c.unit_epochs, c.accuracy, c.passed, c.own_epochs) for c in report.chips]


def _plan(setup):
    model, data, rmap, pop = setup
    return plan(pop, rmap, Constraint(**CASE_CONSTRAINT))


def test_execute_verifies_every_chip(setup, tmp_path):
    model, data, rmap, pop = setup
    p = _plan(setup)
    rep = execute(p, model, data, pop, tmp_path, progress=False)
    assert [c.id for c in rep.chips] == list(pop.ids)
    threshold = rep.baseline - CASE_CONSTRAINT["max_accuracy_drop"]
    assert all(c.passed == (c.accuracy >= threshold - 1e-12) for c in rep.chips)
    units = len(p.groups) + sum(c.group is None for c in p.chips)
    assert len(os.listdir(tmp_path / "units")) == units + sum(c.own_epochs > 0 for c in rep.chips)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert [c["id"] for c in saved["chips"]] == list(pop.ids)
    assert (tmp_path / "report.csv").read_text().count("\n") == len(pop) + 1
    t = rep.totals
    by_unit = {}
    for c in rep.chips:
        by_unit[c.group if c.group is not None else c.id] = c.unit_epochs
    assert t["executed"]["epochs"] == pytest.approx(sum(by_unit.values()) + sum(c.own_epochs for c in rep.chips))
    x = t["expected"]
    assert x["fixed"]["expected"] == p.costs.fixed.expected and x["reduce"]["expected"] == p.costs.reduce.expected
    assert (t["executed"]["expected"], t["executed"]["lower"], t["executed"]["upper"]) == (
        p.costs.efat.expected, p.costs.efat.lower, p.costs.efat.upper)  # the real cost beside the expected one


@pytest.mark.parametrize("policy", ["reduce", "fixed"])
def test_the_other_policies_execute_every_chip_on_its_own(setup, tmp_path, policy):
    """For the comparison, Reduce and fixed FAT run too: every chip alone, at its E* or at
    the plan's fixed amount, with the same escalation and verification."""
    model, data, rmap, pop = setup
    p = _plan(setup)
    rep = execute(p, model, data, pop, tmp_path, progress=False, policy=policy)
    assert rep.policy == policy and [c.id for c in rep.chips] == list(pop.ids)
    for c, planned in zip(rep.chips, p.chips):
        start = p.costs.fixed_amount if policy == "fixed" else planned.epochs
        assert c.unit_epochs >= start  # started there, escalated only upwards
    t = rep.totals
    assert t["executed"]["epochs"] == pytest.approx(sum(c.unit_epochs + c.own_epochs for c in rep.chips))
    assert t["executed"]["planned_epochs"] == getattr(p.costs, policy).epochs
    assert t["executed"]["runs"] == sum(c.unit_epochs > 0 for c in rep.chips) + sum(c.own_epochs > 0 for c in rep.chips)
    with pytest.raises(PlanError, match=r"policy must be one of \['efat', 'reduce', 'fixed'\]; got 'best'"):
        execute(p, model, data, pop, tmp_path, progress=False, policy="best")


def test_members_of_a_group_share_their_outcome(setup, tmp_path):
    """The group's model has zero weights on every fused faulty PE, so with bypass it computes
    the same on every member's chip: one accuracy per group, bit for bit."""
    model, data, rmap, pop = setup
    p = _plan(setup)
    assert any(len(g.members) > 1 for g in p.groups)
    rep = execute(p, model, data, pop, tmp_path, progress=False)
    for g in p.groups:
        accuracies = {c.accuracy for c in rep.chips if c.group == g.index and c.own_epochs == 0}
        assert len(accuracies) <= 1, (g.index, accuracies)


def test_execute_resumes_after_interrupt(setup, tmp_path, monkeypatch):
    model, data, rmap, pop = setup
    p = _plan(setup)
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
    assert len(os.listdir(tmp_path / "part" / "units")) >= 1  # what finished survived the interrupt
    monkeypatch.setattr(execution_module, "fat_retrain", real)
    resumed = execute(p, model, data, pop, tmp_path / "part", progress=False)
    assert _chips(resumed) == _chips(full)
    assert resumed.totals["executed"]["epochs"] == full.totals["executed"]["epochs"]


def test_failing_units_are_retrained_on_never_passed(setup, tmp_path):
    """A map that claims bypass alone suffices everywhere: the check catches the chips it wrongs,
    and they are retrained on (warm over the grid, then on their own map), never passed silently."""
    model, data, rmap, pop = setup
    liar = ResilienceMap(rmap.fault_rates, rmap.epochs, np.where(np.isnan(rmap.accuracy), np.nan, rmap.baseline),
                         rmap.baseline, rmap.meta)
    bad = Population.generate(CFG, 3, rates=0.09, seed=9)
    c = Constraint(0.005, 0.8, 0.8)
    p = plan(bad, liar, c)
    assert {ch.status for ch in p.chips} == {"no_retraining"}
    rep = execute(p, model, data, bad, tmp_path, progress=False)
    t = rep.totals
    assert t["chips_failing_first_check"] >= 1, "a 9% chip on bypass alone should miss a 0.5-point constraint"
    assert t["units_failing_first_check"] == t["chips_failing_first_check"]  # every unit is one chip here
    escalated = [ch for ch in rep.chips if ch.unit_epochs > 0]
    assert len(escalated) == t["chips_failing_first_check"]
    assert all(ch.passed == (ch.accuracy >= rep.baseline - 0.005 - 1e-12) for ch in rep.chips)
    assert all(ch.passed or ch.unit_epochs == rmap.epochs[-1] for ch in rep.chips)  # a failure went the whole way
    assert t["executed"]["epochs"] == pytest.approx(sum(ch.unit_epochs + ch.own_epochs for ch in rep.chips))


def test_execute_rejects_another_population_or_model(setup, tmp_path):
    model, data, rmap, pop = setup
    p = _plan(setup)
    other = Population.generate(CFG, 8, rates="uniform:0.005,0.06", seed=4)
    with pytest.raises(PlanError):
        execute(p, model, data, other, tmp_path, progress=False)
    changed = copy.deepcopy(model)
    with torch.no_grad():
        next(changed.parameters()).add_(1e-3)
    with pytest.raises(PlanError, match="another model"):
        execute(p, changed, data, pop, tmp_path, progress=False)
    assert not (tmp_path / "units").exists()  # refused before any work


def test_checkpoints_of_another_plan_are_not_reused(setup, tmp_path):
    model, data, rmap, pop = setup
    p = _plan(setup)
    execute(p, model, data, pop, tmp_path, progress=False)
    units = tmp_path / "units"
    first = {f: os.path.getmtime(units / f) for f in os.listdir(units)}
    execute(p, model, data, pop, tmp_path, progress=False)  # same plan: every unit reused
    assert {f: os.path.getmtime(units / f) for f in first} == first
    other = Population.generate(CFG, 8, rates="uniform:0.005,0.06", seed=5)
    q = plan(other, rmap, Constraint(**CASE_CONSTRAINT))
    execute(q, model, data, other, tmp_path, progress=False)  # same folder, other fused maps: retrained
    redone = [f for f in first if (units / f).exists() and os.path.getmtime(units / f) != first[f]]
    assert redone
