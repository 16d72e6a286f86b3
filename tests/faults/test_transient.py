"""Random transient flips: counts at a bit-error rate, placement, determinism, model runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faults import FaultError, TransientFaults, random_flips, random_output_flips
from simulator import BF16, FLIP_DTYPE, FP16, INT8, SITES, ArrayConfig, SystolicArray, gemm_timing


def test_count_follows_the_bit_error_rate():
    """Mean count = BER x cycles x PEs x bits per PE; over 400 seeds the mean is within 4 standard errors."""
    cfg = ArrayConfig(8, 8, FP16)  # 16 + 16 + 32 + 32 = 96 bits per PE
    n_cycles = gemm_timing(cfg, 20, 30, 10).n_cycles
    ber = 1e-4
    lam = ber * n_cycles * cfg.n_pes * 96
    counts = np.array([len(random_flips(cfg, 20, 30, 10, ber, seed=s)) for s in range(400)])
    assert abs(counts.mean() - lam) < 4 * np.sqrt(lam / 400), (counts.mean(), lam)


def test_flips_land_on_bits_in_proportion_to_register_width():
    cfg = ArrayConfig(16, 16, INT8)  # act 8, weight 8, product 16, psum 32: 64 bits
    ev = random_flips(cfg, 50, 40, 30, 4e-3, seed=1)  # mean 37,749 flips
    assert ev.dtype == FLIP_DTYPE and abs(len(ev) - 37_749) < 4 * np.sqrt(37_749)
    share = np.bincount(ev["site"], minlength=4) / len(ev)
    np.testing.assert_allclose(share, [8 / 64, 8 / 64, 16 / 64, 32 / 64], atol=0.01)
    n_cycles = gemm_timing(cfg, 50, 40, 30).n_cycles
    assert ev["cycle"].min() >= 0 and ev["cycle"].max() < n_cycles and (np.diff(ev["cycle"]) >= 0).all()
    widths = np.array(INT8.widths())
    assert (ev["bit"] < widths[ev["site"]]).all()


def test_same_seed_same_flips_and_a_run_accepts_them():
    cfg = ArrayConfig(4, 4, BF16)
    a = random_flips(cfg, 6, 9, 5, 1e-3, seed=7, sites=("psum", "act"), bits=[14, 30])
    b = random_flips(cfg, 6, 9, 5, 1e-3, seed=7, sites=("psum", "act"), bits=[14, 30])
    assert np.array_equal(a, b) and len(a) > 0
    assert set(a["site"]) <= {SITES.index("psum"), SITES.index("act")}
    assert set(zip(a["site"], a["bit"])) <= {(0, 14), (3, 14), (3, 30)}  # act has no bit 30
    x = np.ones((6, 9), BF16.operand_dtypes[0])
    w = np.ones((9, 5), BF16.operand_dtypes[0])
    arr = SystolicArray(cfg)
    assert np.array_equal(arr.matmul(x, w, "cycle", flips=a).out.view(np.int32),
                          arr.matmul(x, w, "fast", flips=a).out.view(np.int32))


def test_output_flips_are_uniform_and_deterministic():
    f = random_output_flips(10, 7, 1.0, seed=3, bits=[30, 31])  # mean 70 flips
    assert f == random_output_flips(10, 7, 1.0, seed=3, bits=[30, 31])
    assert abs(len(f) - 70) < 4 * 70 ** 0.5
    assert {b for _, _, b in f} == {30, 31} and max(m for m, _, _ in f) == 9 and max(n for _, n, _ in f) == 6


@pytest.mark.parametrize("bad, match", [
    (dict(ber=-0.1), r"ber must be a number in \[0, 1\].*-0.1"),
    (dict(ber=0.1, sites=("acc",)), r"sites must be a non-empty selection.*'acc'"),
    (dict(ber=0.1, bits=[40]), r"none of bits \[40\] exists"),
])
def test_bad_arguments(bad, match):
    with pytest.raises(FaultError, match=match):
        random_flips(ArrayConfig(2, 2), 2, 2, 2, **bad)


def test_transient_faults_in_a_model_run():
    """A run with soft errors: deterministic for a seed, and flips cost accuracy at a high rate."""
    from mapping import quantize, run_model
    from training import load_dataset, pretrained

    data = load_dataset("digits", seed=0)
    model = pretrained("mlp", data, seed=0)
    cfg = ArrayConfig(16, 16, FP16)
    qm = quantize(model, data.x_train[:256], FP16)
    arr = SystolicArray(cfg)
    clean = run_model(qm, data, arr).accuracy
    src = TransientFaults(ber=1e-4, seed=1, sites=("psum",), bits=(30,))
    a = run_model(qm, data, arr, flips=src)
    b = run_model(qm, data, arr, flips=src)
    assert np.array_equal(a.predictions, b.predictions)
    assert a.accuracy < clean - 0.05, (a.accuracy, clean)  # exponent MSB of psums: huge values
    out_only = run_model(qm, data, arr, flips=TransientFaults(seed=2, out_rate=1e-3, out_bits=(30,)))
    assert out_only.accuracy < clean
    with torch.no_grad():
        assert run_model(qm, data, arr, flips=TransientFaults(ber=0.0)).accuracy == clean


def test_an_exact_count_of_flips():
    cfg = ArrayConfig(8, 8, FP16)
    ev = random_flips(cfg, 30, 20, 10, None, seed=2, count=25)
    assert len(ev) == 25 and np.array_equal(ev, random_flips(cfg, 30, 20, 10, None, seed=2, count=25))
    with pytest.raises(FaultError, match="give one of ber and count"):
        random_flips(cfg, 30, 20, 10, 1e-3, count=3)


def test_flips_per_image_scale_with_the_batch():
    src = TransientFaults(per_image=2.0, seed=4, out_per_image=1.0)
    draw = src.session()
    cfg = ArrayConfig(8, 8)
    sizes = [(len(f), len(o)) for f, o in (draw("l", cfg, 64 * 9, 20, 6, 64) for _ in range(200))]
    flips, outs = np.array(sizes).mean(axis=0)
    assert abs(flips - 128) < 4 * np.sqrt(128 / 200) and abs(outs - 64) < 4 * np.sqrt(64 / 200), (flips, outs)
    with pytest.raises(FaultError, match="give ber or per_image"):
        TransientFaults(ber=1e-6, per_image=1.0)
