"""``efat timing`` through ``cli.main.main``."""

from __future__ import annotations

import csv

import pytest

from simulator import ArrayConfig, gemm_timing
from cli.main import main

TOPO = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    "conv1, 10, 10, 3, 3, 2, 5, 1,\n"
    "conv2, 11, 9, 3, 2, 3, 17, 2,\n"
)
CFG = "[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nDataflow: ws\n"


@pytest.fixture
def files(tmp_path):
    topo = tmp_path / "net.csv"
    topo.write_text(TOPO)
    cfg = tmp_path / "arr.cfg"
    cfg.write_text(CFG)
    return topo, cfg


def test_table_with_config(files, capsys):
    topo, cfg = files
    assert main(["timing", str(topo), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "8x8" in lines[0]
    assert lines[1].split() == ["layer", "M", "K", "N", "folds", "cycles", "scalesim_cycles", "pe_util", "mac_util"]
    assert lines[2].split()[:7] == ["conv1", "64", "18", "5", "3", "258", "257"]
    assert lines[3].split()[:7] == ["conv2", "25", "18", "17", "9", "423", "422"]
    assert lines[-1].split()[:4] == ["TOTAL", "12", "681", "679"]


def test_rows_cols_csv_and_scalesim_columns(files, tmp_path, capsys):
    topo, _ = files
    out_csv = tmp_path / "out.csv"
    assert main(["timing", str(topo), "--rows", "4", "--cols", "6", "--csv", str(out_csv), "--scalesim"]) == 0
    assert "ss_compute_util_%" in capsys.readouterr().out
    with open(out_csv) as f:
        rows = list(csv.DictReader(f))
    cfg = ArrayConfig(4, 6)
    t = gemm_timing(cfg, 64, 18, 5)
    assert rows[0]["layer"] == "conv1" and int(rows[0]["cycles"]) == t.n_cycles
    assert int(rows[0]["scalesim_cycles"]) == t.n_cycles - 1
    assert float(rows[0]["ss_mapping_eff_%"]) == pytest.approx(100 * t.pe_utilisation, abs=1e-4)
    assert rows[-1]["layer"] == "TOTAL"
    assert int(rows[-1]["cycles"]) == sum(int(r["cycles"]) for r in rows[:-1])


def test_default_array_is_32x32(files, capsys):
    topo, _ = files
    assert main(["timing", str(topo)]) == 0
    assert "32x32" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--rows", "0"], "ArrayConfig.rows must be an int in [1, 4096]; got 0."),
        (["--config", "CFG", "--rows", "4"], "give either --config or --rows/--cols, not both."),
        (["--config", "MISSING"], "config file not found"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(files, tmp_path, capsys, extra, pattern):
    topo, cfg = files
    extra = [str(cfg) if a == "CFG" else str(tmp_path / "x.cfg") if a == "MISSING" else a for a in extra]
    assert main(["timing", str(topo), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("efat timing: error: ") and pattern in err
    assert len(err.strip().splitlines()) == 1


def test_bad_topology_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(TOPO + "conv3, 2, 2, 3, 3, 1, 1, 1,\n")
    assert main(["timing", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv, line 4" in err and "filter height 3 is larger than the IFMAP height 2" in err
    assert main(["timing", str(tmp_path / "none.csv")]) == 2
    assert "topology file not found" in capsys.readouterr().err


def test_non_ws_config_exit_2(files, tmp_path, capsys):
    topo, _ = files
    cfg = tmp_path / "os.cfg"
    cfg.write_text(CFG.replace("ws", "os"))
    assert main(["timing", str(topo), "--config", str(cfg)]) == 2
    assert "Dataflow is 'os'" in capsys.readouterr().err
