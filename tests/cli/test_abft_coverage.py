"""ABFT coverage studies: what must hold whatever the draws (replication never misses a single
flip; integer global ABFT corrects every single psum or product error; integer checks never
alarm on a fault-free run; a stuck-at fault survives recomputing)."""

from __future__ import annotations

import pytest

from cli.abft_coverage import OUTCOMES, run_coverage
from cli.main import main


@pytest.fixture(scope="module")
def lenet():
    from training import load_dataset, pretrained

    data = load_dataset("digits", seed=0)
    return pretrained("lenet5", data, seed=0), data


def test_single_flips(lenet, tmp_path):
    model, data = lenet
    rows, path = run_coverage("flips", model, data, precisions=("int8", "fp16"), out_dir=tmp_path, trials=24,
                              chunk=12, capture_images=4)
    assert len(rows) == 2 * 4 * 4  # precisions x sites x schemes
    for r in rows:
        assert r["trials"] == 24 == sum(r[o] for o in OUTCOMES)
        if r["scheme"] == "none":
            assert r["corrected"] == r["detected"] == r["needless"] == 0
        if r["scheme"] == "replication":  # one of the two runs is right: a wrong one always differs
            assert r["sdc"] == r["tolerated"] == 0
        if r["precision"] == "int8":
            assert r["tolerated"] == 0  # integer checks are exact: no tolerance
            if r["scheme"] == "global" and r["site"] in ("psum", "product"):  # one output wrong: corrected
                assert r["sdc"] == r["detected"] == 0
    wrong = sum(r["sdc"] for r in rows if r["scheme"] == "none")
    assert wrong > 0  # the unprotected runs do see errors
    again, _ = run_coverage("flips", model, data, precisions=("int8", "fp16"), out_dir=tmp_path, trials=24,
                            chunk=12, capture_images=4)
    assert again == rows  # resumed from the progress file, and the same draws


def test_model_runs_fault_free_and_stuck(lenet, tmp_path):
    model, data = lenet
    rows, _ = run_coverage("ber", model, data, precisions=("int8",), out_dir=tmp_path, bers=(0.0,), runs=1,
                           n_test=64)
    base = next(r for r in rows if r["scheme"] == "none")["accuracy"]
    for r in rows:
        assert r["accuracy"] == base and r.get("detected", 0) == 0  # no false alarm, no change
    rows, _ = run_coverage("stuck", model, data, precisions=("int8",), out_dir=tmp_path, chips=2, stuck_rate=0.05,
                           n_test=64)
    for r in rows:
        if r["scheme"] == "global":
            assert r["detected"] > 0 and r["unresolved"] == r["detected"] == r["recomputed"]


def test_the_command(tmp_path, capsys):
    assert main(["abft", "flips", "--trials", "8", "--precisions", "int8", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "detection" in out and (tmp_path / "abft_flips.png").stat().st_size > 10_000
    for extra in (["--precisions", "fp64"], ["--trials", "0"], ["--stuck-rate", "2"], ["--bers", "0,-1"]):
        assert main(["abft", "stuck", "--out", str(tmp_path), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("efat abft: error:") and "\n" not in err
