"""Warm against cold fallbacks: what a chip that fails its group's check costs to fix.

LeNet-5 on digits, 32x32 array, 2-point drop. For each case, 16 chips at ``chip`` rate
(map chips of seed 1), each fused with a chip at ``partner`` rate (seed 2) into a group
retrained for ``group`` epochs. Where the group's model fails on the chip, the least
extra amount (on a grid of 0.25 ... 6 epochs) that brings the chip within the constraint
is measured three ways: continuing the group's run on the fused map (what
``efat.execute`` does first), continuing from the group's model on the chip's own map
(what it does after the grid), and retraining the chip from the pretrained model (cold).
Totals are over the chips that reach the constraint on the grid all three ways.

    .venv/bin/python bench/bench_fallback.py
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_result  # noqa: E402

from efat import map_chip  # noqa: E402
from simulator import ArrayConfig  # noqa: E402
from training import TrainState, chip_accuracy, fat_retrain, load_dataset, pretrained  # noqa: E402

GRID = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
CASES = ((0.10, 0.04, 0.5), (0.08, 0.03, 0.25), (0.10, 0.04, 0.25))  # chip rate, partner rate, group epochs
CHIPS = 16
WAYS = ("warm, fused map", "warm, own map", "cold")


def least(run, accurate) -> float | None:
    """The least amount of GRID after which ``run(amount)``'s model is ``accurate``."""
    for amount in GRID:
        if accurate(run(amount)):
            return amount
    return None


def case(model, data, cfg, threshold, rate, partner, group_epochs) -> dict:
    """Fallback needs of the chips of one case whose group's model fails on them."""
    failed, reached, totals = 0, 0, dict.fromkeys(WAYS, 0.0)
    for t in range(CHIPS):
        chip = map_chip(cfg, rate, t, 1)
        fused = chip | map_chip(cfg, partner, t, 2)
        state = TrainState()
        group = fat_retrain(model, fused, data, group_epochs, state=state)

        def accurate(m, chip=chip):
            return chip_accuracy(m, data, cfg, chip) >= threshold

        if accurate(group):
            continue
        failed += 1

        def warm(fault_map, group=group, state=state):
            return lambda extra: fat_retrain(group, fault_map, data, group_epochs + extra,
                                             state=TrainState(state.step, state.optimizer))

        needs = dict(zip(WAYS, (least(warm(fused), accurate), least(warm(chip), accurate),
                                least(lambda a, chip=chip: fat_retrain(model, chip, data, a), accurate))))
        if all(v is not None for v in needs.values()):
            reached += 1
            for way, value in needs.items():
                totals[way] += value
    return {"failed": failed, "reached": reached, **totals}


def main():
    data = load_dataset("digits", seed=0)
    model = pretrained("lenet5", data, seed=0)
    cfg = ArrayConfig(32, 32)
    threshold = chip_accuracy(model, data, cfg, None) - 0.02
    lines = [f"Warm against cold fallbacks, LeNet-5 on digits, 32x32, 2-point drop, {CHIPS} chips per case; "
             f"{machine()}", "", "    .venv/bin/python bench/bench_fallback.py", "",
             "| chip rate | partner rate | group epochs | group fails on | reach it on the grid "
             "| extra epochs: warm, fused map | warm, own map | cold | seconds |",
             "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for rate, partner, group_epochs in CASES:
        t = time.perf_counter()
        r = case(model, data, cfg, threshold, rate, partner, group_epochs)
        lines.append(f"| {100 * rate:g}% | {100 * partner:g}% | {group_epochs:g} | {r['failed']} | {r['reached']} | "
                     + " | ".join(f"{r[w]:g}" for w in WAYS) + f" | {time.perf_counter() - t:.0f} |")
        print(lines[-1], flush=True)
    write_result("fallback", "\n".join(lines + [""]))


if __name__ == "__main__":
    main()
