"""New chips on old groups: a chip covered by a group's fused map uses its model, unretrained."""

from __future__ import annotations

import numpy as np
import pytest

from efat import Constraint, PlanError, assign, execute, plan, verify_assignment
from faults import FaultMap, Population
from simulator import ArrayConfig

from ..conftest import CASE_CONSTRAINT


@pytest.fixture(scope="module")
def executed(efat_case, tmp_path_factory):
    model, data, rmap, pop = efat_case
    p = plan(pop, rmap, Constraint(**CASE_CONSTRAINT))
    run = tmp_path_factory.mktemp("run")
    report = execute(p, model, data, pop, run, progress=False)
    return p, report, run


def _new_chips(p, cfg):
    """Per group: a chip on half of its fused PEs (covered); and one chip on a PE no group holds."""
    maps = []
    for g in p.groups:
        pes = np.zeros(cfg.shape, bool)
        for r, c in g.fused_pes[::2]:
            pes[r, c] = True
        maps.append(FaultMap.from_pes(cfg, pes, seed=g.index))
    used = {pe for g in p.groups for pe in g.fused_pes}
    free = next((r, c) for r in range(cfg.rows) for c in range(cfg.cols) if (r, c) not in used)
    pes = np.zeros(cfg.shape, bool)
    pes[free] = True
    maps.append(FaultMap.from_pes(cfg, pes, seed=99))
    return Population(cfg, maps, ids=[f"new-{i}" for i in range(len(maps))])


def test_covered_chips_are_assigned_and_pass_with_their_groups_model(efat_case, executed):
    model, data, rmap, pop = efat_case
    p, report, run = executed
    new = _new_chips(p, pop.cfg)
    matched = assign(p, new)
    assert [a.chip for a in matched] == list(new.ids)
    assert matched[-1].group is None  # its faulty PE lies in no fused map
    for a, g in zip(matched[:-1], p.groups):
        candidate = p.groups[a.group]
        assert set(map(tuple, zip(*np.nonzero(new[a.chip].fault_map.faulty)))) <= set(candidate.fused_pes)
        assert len(candidate.fused_pes) <= len(g.fused_pes)  # the smallest covering group
    verified = verify_assignment(matched, p, new, model, data, run)
    group_accuracy = {c.group: c.accuracy for c in report.chips if c.group is not None and c.own_epochs == 0}
    for a in verified[:-1]:
        assert a.accuracy == group_accuracy[a.group]  # bit for bit what the group's members measured
        assert a.passed == (a.accuracy >= report.baseline - CASE_CONSTRAINT["max_accuracy_drop"] - 1e-12)
    assert verified[-1].accuracy is None and verified[-1].passed is None


def test_assign_refuses_another_array_or_a_missing_run(efat_case, executed, tmp_path):
    model, data, rmap, pop = efat_case
    p, _, _ = executed
    with pytest.raises(PlanError, match="16x16 array; the population is 8x8"):
        assign(p, Population.generate(ArrayConfig(8, 8), 2, seed=0))
    matched = assign(p, _new_chips(p, pop.cfg))
    with pytest.raises(PlanError, match="no retrained model of group"):
        verify_assignment(matched, p, _new_chips(p, pop.cfg), model, data, tmp_path)
