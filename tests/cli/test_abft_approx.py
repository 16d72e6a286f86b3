"""``efat abft approx``: a tiny sweep writes its CSVs and figure, resumes to the same rows, and
refuses bad arguments in one line."""

from __future__ import annotations

import csv

from cli.abft_approx import SCHEMES
from cli.main import main

TINY = ["abft", "approx", "--bers", "1e-7,3e-7", "--runs", "1", "--calib-images", "64", "--calib-runs", "1",
        "--test-images", "96", "--batch-size", "32"]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_tiny_sweep(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ApproxABFT against classic ABFT" in out and "paper (v1)" in out and "thresholds lenet5 (blocked)" in out
    rows = _rows(tmp_path / "abft_approx.csv")
    assert [(r["ber"], r["scheme"]) for r in rows] == [(b, s) for b in ("1e-07", "3e-07") for s in SCHEMES]
    for r in rows:
        assert 0 <= float(r["accuracy"]) <= 1
        if r["scheme"] == "none":
            assert r["overhead"] == ""
            continue
        base, ck, rec = (int(r[k]) for k in ("base_cycles", "checksum_cycles", "recovery_cycles"))
        assert ck > 0 and abs(float(r["overhead"]) - (ck + rec) / base) < 1e-12
        assert (rec > 0) == (int(r["recomputed"]) > 0)
        if r["scheme"].startswith("classic"):  # threshold 0: every mismatched block is recovered
            assert r["recovered"] == r["mismatched"] and r["tolerated"] == "0"
        else:
            assert int(r["recovered"]) + int(r["tolerated"]) == int(r["mismatched"])
    # the blocked schemes check more, smaller blocks
    whole = next(r for r in rows if r["scheme"] == "classic")
    blocked = next(r for r in rows if r["scheme"] == "classic_blocked")
    assert int(blocked["blocks"]) > int(whole["blocks"]) == int(whole["gemms"])
    thresholds = _rows(tmp_path / "abft_approx_thresholds.csv")
    assert {t["blocking"] for t in thresholds} == {"whole", "blocked"}
    assert all(float(t["threshold"]) >= 0 for t in thresholds)
    assert all(t["block_rows"] for t in thresholds if t["blocking"] == "blocked")
    assert (tmp_path / "abft_approx.png").stat().st_size > 10_000
    # resumed from the progress files: the same rows
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    assert _rows(tmp_path / "abft_approx.csv") == rows


def test_bad_arguments_are_one_line(tmp_path, capsys):
    for extra in (["--precision", "int4"], ["--bers", "0,1e-7"], ["--models", "nosuch"], ["--calib-images", "0"],
                  ["--max-drop", "2"], ["--recompute", "-1"]):
        assert main(["abft", "approx", "--out", str(tmp_path), *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("efat abft: error:") and "\n" not in err, err
    assert main(["abft", "approx", "--out", str(tmp_path), "--models", "nosuch"]) == 2
    assert "nosuch" in capsys.readouterr().err
