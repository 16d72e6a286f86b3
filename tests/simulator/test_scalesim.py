"""The SCALE-Sim v3 reader: topologies and configs to GEMMs, cycle counts, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import (
    ArrayConfig,
    ConfigError,
    ConvParams,
    Layer,
    SystolicArray,
    gemm_timing,
    layer_timings,
    read_config,
    read_topology,
    scalesim_report,
)

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
GEMM_HEADER = "Layer, M, N, K,\n"

# SCALE-Sim v3.0.0 COMPUTE_REPORT.csv rows ("Total Cycles", "Overall Util %", "Mapping Efficiency %",
# "Compute Util %") for these layers on an 8x8 WS array with large SRAMs (0 stall cycles),
# recorded by running `scalesim` 3.0.0 in bench/'s separate venv.
SCALESIM_8x8 = {
    "c1": (257, 35.01945525291829, 46.875, 32.25806451612903),
    "c2": (422, 28.324940758293838, 53.125, 24.59490740740741),
    "g1": (167, 22.45508982035928, 46.875, 19.13265306122449),
    "g2": (107, 6.571261682242991, 35.15625, 5.170036764705882),
}


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def cfg_text(rows=8, cols=8, dataflow="ws", sparsity="false"):
    return (
        "[general]\nrun_name = t\n\n[architecture_presets]\n"
        f"ArrayHeight:    {rows}\nArrayWidth:     {cols}\n"
        "IfmapSramSzkB:   64\nFilterSramSzkB:  64\nOfmapSramSzkB:   64\n"
        "IfmapOffset:    0\nFilterOffset:   10000000\nOfmapOffset:    20000000\n"
        f"Bandwidth : 10\nDataflow : {dataflow}\nMemoryBanks:   1\n"
        "ReadRequestBuffer: 512\nWriteRequestBuffer: 512\n\n"
        f"[sparsity]\nSparsitySupport : {sparsity}\n\n"
        "[run_presets]\nInterfaceBandwidth: CALC\nUseRamulatorTrace: False\n"
    )


@pytest.fixture
def conv_csv(tmp_path):
    return write(
        tmp_path,
        "conv.csv",
        CONV_HEADER
        + "c1, 10, 10, 3, 3, 2, 5, 1,\n"
        + "\n"
        + "c2, 11, 9, 3, 2, 3, 17, 2,\n",
    )


@pytest.fixture
def gemm_csv(tmp_path):
    return write(tmp_path, "gemm.csv", GEMM_HEADER + "g1, 20, 10, 12,\ng2,5,3,30\n")


# ----------------------------------------------------------------------------- reading


def test_conv_form_maps_like_scalesim_ws(conv_csv):
    c1, c2 = read_topology(conv_csv)
    assert (c1.name, c1.m, c1.k, c1.n) == ("c1", 8 * 8, 3 * 3 * 2, 5)
    assert c1.conv == ConvParams(10, 10, 3, 3, 2, 5, 1)
    assert c1.line == 2 and c2.line == 4
    # SCALE-Sim's ofmap = ceil((I - F + S) / S): width (9 - 2) / 2 -> 5, not floor + 1 = 4.
    assert (c2.conv.ofmap_h, c2.conv.ofmap_w) == (5, 5)
    assert (c2.m, c2.k, c2.n) == (25, 18, 17)


def test_gemm_form_is_m_n_k_order(gemm_csv):
    g1, g2 = read_topology(gemm_csv)
    assert (g1.m, g1.k, g1.n, g1.conv) == (20, 12, 10, None)
    assert (g2.m, g2.k, g2.n) == (5, 30, 3)  # no spaces, no trailing comma: still read


def test_sparsity_field_and_depthwise_expansion(tmp_path):
    p = write(tmp_path, "dw.csv", CONV_HEADER + "DP_conv, 8, 8, 3, 3, 3, 1, 1, 1:1,\nfc, 1, 1, 1, 1, 4, 2, 1,\n")
    layers = read_topology(p)
    assert [layer.name for layer in layers] == ["DP_convChannel_0", "DP_convChannel_1", "DP_convChannel_2", "fc"]
    assert all((layer.m, layer.k, layer.n) == (36, 9, 1) for layer in layers[:3])
    assert layers[0].sparsity == (1, 1)
    g = write(tmp_path, "g.csv", GEMM_HEADER + "a, 4, 5, 6, 2:4,\n")
    assert read_topology(g)[0].sparsity == (2, 4)


def test_form_override(tmp_path):
    p = write(tmp_path, "odd.csv", "name, rows, cols, depth,\nx, 3, 4, 5,\n")
    with pytest.raises(ConfigError, match=r"odd\.csv, line 1: header"):
        read_topology(p)
    (x,) = read_topology(p, form="gemm")
    assert (x.m, x.n, x.k) == (3, 4, 5)


def test_read_config(tmp_path):
    cfg = read_config(write(tmp_path, "a.cfg", cfg_text(rows=16, cols=4)))
    assert cfg == ArrayConfig(rows=16, cols=4)
    minimal = write(tmp_path, "m.cfg", "[architecture_presets]\narrayheight = 3\nArrayWidth = 5  ; cols\n")
    assert read_config(minimal).shape == (3, 5)


# ----------------------------------------------------------------------------- timing


def test_layer_timings_equal_gemm_timing(conv_csv, gemm_csv):
    cfg = ArrayConfig(8, 8)
    for path in (conv_csv, gemm_csv):
        pairs = layer_timings(path, cfg)
        assert [layer for layer, _ in pairs] == read_topology(path)
        for layer, t in pairs:
            assert t == gemm_timing(cfg, layer.m, layer.k, layer.n)
            assert t.n_cycles == t.folds * (2 * 8 + 8 + layer.m - 2)


def test_reproduces_recorded_scalesim_reports(conv_csv, gemm_csv, tmp_path):
    cfg = read_config(write(tmp_path, "s.cfg", cfg_text()))
    pairs = layer_timings(read_topology(conv_csv) + read_topology(gemm_csv), cfg)
    for layer, t in pairs:
        rep = scalesim_report(t, cfg)
        total, overall, mapping, compute = SCALESIM_8x8[layer.name]
        assert rep.total_cycles == t.n_cycles - 1 == total
        assert rep.stall_cycles == 0
        assert rep.overall_util_pct == pytest.approx(overall, rel=1e-12)
        assert rep.mapping_efficiency_pct == pytest.approx(mapping, rel=1e-12)
        assert rep.compute_util_pct == pytest.approx(compute, rel=1e-12)


@pytest.mark.parametrize(
    "row",
    [
        "c, 6, 7, 3, 3, 3, 5, 1,",  # 1 row fold x 1 col fold: M = 20, K = 27 > R, N = 5
        "c, 5, 5, 2, 2, 2, 8, 2,",  # stride 2, ceil ofmap: M = 9, K = 8, N = 8 (2 col folds)
    ],
)
def test_cycle_engine_runs_the_counted_cycles(tmp_path, row):
    cfg = ArrayConfig(rows=4, cols=6)
    ((layer, t),) = layer_timings(write(tmp_path, "t.csv", CONV_HEADER + row + "\n"), cfg)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (layer.m, layer.k), dtype=np.int8)
    w = rng.integers(-128, 128, (layer.k, layer.n), dtype=np.int8)
    res = SystolicArray(cfg).matmul(x, w, engine="cycle")
    assert res.n_cycles == t.n_cycles == t.scalesim_cycles + 1
    np.testing.assert_array_equal(res.out, x.astype(np.int32) @ w.astype(np.int32))


def test_layer_timings_rejects_non_layers():
    with pytest.raises(ConfigError, match="list of Layer"):
        layer_timings([("a", 1, 2, 3)], ArrayConfig(4, 4))
    with pytest.raises(ConfigError, match="ArrayConfig"):
        layer_timings([Layer("a", 1, 2, 3)], (4, 4))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "body, pattern",
    [
        ("", r"empty topology file"),
        (CONV_HEADER, r"no layers after the header on line 1"),
        ("a, b, c\nx, 1, 2,\n", r"line 1: header 'a, b, c' is neither"),
        (CONV_HEADER + "c1, 10, 10, 3, 3, 2, 5,\n", r"line 2: a conv-form row needs 8 fields .* got 7"),
        (CONV_HEADER + "ok, 4, 4, 1, 1, 1, 1, 1,\nc1, 10, ten, 3, 3, 2, 5, 1,\n", r"line 3: IFMAP Width must be a positive integer; got 'ten'"),
        (CONV_HEADER + "c1, 10, 10, 3, 3, 2, 5, 0,\n", r"line 2: Strides must be a positive integer; got '0'"),
        (CONV_HEADER + "c1, 10, 10, 3.5, 3, 2, 5, 1,\n", r"Filter Height must be a positive integer; got '3.5'"),
        (CONV_HEADER + "c1, 2, 10, 3, 3, 2, 5, 1,\n", r"line 2: layer 'c1': filter height 3 is larger than the IFMAP height 2"),
        (CONV_HEADER + "c1, 10, 2, 3, 3, 2, 5, 1,\n", r"filter width 3 is larger than the IFMAP width 2"),
        (CONV_HEADER + " , 10, 10, 3, 3, 2, 5, 1,\n", r"line 2: empty layer name"),
        (GEMM_HEADER + "g, 4, 5, 6, 3:2,\n", r"line 2: sparsity must be 'N:M'.* got '3:2'"),
        (GEMM_HEADER + "g, 4, -5, 6,\n", r"line 2: N must be a positive integer; got '-5'"),
    ],
)
def test_bad_topology_errors_name_file_line_value(tmp_path, body, pattern):
    p = write(tmp_path, "bad.csv", body)
    with pytest.raises(ConfigError, match=pattern) as info:
        read_topology(p)
    assert "bad.csv" in str(info.value)


def test_missing_files_and_bad_form(tmp_path):
    with pytest.raises(ConfigError, match=r"topology file not found: .*nope\.csv"):
        read_topology(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.cfg"):
        read_config(tmp_path / "nope.cfg")
    with pytest.raises(ConfigError, match=r"is a directory"):
        read_topology(tmp_path)
    with pytest.raises(ConfigError, match=r"form must be one of"):
        read_topology(write(tmp_path, "t.csv", GEMM_HEADER + "g, 1, 1, 1,\n"), form="os")


@pytest.mark.parametrize(
    "text, pattern",
    [
        (cfg_text(dataflow="os"), r"a\.cfg, line 14: Dataflow is 'os'; .*weight-stationary"),
        (cfg_text(sparsity="true"), r"line 20: SparsitySupport is true"),
        (cfg_text(rows="big"), r"a\.cfg, line 5: ArrayHeight must be an integer; got 'big'"),
        (cfg_text(cols=0), r"line 6: ArrayWidth must be a positive integer; got 0"),
        (cfg_text(rows=5000), r"a\.cfg: ArrayConfig.rows must be an int in \[1, 4096\]; got 5000"),
        ("[general]\nrun_name = x\n", r"no \[architecture_presets\] section"),
        ("[architecture_presets]\nArrayHeight: 4\n", r"\[architecture_presets\] has no ArrayWidth"),
        ("ArrayHeight: 4\n", r"not a valid SCALE-Sim config"),
    ],
)
def test_bad_config_errors(tmp_path, text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        read_config(write(tmp_path, "a.cfg", text))
