"""``efat axdnn``: the three approximate-DNN studies end to end (small), and bad input."""

from __future__ import annotations

import csv

import pytest

from cli.main import main


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_the_three_studies_write_csv_and_png(tmp_path, capsys):
    common = ["--models", "mlp", "--rows", "8", "--cols", "8", "--trials", "1", "--out", str(tmp_path)]
    assert main(["axdnn", "accuracy", *common, "--multipliers", "drum:4", "--finetune", "0.25"]) == 0
    acc = _rows(tmp_path / "ax_accuracy.csv")
    assert {r["multiplier"] for r in acc} == {"exact", "drum:4"}  # exact is always the reference
    assert all(0 < float(r["finetuned"]) <= 1 and float(r["finetune_seconds"]) > 0 for r in acc)
    assert main(["axdnn", "resilience", *common, "--multipliers", "drum:4", "--sites", "product",
                 "--bits", "3,14", "--rates", "single"]) == 0
    res = _rows(tmp_path / "ax_resilience.csv")
    assert len(res) == 2 * 2 * 2  # multipliers x bits x stuck values
    assert (tmp_path / "ax_resilience_single.png").exists()
    assert main(["axdnn", "retune", *common, "--multipliers", "exact", "--rates", "0.1", "--fat-epochs", "0.25",
                 "--short-epochs", "0.25"]) == 0
    ret = _rows(tmp_path / "ax_retune.csv")
    assert {r["method"] for r in ret} == {"none", "bypass", "fal-retune", "fat", "short-fat+fal-retune"}
    assert float(next(r for r in ret if r["method"] == "fat")["seconds"]) > 0
    out = capsys.readouterr().out
    assert "largest gap to exact" in out and "fal-retune" in out


@pytest.mark.parametrize("argv, match", [
    (["accuracy", "--multipliers", "booth"], "unknown multiplier 'booth'"),
    (["retune", "--rates", "0.1,2"], r"--rates must be 'single' or shares in \(0, 1\]; got '2'"),
    (["resilience", "--sites", "acc"], "--sites must name act, weight, product or psum"),
    (["retune", "--trials", "0"], "--trials must be an int >= 1; got 0"),
])
def test_bad_arguments(argv, match, capsys):
    import re

    assert main(["axdnn", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(match, err), err
