"""ABFT schemes as array programs: exact when fault-free, single psum flips detected, located
and corrected, flips that reach nothing never reported."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protect.abft import fold_abft, global_abft, replicate
from protect.digits import from_digits, n_digits, to_digits
from simulator import BF16, FP16, FP32, INT8, ArrayConfig, SystolicArray

PRECS = [INT8, FP32, FP16, BF16]


def _operands(prec, m, k, n, seed):
    rng = np.random.default_rng(seed)
    if prec == INT8:
        return rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8)
    dt = prec.operand_dtypes[0]
    return rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt)


def _bits(a):
    return a.view(np.int32) if a.dtype == np.float32 else a


@given(v=st.lists(st.integers(-2 ** 40, 2 ** 40), min_size=1, max_size=20))
def test_digits_round_trip(v):
    v = np.array(v, np.int64)
    d = n_digits(int(np.abs(v).max()))
    digits = to_digits(v, d)
    assert digits.dtype == np.int8
    assert np.array_equal(from_digits(digits, 63), v)


@settings(max_examples=60)
@given(data=st.data())
def test_fault_free_schemes_return_the_unprotected_result(data):
    prec = data.draw(st.sampled_from(PRECS))
    cfg = ArrayConfig(data.draw(st.integers(2, 6)), data.draw(st.integers(3, 6)), prec)
    m, k, n = (data.draw(st.integers(1, 12)) for _ in range(3))
    x, w = _operands(prec, m, k, n, data.draw(st.integers(0, 10 ** 6)))
    arr = SystolicArray(cfg)
    want = arr.matmul(x, w).out

    def run(xx, ww):
        return arr.matmul(xx, ww).out

    for res in (global_abft(x, w, run, prec), fold_abft(x, w, run, prec, cfg.cols), replicate(x, w, run, prec)):
        assert not res.detected and res.corrected == 0
        np.testing.assert_array_equal(_bits(res.out), _bits(want))


def _flip_run(arr, cfg, target_m, target_n_of_shape, bit, seed):
    """A run that flips one psum bit in the MAC of (target m, a column given by the GEMM's shape)."""

    def run(xx, ww):
        M, K = xx.shape
        N = ww.shape[1]
        n = target_n_of_shape(N)
        nkf = -(-K // cfg.rows)
        rng = np.random.default_rng(seed)
        kf, r = int(rng.integers(0, nkf)), int(rng.integers(0, cfg.rows))
        f = (n // cfg.cols) * nkf + kf
        cycle = f * cfg.fold_cycles(M) + cfg.rows + r + n % cfg.cols + target_m
        return arr.matmul(xx, ww, flips=[(cycle, r, n % cfg.cols, "psum", bit)]).out

    return run


@settings(max_examples=80)
@given(data=st.data())
def test_a_psum_flip_in_the_output_is_detected_located_and_corrected(data):
    prec = data.draw(st.sampled_from(PRECS))
    cfg = ArrayConfig(data.draw(st.integers(2, 6)), data.draw(st.integers(3, 6)), prec)
    m, k, n = data.draw(st.integers(1, 10)), data.draw(st.integers(1, 12)), data.draw(st.integers(1, 10))
    x, w = _operands(prec, m, k, n, data.draw(st.integers(0, 10 ** 6)))
    tm, tn = data.draw(st.integers(0, m - 1)), data.draw(st.integers(0, n - 1))
    bit = data.draw(st.integers(20, 31)) if prec == INT8 else data.draw(st.sampled_from([27, 28, 29, 30]))
    arr = SystolicArray(cfg)
    want = arr.matmul(x, w).out
    seed = data.draw(st.integers(0, 10 ** 6))
    res = global_abft(x, w, _flip_run(arr, cfg, tm, lambda N: tn, bit, seed), prec)
    got_unprotected = _flip_run(arr, cfg, tm, lambda N: tn, bit, seed)(x, w)
    if np.array_equal(_bits(got_unprotected), _bits(want)):
        return  # the flipped bit was already what the flip made it (a no-op flip): nothing to see
    if prec == INT8:  # exact: always detected, located and corrected
        assert res.detected and res.corrected == 1
        np.testing.assert_array_equal(res.out, want)
    else:
        # a float error is certain to be seen by both checks only beyond twice their rounding
        # tolerance; then it is located, and corrected to within the row's tolerance
        from protect.abft import float_tolerance

        err = abs(float(got_unprotected[tm, tn]) - float(want[tm, tn]))
        tol_r = float_tolerance(x, w, prec)[tm]
        tol_c = float_tolerance(w.T, x.T, prec)[tn]
        if not err > 2 * max(tol_r, tol_c):
            return
        assert res.detected and res.corrected == 1
        assert abs(float(res.out[tm, tn]) - float(want[tm, tn])) <= 2 * tol_r
        mask = np.ones(want.shape, bool)
        mask[tm, tn] = False
        np.testing.assert_array_equal(_bits(res.out)[mask], _bits(want)[mask])
    # fold-level ABFT detects it too (the data column's position in its fold is computed by the scheme)
    per_fold = fold_abft(x, w, _flip_run(arr, cfg, tm, lambda N: _fold_col(tn, cfg.cols, N, n), bit, seed), prec,
                         cfg.cols)
    assert per_fold.detected


def _fold_col(tn, cols, n_aug, n):
    """Where data column ``tn`` lands in fold-level ABFT's layout of an ``n_aug``-column GEMM."""
    folds = -(-n_aug // cols)
    per = -(-n // folds) if folds else n
    per = next(p for p in range(cols - 1, 0, -1) if -(-n // p) * cols == n_aug)
    return (tn // per) * cols + tn % per


def test_a_flip_in_a_discarded_column_is_never_reported():
    cfg = ArrayConfig(4, 4)
    x, w = _operands(INT8, 5, 6, 3, 0)  # global ABFT adds 2 digit columns: 5 of 8 array columns used
    arr = SystolicArray(cfg)

    def run(xx, ww):
        M, K = xx.shape
        nkf = -(-K // 4)
        cycle = 0 * cfg.fold_cycles(M) + 4 + 1 + 3 + 2  # PE (1, 3) of fold 0 (column 3 of 4: real)
        flips = [(cycle, 1, 3, "psum", 30)] if ww.shape[1] <= 3 else []
        cyc2 = (1 * nkf) * cfg.fold_cycles(M) + 4 + 1 + 3 + 2  # fold nf=1, column 3 -> n = 7: discarded
        return arr.matmul(xx, ww, flips=flips + [(cyc2, 1, 3, "psum", 30)] if ww.shape[1] <= 7 else flips).out

    res = global_abft(x, w, run, INT8)
    assert not res.detected and np.array_equal(res.out, arr.matmul(x, w).out)


def test_replication_catches_a_stuck_bit_that_both_runs_do_not_share():
    from faults import FaultMap, StuckAt

    cfg = ArrayConfig(4, 4)
    fm = FaultMap.empty(cfg).with_fault(2, 1, StuckAt("psum", 29, 1))
    arr = SystolicArray(cfg, fm)
    x, w = _operands(INT8, 6, 8, 3, 1)
    res = replicate(x, w, lambda xx, ww: arr.matmul(xx, ww).out, INT8)
    assert res.detected and res.mismatches > 0


def test_protected_model_runs_equal_the_unprotected_on_a_fault_free_chip():
    from mapping import quantize, run_model
    from protect import Abft
    from simulator import MemoryConfig
    from training import load_dataset, pretrained

    data = load_dataset("digits", seed=0)
    model = pretrained("mlp", data, seed=0)
    for prec in (INT8, FP16):
        cfg = ArrayConfig(8, 8, prec, memory=MemoryConfig(4))
        qm = quantize(model, data.x_train[:128], prec)
        arr = SystolicArray(cfg)
        sample = (data.x_test[:40], data.y_test[:40])
        plain = run_model(qm, sample, arr, return_logits=True)
        for scheme in ("global", "fold", "replication", "intensity"):
            res = run_model(qm, sample, arr, return_logits=True, protect=Abft(scheme))
            np.testing.assert_array_equal(_bits(res.logits), _bits(plain.logits))
            stats = res.protection
            assert all(s.detected == 0 and s.gemms > 0 for s in stats.layers.values())
            assert stats.total_overhead() > 0 and sum(res.layer_cycles.values()) > sum(plain.layer_cycles.values())


def test_the_intensity_choice_is_never_worse_than_any_scheme():
    from protect import PROTECTING, choose_scheme, scheme_cost
    from simulator import MemoryConfig

    rng = np.random.default_rng(0)
    for _ in range(300):
        cfg = ArrayConfig(int(rng.integers(4, 65)), int(rng.integers(4, 65)),
                          memory=MemoryConfig(float(rng.choice([1, 4, 16, 64])), 16, 16, 16))
        m, k, n = (int(v) for v in rng.integers(1, 3000, 3))
        best = choose_scheme(cfg, m, k, n)
        assert all(scheme_cost(best, cfg, m, k, n) <= scheme_cost(s, cfg, m, k, n) for s in PROTECTING)


def test_abft_catches_and_corrects_transient_psum_flips_in_a_model_run():
    """High psum bits flipped about 0.02 times per image and GEMM (LeNet-5, digits, batches of
    32): measured 9 GEMMs of 85 with a failed check, 7 of them a single error corrected."""
    from faults import TransientFaults
    from mapping import quantize, run_model
    from protect import Abft
    from training import load_dataset, pretrained

    data = load_dataset("digits", seed=0)
    model = pretrained("lenet5", data, seed=0)
    cfg = ArrayConfig(16, 16)
    qm = quantize(model, data.x_train[:256])
    arr = SystolicArray(cfg)
    src = TransientFaults(per_image=0.02, seed=3, sites=("psum",), bits=(28, 29, 30))
    for scheme in ("global", "fold"):
        guarded = run_model(qm, data, arr, flips=src, protect=Abft(scheme), batch_size=32)
        layers = guarded.protection.layers.values()
        assert sum(s.detected for s in layers) >= 3, scheme
        if scheme == "global":
            assert sum(s.corrected for s in layers) >= 3


def test_scheme_timing_on_hand_examples():
    """8x8 int8 array, 1 byte per cycle, buffers that hold everything; GEMM (4 x 64) @ (64 x 64)."""
    import math

    from protect import scheme_timing
    from simulator import MemoryConfig

    cfg = ArrayConfig(8, 8, memory=MemoryConfig(1, 64, 64, 64))
    m, k, n = 4, 64, 64
    fold = 2 * 8 + 8 + m - 2  # cycles of one fold
    none = scheme_timing("none", cfg, m, k, n)
    data_bytes = m * k + k * n + 4 * m * n  # X, W once; 32-bit Y once
    assert (none.compute_cycles, none.bytes_moved) == (64 * fold, data_bytes)
    assert none.total_cycles == 64 + max(64 * fold, data_bytes)  # fill: the first 8x8 weight tile
    # replication: a second pass of 9 column folds on the operands already on chip; the layer is
    # memory-bound by more than both passes' compute, so the replica costs nothing
    rep = scheme_timing("replication", cfg, m, k, n)
    assert rep.compute_cycles == 64 * fold + 72 * fold and rep.bytes_moved == data_bytes
    assert rep.total_cycles == none.total_cycles
    # fold-level: d = 2 digit columns per fold of 8 (row sums of 8 weights reach 1024), so
    # ceil(64 / 6) = 11 column folds; DRAM moves the 64 data and 22 checksum columns only
    fl = scheme_timing("fold", cfg, m, k, n)
    assert fl.compute_cycles == 11 * 8 * fold
    assert fl.bytes_moved == m * k + k * (64 + 22) + 4 * m * (64 + 22)
    # global ABFT with the checksums summed by the host: two more passes over DRAM, serial
    ga, gh = scheme_timing("global", cfg, m, k, n), scheme_timing("global", cfg, m, k, n, checksums="host")
    assert gh.total_cycles - ga.total_cycles == math.ceil(m * k + 4 * m * n)


def test_scheme_timing_is_never_below_compute_and_host_checksums_cost_only_global():
    from protect import PROTECTING, scheme_timing
    from simulator import MemoryConfig, gemm_timing

    rng = np.random.default_rng(1)
    for _ in range(200):
        r, c = (int(v) for v in rng.integers(4, 65, 2))
        cfg = ArrayConfig(r, c, memory=MemoryConfig(float(rng.choice([0.5, 4, 64])), *rng.choice([0, 8, 512], 3)))
        m, k, n = (int(v) for v in rng.integers(1, 2000, 3))
        base = scheme_timing("none", cfg, m, k, n)
        assert base.total_cycles >= gemm_timing(cfg, m, k, n).n_cycles
        for s in PROTECTING:
            t, h = scheme_timing(s, cfg, m, k, n), scheme_timing(s, cfg, m, k, n, "host")
            assert t.total_cycles >= max(t.compute_cycles, base.total_cycles)
            assert (h.total_cycles > t.total_cycles) if s == "global" else (h == t)


def test_bad_checksum_placement_is_refused():
    from protect import Abft, scheme_cost

    with pytest.raises(ValueError, match="checksums must be one of"):
        Abft("global", checksums="gpu")
    with pytest.raises(ValueError, match="checksums must be one of"):
        scheme_cost("global", ArrayConfig(4, 4), 2, 2, 2, checksums="")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="recompute must be an int >= 0"):
            Abft("fold", recompute=bad)


@pytest.mark.parametrize("scheme", ["global", "fold", "replication"])
def test_recompute_clears_a_transient_fault_and_reports_a_permanent_one(scheme):
    from protect import Abft, scheme_cost

    cfg = ArrayConfig(4, 4)
    arr = SystolicArray(cfg)
    x, w = _operands(INT8, 6, 7, 5, 1)
    want = arr.matmul(x, w).out
    calls = []

    def corrupting(times):
        def matmul(xx, ww):
            out = arr.matmul(xx, ww).out.copy()
            calls.append(1)
            if len(calls) <= times:  # two wrong outputs: global ABFT cannot correct them
                out[0, 0] += 1 << 20
                out[1, 1] -= 1 << 21
            return out
        return matmul

    runs = 2 if scheme == "replication" else 1  # array calls per check
    session = Abft(scheme, recompute=2).session()
    np.testing.assert_array_equal(session.run_gemm("fc", arr, x, w, corrupting(1)), want)
    st = session.stats.layers["fc"]
    assert (st.detected, st.recomputed, st.unresolved) == (1, 1, 0)
    assert st.cycles == 2 * scheme_cost(scheme, cfg, 6, 7, 5)  # the repeat costs a second run
    calls.clear()
    session = Abft(scheme, recompute=2).session()
    session.run_gemm("fc", arr, x, w, corrupting(10 ** 9))
    st = session.stats.layers["fc"]
    assert (st.detected, st.recomputed, st.unresolved) == (1, 2, 1) and len(calls) == 3 * runs
