"""LUT precisions (approximate multipliers): engines against the reference, the exact table
against INT8, and the multiplier library against hand-computed products and its metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faults import FaultMap
from simulator import (INT8, MULTIPLIERS, ArrayConfig, ConfigError, LutPrecision, SystolicArray, error_metrics,
                       load_table, multiplier, multiplier_table, precision_from_dict)
from simulator.engines.ordered import Prepared
from simulator.engines.table import run_table
from simulator.precision import exact_table

from ..naive import naive_matmul
from ..strategies import fault_maps, flip_lists, operands


@st.composite
def lut_precisions(draw):
    """Random tables: signed int16/int32, or unsigned magnitudes (sign-magnitude use), drawn from a
    seed (65,536 entries are too many for hypothesis to draw one by one), extremes included."""
    kind = draw(st.sampled_from(["s16", "s32", "u16"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    lo, hi, dtype = {"s16": (-2 ** 15, 2 ** 15, np.int16), "s32": (-2 ** 31, 2 ** 31, np.int32),
                     "u16": (0, 2 ** 15, np.uint16)}[kind]
    t = rng.integers(lo, hi, (256, 256), dtype=np.int64)
    t.ravel()[rng.integers(0, 65536, 64)] = rng.choice([lo, hi - 1], 64)
    return LutPrecision(t.astype(dtype), signed=kind != "u16")


@settings(max_examples=150)
@given(data=st.data())
def test_lut_engines_equal_reference(data):
    prec = data.draw(lut_precisions())
    cfg = ArrayConfig(data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)), prec)
    fm = data.draw(fault_maps(cfg))
    x, w = data.draw(operands(cfg, max_m=8, max_k=12, max_n=12))
    flips = data.draw(flip_lists(cfg, *x.shape, w.shape[1], max_flips=4))
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        for fl in ([], flips):
            want = naive_matmul(x, w, fm.masks, mitigation == "bypass", prec, fl)
            for engine in ("cycle", "fast"):
                np.testing.assert_array_equal(arr.matmul(x, w, engine, flips=fl).out, want)


@settings(max_examples=80)
@given(data=st.data())
def test_stuck_psums_on_the_gather_add_path(data):
    """Stuck psum bits, where the table path keeps each fold's chains apart: narrow sums that
    wrap, folds that end inside a block of table rows (R up to 20, K up to 50), and psum
    faults beside product and act faults; the fast engine against the reference."""
    base = data.draw(lut_precisions())
    bits = base.widths()[2]
    prec = LutPrecision(base.table, base.signed, acc_bits=data.draw(st.integers(bits, 32)))
    cfg = ArrayConfig(data.draw(st.integers(1, 20)), data.draw(st.integers(1, 4)), prec)
    fm = data.draw(fault_maps(cfg, max_faults=8, sites=("psum",)))
    other = data.draw(fault_maps(cfg, max_faults=4))  # faults on any site beside them
    masks = fm.masks.copy()
    masks[:, 0] &= other.masks[:, 0]
    masks[:, 1] |= other.masks[:, 1]
    fm = FaultMap(cfg, masks)
    x, w = data.draw(operands(cfg, max_m=6, max_k=50, max_n=9))
    want = naive_matmul(x, w, fm.masks, False, prec)
    np.testing.assert_array_equal(SystolicArray(cfg, fm).matmul(x, w, "fast").out, want)


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_stuck_psums_over_many_blocks_of_input_vectors(data):
    """The table path redoes chains for blocks of 64 input vectors at once, with scratch kept per
    block and across calls: more than one block (M up to 200), several folds and runs."""
    prec = data.draw(lut_precisions())
    cfg = ArrayConfig(data.draw(st.integers(3, 20)), data.draw(st.integers(1, 4)), prec)
    fm = data.draw(fault_maps(cfg, max_faults=8, sites=("psum",)))
    other = data.draw(fault_maps(cfg, max_faults=4))
    masks = fm.masks.copy()
    masks[:, 0] &= other.masks[:, 0]
    masks[:, 1] |= other.masks[:, 1]
    fm = FaultMap(cfg, masks)
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    m, k, n = data.draw(st.integers(65, 200)), data.draw(st.integers(9, 40)), data.draw(st.integers(1, 9))
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    want = naive_matmul(x, w, fm.masks, False, prec)
    np.testing.assert_array_equal(SystolicArray(cfg, fm).matmul(x, w, "fast").out, want)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_table_path_split_in_parts(data):
    """The table path splits the (fold, block of 64 vectors) pairs into parts, one per thread,
    each with its own tables, sums and scratch, a fold split between two parts at most: any
    number of parts gives the reference's bits, stuck psums and bypass included."""
    prec = data.draw(lut_precisions())
    cfg = ArrayConfig(data.draw(st.integers(1, 12)), data.draw(st.integers(1, 4)), prec)
    fm = data.draw(fault_maps(cfg, max_faults=10))
    bypass = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    m, k, n = data.draw(st.integers(1, 200)), data.draw(st.integers(1, 40)), data.draw(st.integers(1, 9))
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    want = naive_matmul(x, w, fm.masks, bypass, prec)
    ops = Prepared(x, w, fm.masks, bypass)
    for parts in (1, 2, 3, 7):
        np.testing.assert_array_equal(prec.output(run_table(ops, prec, parts)), want)


@settings(max_examples=60)
@given(data=st.data())
def test_the_exact_table_gives_int8_s_bits(data):
    """``w * a`` as an int16 table (product register 16 bits, like INT8): the same bits as INT8,
    faults and mitigation included; so does the sign-magnitude exact table."""
    exact = LutPrecision(exact_table(True).astype(np.int16), name="exact16")
    cfg8 = ArrayConfig(data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    fm8 = data.draw(fault_maps(cfg8))
    x, w = data.draw(operands(cfg8))
    for prec in (exact, multiplier("exact")):
        cfg = ArrayConfig(cfg8.rows, cfg8.cols, prec)
        fm = FaultMap(cfg, fm8.masks)
        for mitigation in (None, "bypass"):
            want = SystolicArray(cfg8, fm8, mitigation).matmul(x, w, "cycle").out
            for engine in ("cycle", "fast"):
                np.testing.assert_array_equal(SystolicArray(cfg, fm, mitigation).matmul(x, w, engine).out, want)


def test_hand_computed_products():
    """A few pairs worked by hand from each definition."""
    # trunc:4 drops partial products a_i b_j with i + j < 4: 15 * 15 = 225 loses 1 + 2*2 + 3*4 + 4*8 = 49
    assert multiplier_table("trunc:4")[15, 15] == 176
    # Mitchell: log2 3 ~ 1.5, sum 3.0 -> f1 + f2 = 1 -> 2**(1+1+1) * 1 = 8
    assert multiplier_table("mitchell")[3, 3] == 8 and multiplier_table("mitchell")[4, 8] == 32
    # DRUM k=4: 200 -> 1100 | 1 = 13 << 4, 100 -> 1100 | 1 = 13 << 3: 169 << 7 = 21632
    assert multiplier_table("drum:4")[200, 100] == 21632 and multiplier_table("drum:4")[15, 9] == 135
    # ILM: 3 * 3 = 4 + 2 + 2 + (1 * 1); one iteration drops the last term, two keep it
    assert multiplier_table("ilm:1")[3, 3] == 8 and multiplier_table("ilm:2")[3, 3] == 9
    # BAM v=6, h=2: rows j < 2 and columns i + j < 6 dropped: 255 * 3 (rows 0, 1 only) = 0
    assert multiplier_table("bam:6,2")[255, 3] == 0 and multiplier_table("bam:6,2")[1, 128] == 128
    assert (multiplier_table("exact") == np.multiply.outer(np.arange(256), np.arange(256))).all()


def test_sign_magnitude_use():
    p = multiplier("trunc:4")
    x = np.array([[-15, 15, -128]], np.int8)
    w = np.array([[15], [-15], [-1]], np.int8)
    out = SystolicArray(ArrayConfig(3, 1, p)).matmul(x, w).out
    assert out[0, 0] == -176 - 176 + 128  # |-128| = 128, and trunc:4 keeps 128 * 1


@pytest.mark.parametrize("name", MULTIPLIERS)
def test_error_metrics_recomputed(name):
    """Metrics recomputed here, pair by pair, from the products the array forms."""
    p = multiplier(name)
    m = error_metrics(p)
    t = multiplier_table(name).astype(np.int64)
    errs, rels = [], []
    for w in range(-128, 128, 3):
        for a in range(-128, 128, 5):
            got = t[abs(w), abs(a)] * (-1 if (w < 0) != (a < 0) else 1)
            errs.append(got - w * a)
            if w * a:
                rels.append(abs(got - w * a) / abs(w * a))
    # a sample of the pairs: within sampling error of the exhaustive numbers, and never above the WCE
    assert max(abs(e) for e in errs) <= m["wce"]
    assert abs(np.mean(np.abs(errs)) - m["mae"]) <= 0.15 * m["mae"] + 1e-9
    assert abs(100 * np.mean(rels) - m["mre_pct"]) <= 0.15 * m["mre_pct"] + 1e-9
    assert m["mae_pct"] == pytest.approx(100 * m["mae"] / 65536) and (m["ep_pct"] == 0) == (name == "exact")


def test_loaders_and_files(tmp_path):
    t = multiplier_table("drum:4")[:, :].astype(np.uint16)
    t.astype("<u2").tofile(tmp_path / "m.bin")
    np.save(tmp_path / "m.npy", t)
    np.savetxt(tmp_path / "m.csv", t, fmt="%d", delimiter=",")
    for f in ("m.bin", "m.npy", "m.csv"):
        back = load_table(tmp_path / f, signed=False)
        assert np.array_equal(back.astype(np.int64), t.astype(np.int64)), f
    with pytest.raises(ConfigError, match="holds 65,536 16-bit entries; found 10"):
        np.zeros(10, np.uint16).tofile(tmp_path / "s.bin")
        load_table(tmp_path / "s.bin")
    with pytest.raises(ConfigError, match="unknown LUT file type '.txt'"):
        load_table(tmp_path / "m.txt")
    p = LutPrecision(t, signed=False, name="mine")
    fm = FaultMap.random(ArrayConfig(4, 4, p), 0.3, seed=1)
    fm.save(tmp_path / "fm.npz")
    assert FaultMap.load(tmp_path / "fm.npz") == fm
    assert precision_from_dict(p.to_dict()) == p


@pytest.mark.parametrize("table, kwargs, match", [
    (np.zeros((255, 256), np.int16), {}, r"shape \(256, 256\); got \(255, 256\)"),
    (np.zeros((256, 256), np.float32), {}, "must be int16, int32, uint16 or uint32"),
    (np.zeros((256, 256), np.uint16), {}, "pass signed=False"),
    (np.full((256, 256), 40000, np.uint16), {"signed": False}, r"\[40000, 40000\] overflow the 16-bit product register"),
])
def test_bad_tables(table, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LutPrecision(table, **kwargs)


def test_unknown_multipliers_and_tables():
    with pytest.raises(ConfigError, match="unknown multiplier 'booth'"):
        multiplier("booth")
    with pytest.raises(ConfigError, match=r"'drum:1': parameter 1 is out of range \[2, 8\]"):
        multiplier("drum:1")
    with pytest.raises(ConfigError, match="is not known in this process"):
        precision_from_dict({"kind": "lut", "name": "x", "sha256": "0" * 64, "acc_bits": 32})
    assert multiplier("exact") == multiplier("exact") and multiplier("exact") != INT8
