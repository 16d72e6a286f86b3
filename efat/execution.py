"""Executing an eFAT plan: retrain each group once, verify every chip on the simulator.

Steps (``docs/semantics.md``, "eFAT", step 5):

1. Each group is retrained once with FAT on its fused fault map, for the group's amount.
   Weights go to ``out_dir/groups/group-NNNN.pt`` (atomically) with their seconds; a
   rerun skips groups already done (resume).
2. Every chip is evaluated **with its own fault map** on the simulator, with bypass:
   grouped chips with their group's model, chips that need no retraining with the
   pretrained model pruned for their own map (what the resilience map measured at 0
   epochs).
3. A chip below ``baseline - max_accuracy_drop`` is reported and retrained on its own
   (amounts escalating over the map's grid from its own ``E*``), never silently passed;
   a chip the map calls infeasible is evaluated, reported, and retrained on its own with
   the largest amount on the grid.
4. ``report.json`` and ``report.csv`` (:class:`efat.Report`): per chip its group,
   amount, accuracy, pass/fail; totals in epochs and seconds for fixed-amount FAT,
   Reduce and eFAT (seconds of the first two estimated from the measured seconds per
   epoch).
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import time

import numpy as np
import torch

from faults import FaultMap
from fileio import atomic_write
from simulator import ArrayConfig
from training.fat import FAT_LR, chip_accuracy, fat_retrain

from .report import ChipResult, Report

__all__ = ["execute"]


def _save_model(model, path, meta):
    with atomic_write(path, binary=True) as f:
        torch.save({"state_dict": model.state_dict(), "meta": meta}, f)


def _retrained(model, fm, data, epochs, path, seed, lr):
    """FAT for ``fm`` (or the saved result of an earlier run of the same unit); ``(model, seconds)``.

    A checkpoint is reused only if it was made for the same faulty PEs, amount, seed and
    learning rate (a re-planned group with the same index is retrained, not reused).
    """
    key = {"epochs": float(epochs), "seed": int(seed), "lr": float(lr),
           "pes": hashlib.sha256(np.packbits(fm.faulty).tobytes()).hexdigest()}
    if os.path.exists(path):
        try:
            saved = torch.load(path, weights_only=True)
            if all(saved["meta"].get(k) == v for k, v in key.items()):
                m = copy.deepcopy(model)
                m.load_state_dict(saved["state_dict"])
                return m.eval(), float(saved["meta"]["seconds"])
        except Exception:  # a torn or foreign file: redo the unit
            pass
    t = time.perf_counter()
    m = fat_retrain(model, fm, data, epochs, seed=seed, lr=lr)
    seconds = time.perf_counter() - t
    _save_model(m, path, {**key, "seconds": seconds})
    return m, seconds


def execute(plan, model, data, population, out_dir, seed: int = 0, lr: float = FAT_LR,
            progress: bool | None = None) -> Report:
    """Run ``plan`` for ``population``: retrain groups, verify every chip, write the report.

    Parameters
    ----------
    plan : efat.Plan
    model : nn.Module
        The pretrained float model the plan's resilience map was measured with.
    data : training.Dataset
    population : faults.Population
        The population the plan was made for (checked).
    out_dir : path
        Checkpoints, ``report.json`` and ``report.csv``. Rerunning resumes.
    """
    from tqdm.auto import tqdm

    plan.check_population(population)
    cfg = population.cfg
    if not isinstance(cfg, ArrayConfig):
        raise ValueError("population has no array configuration")
    os.makedirs(out_dir, exist_ok=True)
    drop = plan.max_accuracy_drop
    baseline = chip_accuracy(model, data, cfg, None)
    threshold = baseline - drop - 1e-12
    # amounts to escalate through when a chip fails its check: the map's grid
    grid = sorted({float(e) for e in plan.epochs if e > 0}) or \
        sorted({float(e) for e in plan.required_epochs_grid if math.isfinite(e) and e > 0})
    quiet = None if progress is None else not progress  # None: tqdm shows bars on a terminal only
    group_model, group_seconds = {}, {}
    for g in tqdm(plan.groups, desc="retraining groups", unit="group", disable=quiet):
        fused = plan.fused_map(g.index, population)
        path = os.path.join(out_dir, "groups", f"group-{g.index:04d}.pt")
        group_model[g.index], group_seconds[g.index] = _retrained(model, fused, data, g.epochs, path, seed, lr)
    results, own_seconds = [], []
    for chip in tqdm(plan.chips, desc="verifying chips", unit="chip", disable=quiet):
        fm: FaultMap = population[chip.id].fault_map
        if chip.group is not None:
            m = group_model[chip.group]
        else:
            m = fat_retrain(model, fm, data, 0.0)  # pruned for its own map, as the map measured
        acc = chip_accuracy(m, data, cfg, fm)
        own = 0.0
        if acc < threshold:  # never silently passed: retrain this chip on its own
            start = chip.epochs if math.isfinite(chip.epochs) else (grid[-1] if grid else 1.0)
            for amount in [e for e in grid if e >= start] or [start]:
                path = os.path.join(out_dir, "chips", f"{chip.id}-{amount:g}.pt")
                m2, sec = _retrained(model, fm, data, amount, path, seed, lr)
                own += amount
                own_seconds.append((amount, sec))
                acc = chip_accuracy(m2, data, cfg, fm)
                if acc >= threshold:
                    break
        results.append(ChipResult(chip.id, chip.rate, chip.status, chip.group, float(chip.epochs), acc,
                                  bool(acc >= threshold), own))
    totals = _totals(plan, group_seconds, own_seconds, results)
    report = Report(baseline, drop, results, totals)
    report.save(out_dir)
    return report


def _totals(plan, group_seconds, own_seconds, results):
    run_epochs = sum(g.epochs for g in plan.groups) + sum(a for a, _ in own_seconds)
    run_seconds = sum(group_seconds.values()) + sum(s for _, s in own_seconds)
    per_epoch = run_seconds / run_epochs if run_epochs else float("nan")
    costs = plan.costs
    out = {
        "efat": {"runs": len(plan.groups) + len(own_seconds), "epochs": run_epochs, "seconds": run_seconds,
                 "planned_epochs": costs.efat.epochs},
        "seconds_per_epoch": per_epoch,
        "chips_failing_group_model": sum(1 for r in results if r.own_epochs > 0),
    }
    for key in ("fixed", "reduce"):
        policy = getattr(costs, key)
        out[key] = {"runs": policy.runs, "epochs": policy.epochs,
                    "seconds": policy.epochs * per_epoch if np.isfinite(per_epoch) else 0.0, "estimated": True}
    return out
