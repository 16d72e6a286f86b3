"""Warm fallbacks: a chip that fails its group's check, retrained on from the group's model,
needs no more epochs than retraining it from the pretrained model.

Measured here (LeNet-5 on digits, 32x32 array, 2-point drop, amounts 0.25 ... 3): 16 chips
at 10%, each fused with a 4% chip into a group retrained for 0.25 epochs; the group's model
failed on 11 of them. Extra epochs to pass, summed over those 11 chips: 3.0 continuing the
group's run on its fused map (what ``efat.execute`` does first), 3.25 continuing from the
group's model on the chip's own map (what it does after the grid), 3.75 retraining the
chip from the pretrained model (cold).

Not always so: fused into a map much larger than its own (15% with 5%, about 20% fused) a
chip did better cold (16 failures: 15.0 fused, 13.0 own, 11.25 cold), the model having
adapted to a much smaller network. BENCHMARKS.md ("Warm fallbacks") has both.
"""

from __future__ import annotations

import pytest

from efat import map_chip
from simulator import ArrayConfig
from training import TrainState, chip_accuracy, fat_retrain, load_dataset, pretrained

GRID = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
GROUP_EPOCHS = 0.25


def _least(run, threshold, data, cfg, chip):
    """The least amount of GRID after which ``run(amount)`` meets the threshold on ``chip``."""
    for amount in GRID:
        if chip_accuracy(run(amount), data, cfg, chip) >= threshold:
            return amount
    return None


@pytest.mark.slow
def test_warm_fallback_needs_no_more_epochs_than_a_cold_one():
    data = load_dataset("digits", seed=0)
    model = pretrained("lenet5", data, seed=0)
    cfg = ArrayConfig(32, 32)
    threshold = chip_accuracy(model, data, cfg, None) - 0.02
    totals = {"warm fused": 0.0, "warm own": 0.0, "cold": 0.0}
    failed = 0
    for t in range(16):
        chip = map_chip(cfg, 0.10, t, 1)
        fused = chip | map_chip(cfg, 0.04, t, 2)
        state = TrainState()
        group = fat_retrain(model, fused, data, GROUP_EPOCHS, state=state)
        if chip_accuracy(group, data, cfg, chip) >= threshold:
            continue  # the group's model passes: no fallback
        failed += 1

        def warm(fault_map):
            return lambda extra: fat_retrain(group, fault_map, data, GROUP_EPOCHS + extra,
                                             state=TrainState(state.step, state.optimizer))

        needs = {"warm fused": _least(warm(fused), threshold, data, cfg, chip),
                 "warm own": _least(warm(chip), threshold, data, cfg, chip),
                 "cold": _least(lambda a: fat_retrain(model, chip, data, a), threshold, data, cfg, chip)}
        assert all(v is not None for v in needs.values()), (t, needs)  # all reach it on the grid
        for key, value in needs.items():
            totals[key] += value
    assert failed >= 8, "too few fallbacks to compare"
    assert totals["warm fused"] <= totals["cold"] and totals["warm own"] <= totals["cold"], totals
