"""Fault files never load as something else: damaged, foreign, inconsistent or mistyped
files raise FaultFileError naming the path, and writes are atomic with one mode."""

from __future__ import annotations

import os
import pickle
import stat
import zipfile

import numpy as np
import pytest

from faults import FaultError, FaultFileError, FaultMap, Population, StuckAt
from simulator import ArrayConfig, FaultMaskError, IntPrecision, SystolicArray

CFG = ArrayConfig(6, 5)


def _arrays(path) -> dict:
    with np.load(path) as f:
        return dict(f)


@pytest.fixture
def saved(tmp_path):
    fm = FaultMap.random(CFG, 0.3, seed=2)
    pop = Population.generate(CFG, 4, rates="uniform:0.1,0.4", seed=1)
    fm.save(tmp_path / "fm.npz")
    pop.save(tmp_path / "pop.npz")
    return fm, pop, tmp_path


@pytest.mark.parametrize("dtype, value", [(np.float64, -0.5), (np.float32, 3.0), (np.int64, -1)])
def test_masks_of_another_type_are_refused(saved, dtype, value):
    """A float -0.5 would truncate to an AND mask of 0 (every bit stuck); int64 is refused too."""
    _, _, tmp = saved
    data = _arrays(tmp / "fm.npz")
    data["pe_masks"] = np.full(data["pe_masks"].shape, value, dtype)
    np.savez(tmp / "typed.npz", **data)
    with pytest.raises(FaultFileError, match=r"typed\.npz: .*masks must be int32.*" + np.dtype(dtype).name):
        FaultMap.load(tmp / "typed.npz")
    with pytest.raises(FaultError, match="int32"):
        FaultMap.from_sparse(CFG, data["pe_rc"], data["pe_masks"])


def test_population_masks_of_another_type_are_refused(saved):
    _, _, tmp = saved
    data = _arrays(tmp / "pop.npz")
    data["pe_masks"] = data["pe_masks"].astype(np.float64)
    np.savez(tmp / "typed.npz", **data)
    with pytest.raises(FaultFileError, match=r"typed\.npz: .*int32"):
        Population.load(tmp / "typed.npz")


def _flipped(raw: bytes, i: int) -> bytes:
    return raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:]


@pytest.mark.parametrize("kind", ["fm", "pop"])
def test_every_single_byte_flip_loads_the_same_or_raises_the_file_error(saved, kind):
    """Flip each byte of a saved file in turn: the result is either the original object
    (a byte no reader looks at) or FaultFileError, never another exception or another object."""
    fm, pop, tmp = saved
    original, load = (fm, FaultMap.load) if kind == "fm" else (pop, Population.load)
    raw = (tmp / f"{kind}.npz").read_bytes()
    bad = tmp / "flipped.npz"
    outcomes = {"same": 0, "refused": 0}
    for i in range(len(raw)):
        bad.write_bytes(_flipped(raw, i))
        try:
            loaded = load(bad)
        except FaultFileError as e:
            assert str(e).startswith(str(bad)), str(e)
            outcomes["refused"] += 1
        else:
            assert loaded == original, f"byte {i}: a damaged file loaded as another {type(original).__name__}"
            outcomes["same"] += 1
    assert outcomes["refused"] > len(raw) // 2, outcomes  # most bytes matter


def test_truncated_files_raise_the_file_error(saved):
    _, _, tmp = saved
    raw = (tmp / "pop.npz").read_bytes()
    for n in (0, 1, 4, 30, len(raw) // 2, len(raw) - 1):
        (tmp / "cut.npz").write_bytes(raw[:n])
        with pytest.raises(FaultFileError, match="cut.npz"):
            Population.load(tmp / "cut.npz")


def test_encrypted_flag_is_the_file_error(saved):
    """The zip "encrypted" flag bit made numpy's reader raise RuntimeError before."""
    _, _, tmp = saved
    raw = bytearray((tmp / "fm.npz").read_bytes())
    with zipfile.ZipFile(tmp / "fm.npz") as z:
        offsets = [info.header_offset for info in z.infolist()]
    for off in offsets:  # general-purpose flag of each local file header, bit 0 = encrypted
        raw[off + 6] |= 1
    central = raw.find(b"PK\x01\x02")
    while central >= 0:  # and of each central-directory entry
        raw[central + 8] |= 1
        central = raw.find(b"PK\x01\x02", central + 4)
    (tmp / "enc.npz").write_bytes(bytes(raw))
    with pytest.raises(FaultFileError, match="enc.npz"):
        FaultMap.load(tmp / "enc.npz")


@pytest.mark.parametrize("content", [
    b"a plain text file\n",
    pickle.dumps({"kind": "efat.FaultMap"}),
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }" + b" " * 60 + b"\n" + bytes(24),
])
def test_a_file_that_is_no_npz_gets_a_plain_message(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(FaultFileError) as err:
        FaultMap.load(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "not a readable .npz file" in message
    assert "pickle" not in message.lower()  # no advice about numpy's loader options


def test_population_params_must_agree_with_its_chips(saved):
    _, pop, tmp = saved
    data = _arrays(tmp / "pop.npz")
    data["params"] = np.array('{"n": 7, "seed": 1}')
    np.savez(tmp / "n.npz", **data)
    with pytest.raises(FaultFileError, match=r"n\.npz: params say n = 7 chips, but there are 4"):
        Population.load(tmp / "n.npz")
    with pytest.raises(FaultError, match="params say n = 3"):
        Population(CFG, [c.fault_map for c in pop][:2], params={"n": 3})


def test_slices_keep_params_true(saved):
    _, pop, tmp = saved
    head, tail = pop[:2], pop[1:3]
    assert head.params["n"] == 2 and head == Population.generate(CFG, 2, rates="uniform:0.1,0.4", seed=1)
    assert "n" not in tail.params and tail.params["selected_from"] == pop.params
    for i, part in enumerate((head, tail)):
        part.save(tmp / f"part{i}.npz")
        assert Population.load(tmp / f"part{i}.npz") == part


def test_a_map_for_another_precision_is_refused_by_the_array():
    """A 12-bit accumulator map with one stuck psum bit would act on an int32 array as if
    bits 11-31 were stuck."""
    acc12 = ArrayConfig(4, 4, IntPrecision(4, 4, 8, 12))
    fm = FaultMap.empty(acc12).with_fault(1, 1, StuckAt("psum", 11, 1))
    with pytest.raises(FaultMaskError, match=r"int4x4->int12.*int8x8->int32"):
        SystolicArray(ArrayConfig(4, 4), fm)
    SystolicArray(acc12, fm)  # its own array takes it


def test_files_are_written_atomically_into_new_folders(tmp_path):
    fm = FaultMap.random(CFG, 0.2, seed=0)
    target = tmp_path / "new" / "deeper" / "p.npz"
    fm.save(target)
    assert FaultMap.load(target) == fm
    assert os.listdir(target.parent) == ["p.npz"]  # no temporary file left behind


def test_an_unwritable_target_names_the_path_not_a_temporary_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError) as err:
        FaultMap.random(CFG, 0.2, seed=0).save(tmp_path / "file" / "p.npz")
    assert ".tmp" not in str(err.value) and "p.npz.tmp.npz" not in str(err.value)


def test_npz_and_json_files_get_the_same_mode(tmp_path):
    from efat import ResilienceMap

    old = os.umask(0o022)
    try:
        FaultMap.random(CFG, 0.2, seed=0).save(tmp_path / "fm.npz")
        ResilienceMap([0.1], [0, 1], np.full((1, 2, 1), 0.9), 0.9, {"array": [6, 5]}).save(tmp_path / "m.json")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"fm.npz": 0o644, "m.json": 0o644}


def test_a_listed_pe_without_a_stuck_bit_is_refused(saved):
    _, _, tmp = saved
    data = _arrays(tmp / "fm.npz")
    data["pe_masks"][0] = np.array([[-1, 0]] * 4, np.int32)  # the identity: not faulty at all
    np.savez(tmp / "idle.npz", **data)
    with pytest.raises(FaultFileError, match=r"idle\.npz: a PE listed as faulty has no stuck bit"):
        FaultMap.load(tmp / "idle.npz")


@pytest.mark.parametrize("fmt", ["fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2"])
def test_float_maps_and_populations_keep_their_precision(tmp_path, fmt):
    from simulator import precision_by_name

    cfg = ArrayConfig(6, 5, precision_by_name(fmt))
    fm = FaultMap.random(cfg, 0.4, seed=3)
    fm.save(tmp_path / "fm.npz")
    back = FaultMap.load(tmp_path / "fm.npz")
    assert back == fm and back.cfg.precision.name == fmt
    pop = Population.generate(cfg, 3, rates="uniform:0.1,0.3", seed=0)
    pop.save(tmp_path / "pop.npz")
    assert Population.load(tmp_path / "pop.npz").cfg == cfg
    SystolicArray(cfg, back)  # and it runs on an array of that precision


def test_version_1_files_load_as_integer_precisions(saved):
    _, _, tmp = saved
    data = _arrays(tmp / "fm.npz")
    del data["precision"]
    data["version"] = np.array(1)
    np.savez(tmp / "v1.npz", **data)
    assert FaultMap.load(tmp / "v1.npz").cfg == CFG


@pytest.mark.parametrize("field, value, match", [
    ("precision", np.array("not json"), "bad precision field"),
    ("precision", np.array('{"kind": "float", "format": "fp64"}'), "fmt must be one of"),
    ("precision", np.array('{"kind": "float", "format": "fp16"}'), r"widths \[8, 8, 16, 32\] disagree with precision fp16"),
    ("version", np.array(3), "format version 3; this release reads versions 1 and 2"),
])
def test_precision_headers_that_do_not_fit_are_refused(saved, field, value, match):
    _, _, tmp = saved
    data = _arrays(tmp / "fm.npz")
    data[field] = value
    np.savez(tmp / "bad.npz", **data)
    with pytest.raises(FaultFileError, match=match):
        FaultMap.load(tmp / "bad.npz")


def test_a_version_2_file_without_precision_is_refused(saved):
    _, _, tmp = saved
    data = _arrays(tmp / "fm.npz")
    del data["precision"]
    np.savez(tmp / "bad.npz", **data)
    with pytest.raises(FaultFileError, match="missing precision field"):
        FaultMap.load(tmp / "bad.npz")
