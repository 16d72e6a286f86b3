"""Fault maps: composition, fusion, random generation, persistence, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faults import FaultError, FaultFileError, FaultMap, StuckAt
from simulator import ArrayConfig, IntPrecision, SystolicArray

from ..strategies import configs, fault_maps

CFG = ArrayConfig(8, 6)


def test_with_fault_composes_bits_in_one_register():
    fm = FaultMap.empty(CFG).with_fault(2, 3, StuckAt("psum", 4, 1)).with_fault(2, 3, StuckAt("psum", 0, 0))
    v = 0b10101
    assert (v & int(fm.masks[3, 0, 2, 3])) | int(fm.masks[3, 1, 2, 3]) == 0b10100
    assert fm.faults() == [(2, 3, StuckAt("psum", 0, 0)), (2, 3, StuckAt("psum", 4, 1))]
    assert fm.n_faulty == 1 and fm.rate == pytest.approx(1 / 48)


def test_later_fault_on_same_bit_replaces_earlier():
    a = FaultMap.empty(CFG).with_fault(0, 0, StuckAt("act", 7, 1)).with_fault(0, 0, StuckAt("act", 7, 0))
    assert a == FaultMap.empty(CFG).with_fault(0, 0, StuckAt("act", 7, 0))


def test_top_bit_of_narrow_register_sign_extends():
    fm = FaultMap.empty(CFG).with_fault(0, 0, StuckAt("act", 7, 1))
    assert int(fm.masks[0, 1, 0, 0]) == -128  # 0x80 sign-extended
    cfg = ArrayConfig(1, 1)
    x = np.array([[5]], np.int8)
    w = np.array([[1]], np.int8)
    out = SystolicArray(cfg, FaultMap.empty(cfg).with_fault(0, 0, StuckAt("act", 7, 1))).matmul(x, w).out
    assert out[0, 0] == 5 - 128


@settings(max_examples=60)
@given(data=st.data())
def test_union_is_or_of_faulty_pes(data):
    cfg = data.draw(configs())
    a, b, c = (data.draw(fault_maps(cfg)) for _ in range(3))
    u = a.union(b, c)
    np.testing.assert_array_equal(u.faulty, a.faulty | b.faulty | c.faulty)
    np.testing.assert_array_equal((b | a).faulty, u.faulty & (a.faulty | b.faulty))
    assert a | a == a
    assert set(a.faults()) <= set(a.union(b).faults())  # the first map's faults survive


def test_union_rejects_other_array():
    with pytest.raises(FaultError, match="8x6"):
        FaultMap.empty(CFG).union(FaultMap.empty(ArrayConfig(6, 8)))


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_random_has_exact_count_and_is_deterministic(rate):
    cfg = ArrayConfig(32, 16)
    fm = FaultMap.random(cfg, rate, seed=4)
    assert fm.n_faulty == round(rate * cfg.n_pes)
    assert fm == FaultMap.random(cfg, rate, seed=4)
    if 0 < rate < 1:
        assert fm != FaultMap.random(cfg, rate, seed=5)


def test_random_respects_sites_bits_value():
    cfg = ArrayConfig(16, 16)
    fm = FaultMap.random(cfg, 0.2, seed=1, sites=("psum", "product"), bits=[3, 20], value=1, faults_per_pe=3)
    faults = fm.faults()
    assert {f.site for _, _, f in faults} <= {"psum", "product"}
    assert {f.value for _, _, f in faults} == {1}
    assert {(f.site, f.bit) for _, _, f in faults} <= {("psum", 3), ("psum", 20), ("product", 3)}
    weighted = FaultMap.random(cfg, 0.5, seed=1, sites={"act": 1.0, "weight": 0.0})
    assert {f.site for _, _, f in weighted.faults()} == {"act"}


def test_save_load_round_trip(tmp_path):
    cfg = ArrayConfig(12, 7, IntPrecision(6, 8, 16, 24))
    fm = FaultMap.random(cfg, 0.3, seed=9, faults_per_pe=2)
    fm.save(tmp_path / "chip.npz")
    back = FaultMap.load(tmp_path / "chip.npz")
    assert back == fm and back.cfg == cfg


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FaultFileError, match="no such file"):
        FaultMap.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(FaultFileError, match="not a readable"):
        FaultMap.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, kind=np.array("something.else"), version=1, shape=[2, 2], widths=[8, 8, 16, 32],
             pe_rc=np.zeros((0, 2)), pe_masks=np.zeros((0, 4, 2)))
    with pytest.raises(FaultFileError, match="something.else"):
        FaultMap.load(other)
    fm = FaultMap.random(CFG, 0.2, seed=0)
    fm.save(tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as f:
        data = dict(f)
    data["pe_rc"] = data["pe_rc"] + 100
    np.savez(tmp_path / "outside.npz", **data)
    with pytest.raises(FaultFileError, match="outside"):
        FaultMap.load(tmp_path / "outside.npz")
    data["pe_rc"] -= 100
    data["version"] = np.array(99)
    np.savez(tmp_path / "future.npz", **data)
    with pytest.raises(FaultFileError, match="version 99"):
        FaultMap.load(tmp_path / "future.npz")
    with pytest.raises(FaultFileError, match=r"\.npz"):
        fm.save(tmp_path / "chip.bin")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: StuckAt("accumulator", 1, 0), "site must be one of"),
        (lambda: StuckAt("psum", 32, 0), r"bit must be an int in \[0, 31\]; got 32"),
        (lambda: StuckAt("psum", -1, 0), "got -1"),
        (lambda: StuckAt("psum", 3, 2), "value must be 0 or 1; got 2"),
        (lambda: FaultMap.empty(CFG).with_fault(0, 0, StuckAt("act", 8, 1)), r"8-bit act register; allowed: \[0, 7\]"),
        (lambda: FaultMap.empty(CFG).with_fault(8, 0, StuckAt("act", 1, 1)), r"row must be an int in \[0, 7\]; got 8"),
        (lambda: FaultMap.empty(CFG).with_fault(0, 0, "psum"), "must be a StuckAt"),
        (lambda: FaultMap.random(CFG, 1.5), r"rate must be a number in \[0, 1\]; got 1.5"),
        (lambda: FaultMap.random(CFG, 0.1, seed=-3), "seed must be a non-negative int"),
        (lambda: FaultMap.random(CFG, 0.1, sites=("psum", "alu")), "got 'alu'"),
        (lambda: FaultMap.random(CFG, 0.1, sites=("act",), bits=[9, 12]), "none of bits"),
        (lambda: FaultMap.random(CFG, 0.1, faults_per_pe=0), "faults_per_pe must be an int >= 1; got 0"),
        (lambda: FaultMap(CFG, np.zeros((4, 2, 8, 6), np.int64)), "dtype int32"),
        (lambda: FaultMap(CFG, np.zeros((4, 2, 6, 8), np.int32)), r"\(4, 2, 6, 8\)"),
    ],
)
def test_bad_input_is_named(make, match):
    with pytest.raises(FaultError, match=match):
        make()


def test_masks_are_read_only():
    fm = FaultMap.random(CFG, 0.1, seed=0)
    with pytest.raises(ValueError):
        fm.masks[0, 0, 0, 0] = 0
