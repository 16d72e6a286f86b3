"""``efat population``: exit codes, one-line errors, save/load round trip, JSON and plot output."""

import json

import pytest

from faults import Population
from cli.main import main


def _run(capsys, *argv):
    code = main(["population", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_prints_summary(capsys):
    code, out, err = _run(capsys, "-n", 5, "--rows", 8, "--cols", 12, "--rates", "0.1", "--seed", 3)
    assert code == 0 and "Traceback" not in err
    assert "5 chips on a 8x12" in out and "fault rate" in out and "#" in out


def test_out_then_load_round_trips(capsys, tmp_path):
    path = tmp_path / "pop.npz"
    code, out, _ = _run(capsys, "-n", 7, "--rows", 16, "--cols", 16, "--rates", "negbin:0.05,1",
                        "--spatial", "clustered", "--sites", "psum, weight", "--seed", 4, "--out", path)
    assert code == 0 and f"saved 7 chips to {path}" in out
    pop = Population.load(path)
    assert pop == Population.generate(pop.cfg, 7, rates="negbin:0.05,1", spatial="clustered",
                                      sites=("psum", "weight"), seed=4)
    code, out2, _ = _run(capsys, "--load", path)
    assert code == 0 and out2.splitlines()[:4] == out.splitlines()[:4]


def test_json_summary_and_plot(capsys, tmp_path):
    png = tmp_path / "pop.png"
    code, out, _ = _run(capsys, "-n", 4, "--rows", 8, "--cols", 8, "--json", "--plot", png)
    assert code == 0
    summary = json.loads(out)
    assert summary["n"] == 4 and summary["shape"] == [8, 8]
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, match", [
    (["--rates", "banana"], "'banana'"),
    (["--rates", "uniform:0.5,0.1"], "LO <= HI"),
    (["--load", "missing.npz"], "missing.npz: no such file"),
    (["--spatial", "gaussian"], "'gaussian'"),
    (["--sites", "psum,alu"], "'alu'"),
    (["-n", "0"], "n >= 1"),
    (["--rows", "0"], "rows"),
    (["--out", "pop.txt"], "--out must name a .npz file"),
    (["--load", "x.npz", "--rows", "8"], "drop --rows"),
])
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("efat population: error:") and match in lines[0]
    assert "Traceback" not in err


def test_corrupt_file_is_one_line_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    code, _, err = _run(capsys, "--load", bad)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "bad.npz" in err
