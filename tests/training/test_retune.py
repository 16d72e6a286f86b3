"""Fal-reTune: never worse in expectation, deterministic, only faulty PEs, and it helps a real chip."""

from __future__ import annotations

import numpy as np
import pytest

from faults import FaultMap, StuckAt
from mapping import quantize, run_model
from simulator import INT8, ArrayConfig, SystolicArray, multiplier
from training import load_dataset, pretrained
from training.retune import activation_histograms, expected_errors, fal_retune, product_table


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("digits", seed=0)
    model = pretrained("lenet5", data, seed=0)
    return data, model


@pytest.mark.parametrize("prec", [INT8, multiplier("drum:4")])
def test_retuning_never_raises_the_expected_error_and_touches_only_faulty_pes(setup, prec):
    data, model = setup
    cfg = ArrayConfig(16, 16, prec)
    qm = quantize(model, data.x_train[:256], prec)
    hists = activation_histograms(qm, data.x_train[:256], cfg)
    fm = FaultMap.random(cfg, 0.2, seed=3, sites=("act", "weight", "product", "psum"))
    new, rep = fal_retune(qm, fm, hists)
    again, rep2 = fal_retune(qm, fm, hists)
    assert rep.retuned_pes > 0 and rep.psum_pes > 0 and rep.changed_weights > 0
    assert rep.error_after <= rep.error_before and rep2.error_after == rep.error_after
    T = product_table(prec)
    R, C = cfg.shape
    psum_faulty = (fm.masks[3, 0] != -1) | (fm.masks[3, 1] != 0)
    for (name, old), (_, layer), (_, same) in zip(qm.layers, new.layers, again.layers):
        w0, w1 = old.sim.w_q.astype(np.int64), layer.sim.w_q.astype(np.int64)
        assert np.array_equal(w1, same.sim.w_q)  # deterministic
        k, n = np.indices(w0.shape)
        retunable = fm.faulty[k % R, n % C] & ~psum_faulty[k % R, n % C]
        assert np.array_equal(w0[~retunable], w1[~retunable])  # only weights on faulty (non-psum) PEs
        assert (w0 == w1).sum() < w0.size  # something changed somewhere (checked overall above)
    # per weight: the chosen value's expected error is at most the original's, on the PE's function
    from training.retune import _pe_function
    from simulator import composed_act_masks

    ca, co = composed_act_masks(fm.masks[0], np.ones(cfg.shape, bool))
    r, c = next(zip(*np.nonzero(fm.faulty & ~psum_faulty)))
    g = _pe_function(T, fm.masks, ca, co, r, c, prec.widths()[2])
    E = expected_errors(g, T, hists[qm.layers[0][0]])
    w0 = qm.layers[0][1].sim.w_q.astype(np.int64)
    w1 = new.layers[0][1].sim.w_q.astype(np.int64)
    for kk, nn in zip(*np.nonzero(fm.faulty[np.indices(w0.shape)[0] % R, np.indices(w0.shape)[1] % C])):
        if (kk % R, nn % C) == (r, c):
            assert E[w0[kk, nn] + 128, w1[kk, nn] + 128] <= E[w0[kk, nn] + 128, w0[kk, nn] + 128]


def test_retuning_recovers_weight_register_faults(setup):
    """Stuck weight bits on 10% of the PEs of an exact int8 chip: measured 98.9% fault-free, 95.2%
    on the chip, 69.1% with bypass, 98.7% retuned. The test asks for half the loss recovered and
    more than bypass keeps."""
    data, model = setup
    cfg = ArrayConfig(16, 16)
    qm = quantize(model, data.x_train[:256])
    hists = activation_histograms(qm, data.x_train[:256], cfg)
    fm = FaultMap.random(cfg, 0.1, seed=1, sites=("weight",))
    arr = SystolicArray(cfg, fm)
    clean = run_model(qm, data, SystolicArray(cfg)).accuracy
    faulty = run_model(qm, data, arr).accuracy
    bypass = run_model(qm, data, SystolicArray(cfg, fm, "bypass")).accuracy
    new, rep = fal_retune(qm, fm, hists)
    fixed = run_model(new, data, arr).accuracy
    assert faulty < clean - 0.02 and fixed > faulty + 0.5 * (clean - faulty) and fixed > bypass, \
        (clean, faulty, bypass, fixed, rep)


def test_a_stuck_weight_bit_is_undone_exactly_where_possible():
    """Weight bit 2 stuck at 1: every weight with bit 2 clear is best served by... itself with bit 2
    set? No: by the value whose stuck version is closest; for w = 4k+... the error is 0 when some w'
    maps onto w exactly, which holds for every w with bit 2 set (w' = w)."""
    cfg = ArrayConfig(1, 1)
    fm = FaultMap.empty(cfg).with_fault(0, 0, StuckAt("weight", 2, 1))
    T = product_table(INT8)
    from training.retune import _pe_function
    from simulator import composed_act_masks

    ca, co = composed_act_masks(fm.masks[0], np.ones((1, 1), bool))
    g = _pe_function(T, fm.masks, ca, co, 0, 0, 16)
    E = expected_errors(g, T, np.ones(256))
    for w in range(-128, 128):
        if w & 4:
            assert E[w + 128].min() == 0 and E[w + 128, w + 128] == 0
        else:
            assert E[w + 128, w + 128] > 0 and E[w + 128].min() > 0  # no int8 value has bit 2 clear after the fault
