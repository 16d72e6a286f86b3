"""Fault-aware training, resilience maps, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from faults import FaultMap
from mapping import bypass_masks, run_model
from simulator import ArrayConfig, SystolicArray
from training import fat as fat_module
from training.baseline import pretrained
from training.data import load_dataset
from training.fat import chip_accuracy, fat_retrain, resilience_map
from training.resilience import ResilienceError, ResilienceMap

CFG = ArrayConfig(32, 32)


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("digits", seed=0)
    model = pretrained("lenet5", data, seed=0)
    yield model, data


def test_fat_holds_masked_weights_at_zero_and_beats_bypass(setup):
    model, data = setup
    fm = FaultMap.random(CFG, 0.1, seed=0)
    masks = bypass_masks(model, fm)
    retrained = fat_retrain(model, fm, data, 1.0)
    for name, layer in retrained.named_modules():
        if name in masks:
            assert (layer.weight[masks[name]] == 0).all()
            assert (layer.weight[~masks[name]] != dict(model.named_modules())[name].weight[~masks[name]]).any()
    before = chip_accuracy(model, data, CFG, fm)
    after = chip_accuracy(retrained, data, CFG, fm)
    assert after > before + 0.03, (before, after)
    assert all(p.abs().sum() > 0 for p in model.parameters())  # the pretrained model is untouched


def test_checkpoints_equal_separate_runs(setup):
    model, data = setup
    fm = FaultMap.random(CFG, 0.05, seed=1)
    seen = {}
    fat_retrain(model, fm, data, 0.5, checkpoints=[0, 0.25, 0.5],
                on_checkpoint=lambda e, m: seen.__setitem__(e, {k: v.clone() for k, v in m.state_dict().items()}))
    alone = fat_retrain(model, fm, data, 0.25).state_dict()
    assert sorted(seen) == [0, 0.25, 0.5]
    assert all(torch.equal(alone[k], seen[0.25][k]) for k in alone)
    assert not all(torch.equal(alone[k], seen[0.5][k]) for k in alone)


def test_model_for_fused_map_is_exact_on_every_member(setup):
    """Retrained for the OR of the members' maps, it equals the masked model on each member."""
    model, data = setup
    members = [FaultMap.random(CFG, 0.03, seed=s) for s in range(3)]
    fused = members[0].union(*members[1:])
    m = fat_retrain(model, fused, data, 0.25)
    x = data.x_test[:200]
    clean = run_model(m, x, SystolicArray(CFG), calib=data.x_train[:512], return_logits=True).logits
    for fm in members:
        on_member = run_model(m, x, SystolicArray(CFG, fm, "bypass"), calib=data.x_train[:512], return_logits=True)
        np.testing.assert_array_equal(on_member.logits, clean)


def test_resilience_map_resumes_after_interrupt(setup, tmp_path, monkeypatch):
    model, data = setup
    args = (model, data, ArrayConfig(16, 16), [0.05, 0.2], [0.25])
    full = resilience_map(*args, trials=2, out=tmp_path / "full.json", progress=False)
    calls = {"n": 0}
    real = fat_module.fat_retrain

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed in the middle of the third chip
        return real(*a, **k)

    monkeypatch.setattr(fat_module, "fat_retrain", flaky)
    with pytest.raises(KeyboardInterrupt):
        resilience_map(*args, trials=2, out=tmp_path / "part.json", progress=False)
    part = ResilienceMap.load(tmp_path / "part.json")
    assert np.isnan(part.accuracy).any() and not np.isnan(part.accuracy).all()
    monkeypatch.setattr(fat_module, "fat_retrain", real)
    resumed = resilience_map(*args, trials=2, out=tmp_path / "part.json", progress=False)
    assert resumed.complete
    assert json.dumps(resumed.to_json()) == json.dumps(full.to_json())
    with pytest.raises(ResilienceError, match="another grid"):
        resilience_map(model, data, ArrayConfig(16, 16), [0.05], [0.25], trials=2, out=tmp_path / "part.json")


@st.composite
def maps(draw):
    n_rates = draw(st.integers(1, 5))
    n_epochs = draw(st.integers(1, 5))
    trials = draw(st.integers(1, 3))
    rates = sorted(draw(st.sets(st.floats(0.001, 0.5), min_size=n_rates, max_size=n_rates)))
    epochs = [0.0] + sorted(draw(st.sets(st.floats(0.1, 10), min_size=n_epochs - 1, max_size=n_epochs - 1)))
    acc = draw(st.lists(st.floats(0, 1), min_size=n_rates * n_epochs * trials, max_size=n_rates * n_epochs * trials))
    return ResilienceMap(rates, epochs, np.reshape(acc, (n_rates, n_epochs, trials)), draw(st.floats(0.5, 1)))


@settings(max_examples=100)
@given(rmap=maps(), drop=st.floats(0, 0.3), rate=st.floats(0, 1))
def test_required_epochs_properties(rmap, drop, rate):
    need = rmap.required_epochs_grid(drop)
    assert (need[1:] >= need[:-1]).all()  # non-decreasing in the rate
    for i, e in enumerate(need):
        if np.isfinite(e):
            assert e in rmap.epochs
    for i in range(len(rmap.fault_rates)):
        # at its own grid point, the least amount that meets the drop for every trial, unless an easier rate needs more
        ok = (rmap.accuracy[i].min(axis=1) >= rmap.baseline - drop - 1e-12)
        own = rmap.epochs[ok.argmax()] if ok.any() else np.inf
        assert need[i] == max([own] + [need[j] for j in range(i)])
    got = rmap.required_epochs(rate, drop)
    above = rmap.fault_rates >= rate - 1e-12
    assert got == (need[above.argmax()] if above.any() else np.inf)  # rounds up to the grid


def test_resilience_map_validation_and_files(tmp_path):
    acc = np.full((2, 2, 1), 0.9)
    with pytest.raises(ResilienceError, match="start with 0"):
        ResilienceMap([0.1, 0.2], [1, 2], acc, 0.9)
    with pytest.raises(ResilienceError, match="strictly increasing"):
        ResilienceMap([0.2, 0.1], [0, 2], acc, 0.9)
    with pytest.raises(ResilienceError, match=r"shape \(2, 2, trials\)"):
        ResilienceMap([0.1, 0.2], [0, 2], np.zeros((2, 3, 1)), 0.9)
    rmap = ResilienceMap([0.1, 0.2], [0, 2], acc, 0.9, {"array": [8, 8]})
    with pytest.raises(ResilienceError, match="max_accuracy_drop must be a number in"):
        rmap.required_epochs(0.1, -0.5)
    rmap.save(tmp_path / "m.json")
    assert ResilienceMap.load(tmp_path / "m.json").to_json() == rmap.to_json()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResilienceError, match="not valid JSON"):
        ResilienceMap.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "something"}')
    with pytest.raises(ResilienceError, match="not a resilience map"):
        ResilienceMap.load(tmp_path / "other.json")
    with pytest.raises(ResilienceError, match="no such file"):
        ResilienceMap.load(tmp_path / "missing.json")
    rmap.plot(tmp_path / "m.png", 0.01)
    assert (tmp_path / "m.png").stat().st_size > 5000
