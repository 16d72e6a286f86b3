"""``efat inject``: the fault-injection study end to end (small), resume, and bad input."""

from __future__ import annotations

import csv
import json

import pytest

from cli.main import main


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_bits_and_stuck_studies_write_csv_png_and_compare(tmp_path, capsys):
    args = ["--quick", "--model", "mlp", "--precisions", "bf16,int8", "--bits", "0,7,30", "--out", str(tmp_path)]
    assert main(["inject", "all", *args, "--bers", "1e-5"]) == 0
    out = capsys.readouterr().out
    for name in ("fi_bits", "fi_stuck", "fi_ber"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000 and (tmp_path / f"{name}.csv").exists()
    assert (tmp_path / "fi_transient_vs_permanent.png").exists()
    bits = _rows(tmp_path / "fi_bits.csv")
    # bf16: act/weight bits 0 and 7 (16-bit registers), product/psum/output 0, 7, 30; int8: 0 and 7 of
    # act and weight, 0 and 7 of product (16-bit), 0, 7, 30 of psum and output
    assert len(bits) == (2 + 2 + 3 + 3 + 3) + (2 + 2 + 2 + 3 + 3)
    assert {r["field"] for r in bits if r["precision"] == "bf16" and r["site"] == "psum"} == {"mantissa", "exponent"}
    assert {r["field"] for r in bits if r["precision"] == "int8"} == {"int"}
    stuck = _rows(tmp_path / "fi_stuck.csv")
    assert {r["value"] for r in stuck} == {"0", "1"} and len(stuck) == 2 * ((2 + 2 + 3 + 3) + (2 + 2 + 2 + 3))
    ber = _rows(tmp_path / "fi_ber.csv")
    assert {r["check"] for r in ber} == {"none", "zero", "clamp"}
    assert "worst bit" in out and "recovered (zero, clamp)" in out
    # an exponent bit of a bf16 psum costs more than its mantissa bit 0
    acc = {(r["site"], r["bit"]): float(r["accuracy"]) for r in bits if r["precision"] == "bf16"}
    assert acc[("psum", "30")] < acc[("psum", "0")]


def test_an_interrupted_study_resumes_from_its_progress_file(tmp_path, monkeypatch):
    from cli import fi_study

    args = ["inject", "bits", "--quick", "--model", "mlp", "--precisions", "int8", "--bits", "6,7",
            "--out", str(tmp_path)]
    calls = []
    interrupt = [True]
    real = fi_study._run_task

    def counting(shared, task):
        calls.append(task)
        if len(calls) == 4 and interrupt[0]:
            interrupt[0] = False
            raise KeyboardInterrupt
        return real(shared, task)

    monkeypatch.setattr(fi_study, "_run_task", counting)
    assert main(args) == 130  # interrupted after 3 tasks: act 6, act 7, weight 6
    done = json.loads((tmp_path / "fi_bits.progress.json").read_text())["done"]
    assert len(done) == 3
    calls.clear()
    assert main(args) == 0
    tasks = [c for c in calls if c["study"] == "bits"]
    assert len(tasks) == 10 - 3  # 2 bits x 5 sites, minus the 3 already done
    assert len(_rows(tmp_path / "fi_bits.csv")) == 10


@pytest.mark.parametrize("argv, match", [
    (["bits", "--precisions", "fp64"], "--precisions must name some of fp32, fp16, bf16, int8; got 'fp64'"),
    (["bits", "--flips-per-image", "0"], r"--flips-per-image must be in \(0, 100\]; got 0.0"),
    (["ber", "--bers", "1e-5,2"], r"--bers must be rates in \(0, 1\]"),
    (["bits", "--bits", "0,40"], r"--bits must be bit positions in \[0, 31\]; got \[0, 40\]"),
    (["bits", "--bits", "x"], "--bits must be comma-separated bit positions"),
    (["bits", "--trials", "0"], "--trials must be an int >= 1; got 0"),
])
def test_bad_arguments_end_in_one_line(argv, match, capsys):
    import re

    assert main(["inject", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(match, err), err
