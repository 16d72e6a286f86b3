"""``efat abft overhead``: the table, the CSV and the figure; bad input in one line."""

from __future__ import annotations

import csv

import pytest

from cli.main import main


def test_overhead_study(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["abft", "overhead", "--models", "lenet5,alexnet", "--batches", "1,4", "--arrays", "16",
                 "--bandwidths", "4,64", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "abft_overhead.csv")))
    assert len(rows) == 2 * 2 * 2 * 2  # models x batches x bandwidths x checksum placements
    for r in rows:
        ov = {s: float(r[f"ov_{s}"]) for s in ("global", "fold", "replication", "intensity")}
        assert 0 <= ov["intensity"] <= min(ov["global"], ov["fold"], ov["replication"]) + 1e-6
        assert float(r["factor"]) >= 1 - 1e-3
    host = {(r["model"], r["batch"], r["bandwidth"]): float(r["ov_global"]) for r in rows if r["checksums"] == "host"}
    array = {(r["model"], r["batch"], r["bandwidth"]): float(r["ov_global"]) for r in rows if r["checksums"] == "array"}
    assert all(host[key] > array[key] for key in host)
    assert (out / "abft_overhead.png").stat().st_size > 10_000
    text = capsys.readouterr().out
    assert "improvement factor" in text and "SC21: 1.09-5.3" in text


@pytest.mark.parametrize("extra, pattern", [
    (["--models", "lenet5,resnet18"], "resnet18"),
    (["--checksums", "gpu"], "gpu"),
    (["--bandwidths", "0"], "bandwidths"),
    (["--buffers-kb", "64,64"], "buffers-kb"),
    (["--arrays", "0"], "positive integers"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, extra, pattern):
    assert main(["abft", "overhead", "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert pattern in err and "\n" not in err
