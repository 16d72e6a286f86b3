"""``efat multipliers``: the library's error table, user tables, and bad names."""

from __future__ import annotations

import csv

import numpy as np

from cli.main import main
from simulator import multiplier_table


def test_the_table_lists_every_multiplier_with_its_metrics(capsys, tmp_path):
    mine = multiplier_table("trunc:6").astype(np.uint16)
    mine.astype("<u2").tofile(tmp_path / "mine.bin")
    assert main(["multipliers", "exact", "trunc:6", "--table", str(tmp_path / "mine.bin"),
                 "--csv", str(tmp_path / "m.csv")]) == 0
    out = capsys.readouterr().out
    assert "MAE%" in out and "mine.bin" in out
    with open(tmp_path / "m.csv", newline="") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert float(rows["exact"]["mae"]) == 0 and float(rows["trunc:6"]["mae"]) > 0
    assert rows["mine.bin"]["mae"] == rows["trunc:6"]["mae"]  # the same table, read from the file


def test_an_unknown_multiplier_is_one_line(capsys):
    assert main(["multipliers", "booth"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown multiplier 'booth'" in err
