"""A plan is checked against itself and against its population before anything runs;
resilience maps must say which array they were measured on."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cli.main import main
from efat import Plan, PlanError, PlanFileError, ResilienceError, ResilienceFileError, ResilienceMap, plan
from faults import Population
from simulator import ArrayConfig

CFG = ArrayConfig(16, 16)


def smooth_map(max_rate=0.3, step=0.01, epochs=(0, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8)):
    """accuracy = 0.98 - 0.5 f exp(-e / 3) (2% spread over 24 chips): E* ~ 3 ln(0.5 f / drop),
    sub-additive, so chips fuse."""
    rates = np.round(np.arange(0, max_rate + 1e-9, step), 6)
    e = np.asarray(epochs, float)
    acc = 0.98 - 0.5 * rates[:, None, None] * np.exp(-e[None, :, None] / 3.0) * (1 + 0.02 * np.linspace(0, 1, 24))
    return ResilienceMap(rates, e, np.clip(acc, 0, 1), 0.98, {"array": [16, 16]})


@pytest.fixture(scope="module")
def case():
    rates = [0.0, *np.linspace(0.02, 0.12, 10).tolist(), 0.5]
    pop = Population.generate(CFG, len(rates), rates=rates, seed=4)
    p = plan(pop, smooth_map(), 0.008)
    assert {c.status for c in p.chips} == {"retrain", "no_retraining", "infeasible"}
    assert any(len(g.members) > 1 for g in p.groups)
    return pop, p


def _first(obj, status="retrain"):
    return next(c for c in obj["chips"] if c["status"] == status)


def _big_group(obj):
    return next(g for g in obj["groups"] if len(g["members"]) > 1)


def _other_grid_amount(obj):
    return next(e for e in obj["epochs"] if e not in obj["required_epochs_grid"] and e > 0)


TAMPER = {
    "chip rate 2.0": (lambda o: _first(o).update(rate=2.0), r"rate must be a number in \[0, 1\]; got 2.0"),
    "chip rate not a PE count": (lambda o: _first(o).update(rate=0.0301), "not a number of faulty PEs"),
    "chip epochs not its E*": (lambda o: _first(o).update(epochs=_first(o)["epochs"] + 1), "E\\* at its rate"),
    "infeasible chip with an amount": (lambda o: _first(o, "infeasible").update(epochs=8.0), "E\\* at its rate"),
    "status not its amount": (lambda o: _first(o, "no_retraining").update(status="infeasible"),
                              "status 'infeasible', but its amount 0.0 makes it 'no_retraining'"),
    "group epochs off the grid": (lambda o: _big_group(o).update(epochs=0.7), "0.7 is not on the map's grid"),
    "group epochs not its E*": (lambda o: _big_group(o).update(epochs=_other_grid_amount(o)), "E\\* at its fused rate"),
    "fused rate not its PEs": (lambda o: _big_group(o).update(fused_rate=_big_group(o)["fused_rate"] + 1 / 256),
                               "disagrees with its"),
    "fused PE outside the array": (lambda o: _big_group(o)["fused_pes"].__setitem__(0, [16, 3]),
                                   r"fused PE \(16, 3\) lies outside the 16x16 array"),
    "fused PEs repeated": (lambda o: _big_group(o)["fused_pes"].__setitem__(1, _big_group(o)["fused_pes"][0]),
                           "distinct"),
    "grid amount off the map": (lambda o: o["required_epochs_grid"].__setitem__(1, 0.3), "not an amount on the map"),
    "grid decreasing": (lambda o: o["required_epochs_grid"].__setitem__(-1, 0.0), "must not decrease"),
    "reduce cost": (lambda o: o["costs"]["reduce"].update(epochs=1.0), "costs.reduce says 1.0"),
    "efat runs": (lambda o: o["costs"]["efat"].update(runs=99), "costs.efat says"),
    "fixed amount below E*": (lambda o: o["costs"].update(fixed_amount=0.5), "costs.fixed_amount must be"),
    "pass target out of range": (lambda o: o["constraint"].update(pass_target=1.5), "pass_target must be"),
    "group pass probability": (lambda o: _big_group(o).update(pass_probability=[0.9, 0.95, 1.0]),
                               "lower <= estimate <= upper"),
    "expected below on paper": (lambda o: _big_group(o).update(expected_epochs=0.1), "expected_epochs must be"),
    "expected cost interval": (lambda o: o["costs"]["efat"].update(lower=9.0, upper=1.0), "interval .* is empty"),
    "epochs missing 0": (lambda o: o.update(epochs=o["epochs"][1:]), "must start with 0"),
    "duplicate chip ids": (lambda o: o["chips"][1].update(id=o["chips"][0]["id"]), "unique"),
}


@pytest.mark.parametrize("name", sorted(TAMPER))
def test_an_inconsistent_plan_file_never_loads(case, tmp_path, name):
    _, p = case
    obj = json.loads(json.dumps(p.to_json()))
    edit, match = TAMPER[name]
    edit(obj)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(PlanFileError, match=match) as err:
        Plan.load(path)
    assert str(err.value).startswith(str(path))


def _swap_member_pes(obj, pop):
    """Move a group's fused PE to a PE no member has (same count, same rate: self-consistent)."""
    g = _big_group(obj)
    taken = {tuple(pe) for pe in g["fused_pes"]}
    free = next((r, c) for r in range(16) for c in range(16) if (r, c) not in taken)
    g["fused_pes"] = sorted([list(pe) for pe in list(taken)[1:]] + [list(free)])


def _other_chip_rate(obj, pop):
    """A chip claims a rate it does not have (still a PE count with the same E*)."""
    c = _first(obj)
    rates = np.array(obj["fault_rates"])
    same_cell = [k / 256 for k in range(257) if k / 256 != c["rate"]
                 and np.searchsorted(rates, k / 256 - 1e-12) == np.searchsorted(rates, c["rate"] - 1e-12)]
    c["rate"] = same_cell[0]


@pytest.mark.parametrize("edit, match", [
    (_swap_member_pes, r"not the union of its members' faulty PEs .*: PE \(\d+, \d+\) is faulty on a member"),
    (_other_chip_rate, "the plan says fault rate"),
])
def test_a_plan_that_does_not_fit_its_population_is_refused_before_any_training(case, tmp_path, capsys, edit,
                                                                                 match):
    pop, p = case
    obj = json.loads(json.dumps(p.to_json()))
    edit(obj, pop)
    (tmp_path / "p.json").write_text(json.dumps(obj))
    loaded = Plan.load(tmp_path / "p.json")  # consistent in itself ...
    with pytest.raises(PlanError, match=match):
        loaded.check_population(pop)  # ... but not with the population
    pop.save(tmp_path / "pop.npz")
    code = main(["retrain", "--model", "mlp", "--plan", str(tmp_path / "p.json"), "--population",
                 str(tmp_path / "pop.npz"), "--out-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing ran


def test_the_plan_as_made_passes_every_check(case, tmp_path):
    pop, p = case
    p.save(tmp_path / "p.json")
    loaded = Plan.load(tmp_path / "p.json")
    loaded.check_population(pop)
    assert loaded == p
    assert json.loads((tmp_path / "p.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    infeasible = next(c for c in loaded.chips if c.status == "infeasible")
    assert math.isinf(infeasible.epochs)


def test_a_resilience_map_must_name_its_array(tmp_path):
    acc = np.full((2, 2, 1), 0.9)
    for meta in ({}, {"array": None}, {"array": [16]}, {"array": [0, 4]}, {"array": [4.5, 4]}, {"model": "x"}):
        with pytest.raises(ResilienceError, match=r"meta\['array'\]"):
            ResilienceMap([0.1, 0.2], [0, 1], acc, 0.9, meta)
    good = ResilienceMap([0.1, 0.2], [0, 1], acc, 0.9, {"array": [16, 16]})
    assert good.shape == (16, 16)
    obj = good.to_json()
    del obj["meta"]
    (tmp_path / "m.json").write_text(json.dumps(obj))
    with pytest.raises(ResilienceFileError, match=r"m\.json: .*meta"):
        ResilienceMap.load(tmp_path / "m.json")


def test_a_map_of_another_precision_is_refused(case):
    from simulator import IntPrecision

    pop, _ = case
    rmap = smooth_map()
    other = ResilienceMap(rmap.fault_rates, rmap.epochs, rmap.accuracy, rmap.baseline,
                          {**rmap.meta, "precision": IntPrecision(4, 4, 8, 16).name})
    with pytest.raises(PlanError, match=r"precision int4x4->int16; the population's chips compute int8x8->int32"):
        plan(pop, other, 0.01)
