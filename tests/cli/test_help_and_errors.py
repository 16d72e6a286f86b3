"""The command line as a new user meets it: every option explained, every mistake one line."""

from __future__ import annotations

import argparse

import pytest

from cli.args import HelpFormatter
from cli.main import build_parser, main
from faults import FaultMap
from simulator import ArrayConfig


def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_option_has_help_with_its_default(name):
    p = _subcommands()[name]
    fmt = HelpFormatter(prog=p.prog)
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        label = "/".join(action.option_strings) or action.dest
        assert action.help and len(action.help) > 10, f"efat {name} {label} has no help text"
        text = fmt._get_help_string(action) % vars(action)
        flag = action.nargs == 0
        assert flag or action.required or not action.option_strings or "default" in text, \
            f"efat {name} {label}: the help does not state the default"
        assert flag or action.metavar or action.choices or action.type is int or not action.option_strings, \
            f"efat {name} {label}: the help does not show the value's format (metavar, choices or an int)"


def _one_line_error(capsys, argv, code=2):
    assert main(argv) == code
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.err, out.err
    return lines[0]


def test_a_bad_list_names_its_option(capsys):
    line = _one_line_error(capsys, ["simulate", "--sweep-rates", "0.01,abc"])
    assert "argument --sweep-rates" in line and "'0.01,abc'" in line
    line = _one_line_error(capsys, ["resilience", "--out", "x.json", "--rates", "0.1,,x"])
    assert "argument --rates" in line


def test_trials_below_one_are_refused_before_anything_is_written(capsys, tmp_path):
    line = _one_line_error(capsys, ["simulate", "--model", "mlp", "--trials", "0", "--plot", str(tmp_path / "a.png")])
    assert "--trials must be >= 1" in line
    assert list(tmp_path.iterdir()) == []  # no empty CSV, no PNG


@pytest.mark.parametrize("content", [b"just text\n", b"\x80\x04K\x01."])
def test_a_file_that_is_no_npz_is_named_without_numpy_advice(capsys, tmp_path, content):
    (tmp_path / "p.npz").write_bytes(content)
    line = _one_line_error(capsys, ["population", "--load", str(tmp_path / "p.npz")])
    assert "p.npz" in line and "not a readable .npz file" in line
    assert "pickle" not in line.lower()


def test_out_into_a_new_folder_works_and_a_bad_one_is_named(capsys, tmp_path):
    target = tmp_path / "new" / "dir" / "p.npz"
    assert main(["population", "-n", "2", "--rows", "8", "--cols", "8", "--out", str(target)]) == 0
    assert target.exists() and [p.name for p in target.parent.iterdir()] == ["p.npz"]
    capsys.readouterr()
    (tmp_path / "file").write_text("x")
    line = _one_line_error(capsys, ["population", "-n", "2", "--out", str(tmp_path / "file" / "p.npz")])
    assert "file" in line and ".tmp" not in line


def test_a_rate_list_is_not_offered_where_it_is_not_accepted(capsys):
    line = _one_line_error(capsys, ["population", "--rates", "0.01,0.02"])
    assert "'0.01,0.02'" in line and "uniform:LO,HI" in line
    assert "sequence" not in line  # a Python list is no option on the command line


def test_argparse_mistakes_are_one_line(capsys):
    line = _one_line_error(capsys, ["plan", "--population", "p.npz"])  # --rmap and --out missing
    assert line.startswith("efat plan: error:") and "--rmap" in line
    line = _one_line_error(capsys, ["bogus"])
    assert line.startswith("efat: error:") and "bogus" in line


def test_a_fault_map_for_another_precision_is_refused(capsys, tmp_path):
    from simulator import IntPrecision

    FaultMap.random(ArrayConfig(16, 16, IntPrecision(4, 4, 8, 12)), 0.1, seed=0).save(tmp_path / "m.npz")
    line = _one_line_error(capsys, ["simulate", "--model", "mlp", "--rows", "16", "--cols", "16",
                                    "--fault-map", str(tmp_path / "m.npz")])
    assert "int4x4->int12" in line and "int8x8->int32" in line


def test_figure_titles_state_the_constraint_their_numbers_use(monkeypatch, tmp_path):
    """A plan's amounts are certified for a constraint (drop, pass target, confidence): the title says so."""
    import matplotlib.figure
    import numpy as np

    from cli.figures import plot_required_epochs
    from efat import Constraint, ResilienceMap, plan
    from faults import Population

    rates = np.array([0.02, 0.05, 0.1])
    acc = 0.98 - rates[:, None, None] * np.exp(-np.array([0.0, 1, 2])[None, :, None]) * np.ones((1, 1, 30))
    c = Constraint(0.02, 0.85, 0.8)
    p = plan(Population.generate(ArrayConfig(8, 8), 4, rates="uniform:0.02,0.08", seed=0),
             ResilienceMap(rates, [0, 1, 2], acc, 0.98, {"array": [8, 8]}), c)
    titles = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *a, **k: (titles.extend(ax.get_title() for ax in fig.axes), real(fig, *a, **k)))
    plot_required_epochs(tmp_path / "e.png", p)
    assert any(c.text() in t for t in titles), titles
    assert "drop <= 2 points for >= 85% of chips (80% confidence)" == c.text()


def test_simulate_per_layer_sensitivity(capsys):
    import json

    assert main(["simulate", "--model", "mlp", "--rows", "8", "--cols", "8", "--rate", "0.2", "--per-layer",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    sens = out["sensitivity"]
    assert [s["name"] for s in sens] == [r["name"] for r in out["layers"]]
    assert any(s["drop"] > 0 for s in sens) and all(0 <= s["accuracy"] <= 1 for s in sens)


def test_simulate_in_a_float_precision(capsys, tmp_path):
    import json

    assert main(["simulate", "--model", "mlp", "--rows", "8", "--cols", "8", "--precision", "bf16", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["precision"] == "bf16" and set(res["accuracy"]) == {
        "float", "bf16, fault-free chip", "bf16, faulty chip", "bf16, faulty chip + bypass"}
    assert abs(res["accuracy"]["bf16, fault-free chip"] - res["accuracy"]["float"]) <= 0.01
    FaultMap.random(ArrayConfig(8, 8), 0.1, seed=0).save(tmp_path / "m.npz")
    line = _one_line_error(capsys, ["simulate", "--model", "mlp", "--precision", "fp16", "--fault-map",
                                    str(tmp_path / "m.npz")])
    assert "--precision fp16: the fault map is for int8x8->int32" in line
    line = _one_line_error(capsys, ["simulate", "--model", "mlp", "--precision", "fp64"])
    assert "precision must be one of" in line and "'fp64'" in line
