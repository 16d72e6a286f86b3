"""ApproxABFT: one block is global ABFT, threshold 0 is classic ABFT with recomputation, threshold
inf leaves the faulty result as it is, recovery is per block and costs its cycles, calibration is
deterministic, bad arguments are refused by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from protect import Abft, ApproxAbft, block_shapes, blocked_abft, calibrate_thresholds, scheme_cost
from protect.abft import global_abft
from protect.digits import n_digits
from simulator import FP16, INT8, ArrayConfig, SystolicArray


def _operands(prec, m, k, n, seed):
    rng = np.random.default_rng(seed)
    if prec == INT8:
        return rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8)
    return rng.standard_normal((m, k)).astype(np.float16), rng.standard_normal((k, n)).astype(np.float16)


def _bits(a):
    return a.view(np.int32) if a.dtype == np.float32 else a


def _corrupting(arr, hits, times=1):
    """A ``matmul`` whose first ``times`` calls add ``e`` to output ``(m, n)`` for each ``(m, n, e)``."""
    calls = []

    def matmul(xx, ww):
        out = arr.matmul(xx, ww).out.copy()
        calls.append(xx.shape)
        if len(calls) <= times:
            for m, n, e in hits:
                out[m, n] += out.dtype.type(e)
        return out

    matmul.calls = calls
    return matmul


@pytest.fixture(scope="module")
def lenet():
    from mapping import quantize
    from training import load_dataset, pretrained

    data = load_dataset("digits", seed=0)
    model = pretrained("lenet5", data, seed=0)
    return quantize(model, data.x_train[:256]), data


@pytest.mark.parametrize("prec", [INT8, FP16])
def test_one_block_is_global_abft_and_a_whole_gemm_block_is_no_blocking(prec):
    cfg = ArrayConfig(8, 8, prec)
    arr = SystolicArray(cfg)
    rng = np.random.default_rng(1)
    for t in range(40):
        m, k, n = (int(v) for v in rng.integers(1, 24, 3))
        x, w = _operands(prec, m, k, n, t)
        hits = [(int(rng.integers(m)), int(rng.integers(n)), int(rng.integers(1, 2 ** 20)))
                for _ in range(int(rng.integers(0, 3)))]
        g = global_abft(x, w, _corrupting(arr, hits, 10 ** 9), prec)
        b = blocked_abft(x, w, _corrupting(arr, hits, 10 ** 9), prec, None, correct_above=0.0)
        np.testing.assert_array_equal(_bits(b.out), _bits(g.out))
        assert (g.detected, g.mismatches, g.corrected) == (bool(b.failing.sum()), int(b.failing.sum()),
                                                           int(b.corrected.sum()))
        whole = blocked_abft(x, w, _corrupting(arr, hits, 10 ** 9), prec, None)
        for block in ((m, n), (m + 5, n + 3)):
            same = blocked_abft(x, w, _corrupting(arr, hits, 10 ** 9), prec, block)
            np.testing.assert_array_equal(same.magnitude, whole.magnitude)
            np.testing.assert_array_equal(_bits(same.out), _bits(whole.out))


def test_the_mismatch_magnitude_is_the_largest_failing_row_or_column_difference():
    cfg = ArrayConfig(8, 8)
    arr = SystolicArray(cfg)
    x, w = _operands(INT8, 12, 10, 9, 0)
    # block (0, 0): one error of 1000; block (1, 2): two in one row, 300 and -100 (row 200, columns 300, 100)
    hits = [(1, 2, 1000), (7, 7, 300), (7, 8, -100)]
    res = blocked_abft(x, w, _corrupting(arr, hits), INT8, (6, 3))
    want = np.zeros((2, 3))
    want[0, 0], want[1, 2] = 1000, 300
    np.testing.assert_array_equal(res.magnitude, want)
    assert res.failing[0, 0] == 2 and res.failing[1, 2] == 3  # one row + one column; one row + two columns
    # a bit-31 error wraps: its magnitude is 2**31, as the 32-bit accumulator sees it
    big = blocked_abft(x, w, _corrupting(arr, [(0, 0, -(2 ** 31))]), INT8, None)
    assert big.magnitude[0, 0] == 2 ** 31
    # floats: a NaN output is an infinite mismatch
    cfg16 = ArrayConfig(8, 8, FP16)
    xf, wf = _operands(FP16, 5, 6, 4, 0)
    nan = blocked_abft(xf, wf, _corrupting(SystolicArray(cfg16), [(2, 1, np.nan)]), FP16, (5, 2))
    assert nan.magnitude[0, 0] == math.inf and nan.magnitude[0, 1] == 0


@pytest.mark.parametrize("block", [None, (4, 3)])
def test_threshold_zero_recomputes_every_mismatched_block_and_counts_its_cycles(block):
    cfg = ArrayConfig(4, 4)
    arr = SystolicArray(cfg)
    x, w = _operands(INT8, 10, 7, 8, 2)
    want = arr.matmul(x, w).out
    hits = [(0, 0, 1 << 20), (5, 7, 3), (9, 6, -1)]
    matmul = _corrupting(arr, hits)
    session = ApproxAbft(0.0, block=block).session()
    np.testing.assert_array_equal(session.run_gemm("fc", arr, x, w, matmul), want)
    st = session.stats.layers["fc"]
    if block is None:  # recompute-on-any-mismatch reference: global ABFT's check, then one repeat
        ref_calls = _corrupting(arr, hits)
        ref = global_abft(x, w, ref_calls, INT8)
        assert ref.detected
        ref = global_abft(x, w, ref_calls, INT8)
        np.testing.assert_array_equal(ref.out, want)
        assert (st.blocks, st.mismatched, st.recovered, st.recomputed, st.unresolved) == (1, 1, 1, 1, 0)
        assert st.recovery_cycles == scheme_cost("global", cfg, 10, 7, 8)
    else:  # blocks of 4 rows x 3 columns: (0, 0), (1, 2) and (2, 2) hold errors; column block 2 runs once
        assert (st.blocks, st.mismatched, st.recovered, st.recomputed, st.unresolved) == (9, 3, 3, 2, 0)
        d = lambda c: n_digits(128 * c)  # noqa: E731  (worst-case checksum digits of a sum of c operands)
        assert st.recovery_cycles == (scheme_cost("none", cfg, 4 + d(4), 7, 3 + d(3))
                                      + scheme_cost("none", cfg, 4 + d(4) + 2 + d(2), 7, 2 + d(2)))
        assert [s[0] for s in matmul.calls] == [10 + 3 * d(4), 4 + d(4), 6 + d(4) + d(2)]
    base, ck = st.base_cycles, st.checksum_cycles
    assert base == scheme_cost("none", cfg, 10, 7, 8) and ck > 0
    assert st.overhead == (ck + st.recovery_cycles) / base


def test_a_threshold_recovers_only_the_blocks_above_it():
    cfg = ArrayConfig(4, 4)
    arr = SystolicArray(cfg)
    x, w = _operands(INT8, 8, 6, 6, 3)
    want = arr.matmul(x, w).out
    hits = [(0, 0, 1 << 10), (7, 5, 1 << 20)]
    session = ApproxAbft({"fc": 1 << 15}, block=(4, 3), layers=["fc"]).session()
    out = session.run_gemm("fc", arr, x, w, _corrupting(arr, hits))
    assert out[0, 0] == want[0, 0] + (1 << 10)  # tolerated: left as it is
    out[0, 0] = want[0, 0]
    np.testing.assert_array_equal(out, want)  # the large one recovered
    st = session.stats.layers["fc"]
    assert (st.mismatched, st.tolerated, st.recovered, st.recomputed) == (2, 1, 1, 1)


def test_threshold_zero_with_correction_is_abft_global_with_one_recompute(lenet):
    """The same GEMMs on the array in the same order, so the same transient flips: bit-equal logits,
    the same decisions and the same cycles."""
    from faults import TransientFaults
    from mapping import run_model

    qm, data = lenet
    arr = SystolicArray(ArrayConfig(16, 16))
    sample = (data.x_test[:192], data.y_test[:192])
    src = TransientFaults(ber=1e-7, seed=5)
    a = run_model(qm, sample, arr, flips=src, protect=Abft("global", recompute=1), return_logits=True, batch_size=32)
    b = run_model(qm, sample, arr, flips=src, protect=ApproxAbft(0.0, correct=True), return_logits=True,
                  batch_size=32)
    np.testing.assert_array_equal(a.logits, b.logits)
    assert a.layer_cycles == b.layer_cycles
    for name, s in a.protection.layers.items():
        t = b.protection.layers[name]
        assert (s.gemms, s.detected, s.corrected, s.recomputed, s.unresolved) == \
               (t.gemms, t.mismatched, t.corrected, t.recomputed, t.unresolved), name
        assert (s.base_cycles, s.cycles) == (t.base_cycles, t.cycles), name
    tot = b.protection.total()
    assert tot.corrected > 0 and tot.recomputed > 0  # both paths were taken


def test_recomputations_draw_their_own_flips(lenet):
    from faults import TransientFaults
    from mapping import run_model

    qm, data = lenet
    draws = {}

    def source(name, cfg, m, k, n, batch=1):
        draws[name] = draws.get(name, 0) + 1
        return inner(name, cfg, m, k, n, batch)

    inner = TransientFaults(ber=3e-7, seed=2).session()
    res = run_model(qm, (data.x_test[:128], data.y_test[:128]), SystolicArray(ArrayConfig(16, 16)), flips=source,
                    protect=ApproxAbft(0.0, block=(16, 8)), batch_size=32)
    layers = res.protection.layers
    assert sum(s.recomputed for s in layers.values()) > 0
    assert draws == {n: s.gemms + s.recomputed for n, s in layers.items()}


@pytest.mark.parametrize("block", [None, (20, 5)])
def test_threshold_inf_is_the_unprotected_faulty_run_and_a_stuck_fault_recurs(lenet, block):
    from faults import FaultMap
    from mapping import run_model

    qm, data = lenet
    cfg = ArrayConfig(16, 16)
    chip = SystolicArray(cfg, FaultMap.random(cfg, 0.05, seed=4))
    sample = (data.x_test[:96], data.y_test[:96])
    plain = run_model(qm, sample, chip, return_logits=True, batch_size=32)
    blind = run_model(qm, sample, chip, return_logits=True, batch_size=32, protect=ApproxAbft(math.inf, block=block))
    np.testing.assert_array_equal(blind.logits, plain.logits)
    t = blind.protection.total()
    assert t.mismatched > 0 and t.tolerated == t.mismatched
    assert t.recovered == t.recomputed == t.recovery_cycles == 0
    if block is None:  # recomputing the same GEMM on the same chip meets the same faults
        again = run_model(qm, sample, chip, batch_size=32, protect=ApproxAbft(0.0)).protection.total()
        assert again.recovered == again.unresolved == t.mismatched and again.recovery_cycles > 0


def test_block_shapes_on_hand_examples():
    # k = 9: 7282 outputs per block, only 6 columns: 1214 x 6; k = 64: 1024 outputs, 32 x 32;
    # k = 1000: 66 outputs, 8 columns (round(sqrt(66))) x 8 rows (round(66 / 8))
    got = block_shapes({"conv": (64, 9, 6), "fc": (64, 120), "big": (1, 1000, 10)}, 64 * 1024)
    assert got == {"conv": (1214, 6), "fc": (32, 32), "big": (8, 8)}
    got = block_shapes({"a": (100, 50)}, 100 * 400)
    assert got == {"a": (20, 20)}
    with pytest.raises(ValueError, match=r"target_macs must be a number > 0.*got 0"):
        block_shapes({"a": (1, 1)}, 0)


def test_calibration_is_deterministic_and_respects_the_budget(lenet):
    from protect import gemm_shapes

    qm, data = lenet
    cfg = ArrayConfig(16, 16)
    calib = (data.x_train[:128], data.y_train[:128])
    blocks = block_shapes(gemm_shapes(qm, data.x_train[:1], cfg), 16 * 1024)
    kw = dict(ber=3e-7, max_drop=0.0, block=blocks, runs=1, seed=3, batch_size=64)
    first = calibrate_thresholds(qm, calib, cfg, **kw)
    again = calibrate_thresholds(qm, calib, cfg, **kw)
    assert first.thresholds == again.thresholds and first.details == again.details
    assert set(first.thresholds) == set(first.layers) == set(blocks)
    assert sum(d.mismatched for d in first.details.values()) > 0
    for name, d in first.details.items():
        assert d.threshold == 0 or first.reference - d.accuracy <= 0  # the budget holds where recovery is skipped
    # a budget of 100 points tolerates everything seen: each threshold is the largest magnitude recorded
    loose = calibrate_thresholds(qm, calib, cfg, **dict(kw, max_drop=1.0))
    for name, d in loose.details.items():
        if d.mismatched:
            assert d.evaluations == 1 and d.threshold >= first.details[name].threshold and d.threshold > 0
    prot = first.protect()
    assert isinstance(prot, ApproxAbft) and prot.thresholds == first.thresholds
    assert all(prot.block_for(n) == b for n, b in blocks.items())


def test_bad_arguments_are_refused_by_name(lenet):
    from mapping import MappingError

    for bad in (-1, -0.5, float("nan"), True, "1"):
        with pytest.raises(ValueError, match=r"must be a number >= 0 \(0: recover on any mismatch, inf: never"):
            ApproxAbft({"fc": bad})
        with pytest.raises(ValueError, match="default_threshold must be a number >= 0"):
            ApproxAbft(default_threshold=bad)
    with pytest.raises(ValueError, match=r"threshold of layer 'fc' must be a number >= 0.*got -1"):
        ApproxAbft({"fc": -1})
    for bad in ((0, 3), (2,), (1.5, 2), "4x4", (2, -1), (True, 2)):
        with pytest.raises(ValueError, match=r"block must be None \(the whole GEMM\) or \(rows, cols\), two positive"):
            ApproxAbft(block=bad)
    with pytest.raises(ValueError, match=r"block of layer 'x' must be None"):
        ApproxAbft(block={"x": (0, 1)})
    with pytest.raises(MappingError, match=r"thresholds names layer 'fc9', which the model does not have; its "
                                           r"layers: 'fc1', 'fc2'"):
        ApproxAbft({"fc1": 1.0, "fc9": 2.0}, layers=["fc1", "fc2"])
    with pytest.raises(MappingError, match=r"block names layer 'c'"):
        ApproxAbft(block={"c": (2, 2)}, layers=["a"])
    with pytest.raises(ValueError, match=r"scheme must be one of \['global'\].*got 'fold'"):
        ApproxAbft(scheme="fold")
    with pytest.raises(ValueError, match="recompute must be an int >= 0; got -1"):
        ApproxAbft(recompute=-1)
    qm, data = lenet
    cfg, calib = ArrayConfig(8, 8), data.x_train[:8]
    with pytest.raises(ValueError, match="give one of ber and flips"):
        calibrate_thresholds(qm, calib, cfg)
    with pytest.raises(ValueError, match=r"max_drop must be an accuracy fraction in \[0, 1\].*got 5"):
        calibrate_thresholds(qm, calib, cfg, ber=1e-7, max_drop=5)
    with pytest.raises(MappingError, match=r"layers names 'fc9', which runs no GEMM in this model; its layers: '"):
        calibrate_thresholds(qm, calib, cfg, ber=1e-7, layers=["fc9"])
