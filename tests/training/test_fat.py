"""Fault-aware training: masked weights held at zero, checkpoints, fused maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faults import FaultMap
from mapping import bypass_masks, run_model
from simulator import ArrayConfig, SystolicArray
from training.baseline import pretrained
from training.data import load_dataset
from training.fat import chip_accuracy, fat_retrain

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


def test_a_resumed_state_can_be_resumed_again(setup):
    """Continuing a run is bit for bit the longer run, and leaves the state it started from
    untouched (Adam updates loaded moments in place): two continuations from one state agree."""
    from training import TrainState

    model, data = setup
    fm = FaultMap.random(CFG, 0.05, seed=3)
    full = fat_retrain(model, fm, data, 0.75, seed=2)
    state = TrainState()
    half = fat_retrain(model, fm, data, 0.25, seed=2, state=state)
    saved = {k: v.clone() for k, v in state.optimizer["state"][0].items() if torch.is_tensor(v)}
    first = fat_retrain(half, fm, data, 0.75, seed=2, state=TrainState(state.step, state.optimizer))
    assert all(torch.equal(v, state.optimizer["state"][0][k]) for k, v in saved.items())
    second = fat_retrain(half, fm, data, 0.75, seed=2, state=TrainState(state.step, state.optimizer))
    for a, b, c in zip(full.state_dict().values(), first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(b, c)
