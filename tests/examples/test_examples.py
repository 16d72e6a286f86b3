"""The figure examples (examples/fig*.py) run end to end with --quick and write PNG + CSV."""

from __future__ import annotations

import csv
import importlib
import json
import sys
from pathlib import Path

import pytest

from efat import ResilienceMap

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One shared output folder (so the map is measured once), the examples importable."""
    sys.path.insert(0, str(EXAMPLES))
    yield tmp_path_factory.mktemp("out")
    sys.path.remove(str(EXAMPLES))


def run(name, out, *extra):
    module = importlib.import_module(name)
    result = module.main(["--quick", "--rows", "16", "--cols", "16", "--model", "mlp", "--out", str(out), *extra])
    return module, result


def read(out, name):
    png = out / f"{name}.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    with open(out / f"{name}.csv", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def the_map(out):
    maps = sorted(out.glob("resilience_map_*.json"))
    assert len(maps) == 1, maps
    return maps[0]


def test_fig2_resilience_map(env):
    module, (rmap, need) = run("fig2_resilience_map", env)
    header, rows = read(env, module.NAME)
    assert header == module.header(rmap)
    assert header[:3] == ["fault_rate", "chips", "required_epochs"] and "pass_share_0ep" in header
    assert [float(r[0]) for r in rows] == rmap.fault_rates.tolist()
    assert [int(r[1]) for r in rows] == rmap.n_trials.tolist()
    assert [float(r[2]) for r in rows] == need.tolist()  # "inf" parses as inf
    assert rmap.complete and 1 <= rmap.n_trials.min() and rmap.n_trials.max() <= 3  # --quick: 1 chip, budget 3
    assert json.loads(the_map(env).read_text())["format"] == "efat.ResilienceMap"


def test_fig1_accuracy_vs_fault_rate(env):
    module, rows = run("fig1_accuracy_vs_fault_rate", env, "--extra-rates", "0.005")
    header, csv_rows = read(env, module.NAME)
    assert header == module.HEADER == ["fault_rate", "trial", "n_faulty", "method", "epochs", "accuracy"]
    rmap = ResilienceMap.load(the_map(env))
    rmap_rates = rmap.fault_rates.tolist()
    amounts = sorted({float(r[4]) for r in csv_rows if r[3] == "fat"})
    assert amounts == [0.5]  # the quick grid's only amount
    # every chip the map measured (none, bypass, FAT 0.5), + as many at the extra rate as the sparsest rate had
    assert len(csv_rows) == rmap.n_trials.sum() * (2 + len(amounts)) + 2 * rmap.n_trials.min()
    assert {r[3] for r in csv_rows} == {"none", "bypass", "fat"}
    assert all(0 <= float(r[5]) <= 1 for r in csv_rows)
    assert {float(r[0]) for r in csv_rows if r[3] == "fat"} == set(rmap_rates)


def test_examples_share_one_map(env, capsys):
    path = the_map(env) if list(env.glob("resilience_map_*.json")) else None
    if path is None:
        run("fig2_resilience_map", env)
        path = the_map(env)
    before = path.read_bytes()
    capsys.readouterr()
    module, plan = run("fig3_required_epochs", env)
    assert "reusing" in capsys.readouterr().out
    assert path.read_bytes() == before  # reused, not measured again (resilience_map rewrites it unchanged)
    header, rows = read(env, module.NAME)
    assert header == ["chip", "fault_rate", "n_faulty", "required_epochs", "status", "group"]
    assert len(rows) == 20 == len(plan.chips)
    assert {r[4] for r in rows} <= {"retrain", "no_retraining", "infeasible"}
    for r, c in zip(rows, plan.chips):
        assert r[0] == c.id and float(r[3]) == c.epochs and (r[5] == "") == (c.group is None)


def test_fig4_cost_vs_population(env):
    module, table = run("fig4_cost_vs_population", env)
    header, rows = read(env, module.NAME)
    assert header == module.HEADER
    assert [int(r[0]) for r in rows] == [5, 10, 20]
    for r in rows:
        fixed, reduce, efat = float(r[3]), float(r[5]), float(r[7])
        assert efat <= reduce + 1e-9 <= fixed + 2e-9
        assert int(r[8]) <= int(r[6]) <= int(r[4]) <= int(r[0])
    fixed_epochs = [float(r[3]) for r in rows]
    assert fixed_epochs == sorted(fixed_epochs)  # nested populations: cost never falls with more chips


def test_fig5_groups(env):
    module, plan = run("fig5_groups", env, "--groups", "2", "--members", "3")
    header, rows = read(env, module.NAME)
    assert header == module.HEADER
    assert len(rows) == len(plan.groups)
    assert sum(int(r[1]) for r in rows) == plan.status_counts()["retrain"]
    for r, g in zip(rows, plan.groups):
        assert r[2].split() == list(g.members) and int(r[1]) == len(g.members)
        assert float(r[7]) == g.epochs <= float(r[8]) + 1e-9  # a group never costs more than its members alone
        assert int(r[6]) == len(g.fused_pes)


def test_missing_mnist_is_one_clear_line(env, monkeypatch, tmp_path):
    monkeypatch.setenv("EFAT_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit) as e:
        run("fig2_resilience_map", env, "--data", "mnist")
    message = str(e.value)
    assert "\n" not in message and "nowhere" in message and "EFAT_MNIST" in message
