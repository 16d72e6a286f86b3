"""``efat timing`` through ``cli.main.main``."""

from __future__ import annotations

import csv

import pytest

from cli.main import main
from simulator import ArrayConfig, gemm_timing

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


def _expected(ifmap_h, ifmap_w, filt_h, filt_w, channels, filters, stride, R=8, C=8):
    """One conv layer of TOPO by hand: SCALE-Sim's output size ceil((ifmap - filter + stride) / stride),
    M = output pixels, K = filter volume, N = filters; folds ceil(K/R) * ceil(N/C), each
    2R + C + M - 2 cycles; SCALE-Sim reports one cycle less per layer."""
    out_h = -(-(ifmap_h - filt_h + stride) // stride)
    out_w = -(-(ifmap_w - filt_w + stride) // stride)
    m, k, n = out_h * out_w, filt_h * filt_w * channels, filters
    folds = -(-k // R) * -(-n // C)
    cycles = folds * (2 * R + C + m - 2)
    return m, k, n, folds, cycles, cycles - 1


def test_table_with_config(files, capsys):
    topo, cfg = files
    assert main(["timing", str(topo), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "8x8" in lines[0]
    assert lines[1].split() == ["layer", "M", "K", "N", "folds", "cycles", "scalesim_cycles", "pe_util", "mac_util"]
    conv1 = _expected(10, 10, 3, 3, 2, 5, 1)   # 8x8 outputs: M 64, K 18, N 5; 3 folds of 86 cycles
    conv2 = _expected(11, 9, 3, 2, 3, 17, 2)   # 5x5 outputs: M 25, K 18, N 17; 9 folds of 47 cycles
    assert conv1 == (64, 18, 5, 3, 258, 257) and conv2 == (25, 18, 17, 9, 423, 422)  # the arithmetic, spelled out
    assert lines[2].split()[:7] == ["conv1", *map(str, conv1)]
    assert lines[3].split()[:7] == ["conv2", *map(str, conv2)]
    total = [conv1[3] + conv2[3], conv1[4] + conv2[4], conv1[5] + conv2[5]]
    assert lines[-1].split()[:4] == ["TOTAL", *map(str, total)]


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


def test_memory_columns_and_roofline(files, capsys, tmp_path):
    topo, cfg = files
    assert main(["timing", str(topo), "--config", str(cfg), "--bandwidth", "2", "--buffers-kb", "0.1,1,0.1",
                 "--roofline", str(tmp_path / "r.png"), "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "mem_cycles" in out and "memory" in out
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    from simulator import MemoryConfig, memory_timing

    want = memory_timing(ArrayConfig(8, 8, memory=MemoryConfig(2, 0.1, 1, 0.1)), 64, 18, 5)
    assert int(rows[0]["mem_cycles"]) == want.memory_cycles and int(rows[0]["total"]) == want.total_cycles
    assert (tmp_path / "r.png").stat().st_size > 10_000


def test_roofline_needs_a_bandwidth(files, capsys, tmp_path):
    topo, cfg = files
    assert main(["timing", str(topo), "--roofline", str(tmp_path / "r.png")]) == 2
    assert "--roofline needs --bandwidth" in capsys.readouterr().err


def test_a_reference_network_instead_of_a_file(files, tmp_path, capsys):
    from simulator import zoo

    assert main(["timing", "--network", "alexnet", "--batch", "2", "--rows", "16", "--cols", "16",
                 "--csv", str(tmp_path / "a.csv")]) == 0
    with open(tmp_path / "a.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["layer"], int(r["M"]), int(r["K"]), int(r["N"])) for r in rows[:-1]] == zoo.gemms("alexnet", 2)
    assert "alexnet, batch 2: 8 layers" in capsys.readouterr().out
    topo, _ = files
    for argv in (["timing"], ["timing", str(topo), "--network", "alexnet"], ["timing", "--network", "lenet"],
                 ["timing", "--network", "vgg16", "--batch", "0"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("efat timing: error:") and "\n" not in err
