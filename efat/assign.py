"""New chips, old groups: reusing a plan's retrained models at zero retraining.

A group's model holds zero weights on every PE of its fused map, and it passed its
check on the simulator. A new chip (say, from a later wafer) whose faulty PEs all lie
in that fused map is pruned by bypass only where the model is zero already: on that
chip the model computes exactly what it computed on the fused chip, so it passes too.
:func:`assign` finds, for every chip of a new population, such a group (the one with
the fewest fused PEs; ties: the lowest index), and :func:`verify_assignment` checks
every assigned chip on the simulator with its own fault map, with the group's final
model from an execution's ``out_dir``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .bitsets import faulty_pe_lists, pack
from .errors import PlanError

__all__ = ["Assignment", "assign", "verify_assignment"]


@dataclass(frozen=True)
class Assignment:
    """A new chip and the group whose model it can use (``None``: no group covers it).

    After :func:`verify_assignment`, ``accuracy`` and ``passed`` hold its check."""

    chip: str
    rate: float
    group: int | None
    accuracy: float | None = None
    passed: bool | None = None


def assign(plan, population) -> list[Assignment]:
    """For every chip of ``population``, the plan's group whose fused map covers its faulty PEs.

    Pure computation (no torch). Raises :class:`PlanError` if the population's array is
    not the plan's.
    """
    shape = tuple(population.cfg.shape)
    if shape != plan.shape:
        raise PlanError(f"the plan is for a {plan.shape[0]}x{plan.shape[1]} array; the population is "
                        f"{shape[0]}x{shape[1]}.")
    n_pes, cols = plan.n_pes, plan.shape[1]
    offsets, flat = faulty_pe_lists(population)
    chips = pack(offsets, flat, np.arange(len(population)), n_pes)  # (n, W)
    fused = np.zeros((len(plan.groups), chips.shape[1] * 8), np.uint8)
    for g in plan.groups:
        pes = np.array([r * cols + c for r, c in g.fused_pes], np.int64)
        np.bitwise_or.at(fused[g.index], pes >> 3, np.left_shift(1, pes & 7).astype(np.uint8))
    fused = fused.view(np.uint64)  # (G, W)
    order = sorted(range(len(plan.groups)), key=lambda i: (len(plan.groups[i].fused_pes), i))
    out = []
    for i, chip_id in enumerate(population.ids):
        covered = [g for g in order if not np.any(chips[i] & ~fused[g])]
        out.append(Assignment(chip_id, float(population.rates[i]), covered[0] if covered else None))
    return out


def verify_assignment(assignments, plan, population, model, data, run_dir) -> list[Assignment]:
    """Check every assigned chip on the simulator (int8, its own fault map, bypass) with its
    group's final model from ``run_dir`` (an :func:`efat.execute` output folder for this
    plan); unassigned chips are returned as they are."""
    import torch

    from training.fat import chip_accuracy

    plan.check_provenance(model, data)
    models, out = {}, []
    for a in assignments:
        if a.group is None:
            out.append(a)
            continue
        if a.group not in models:
            models[a.group] = _group_model(plan, model, run_dir, a.group, torch)
        m = models[a.group]
        acc = chip_accuracy(m, data, population.cfg, population[a.chip].fault_map)
        out.append(Assignment(a.chip, a.rate, a.group, acc, bool(acc >= plan.constraint.threshold(plan.baseline))))
    return out


def _group_model(plan, model, run_dir, index: int, torch):
    import copy

    path = os.path.join(run_dir, "units", f"group-{index:04d}.pt")
    if not os.path.exists(path):
        raise PlanError(f"{path}: no retrained model of group {index}; run efat.execute (efat retrain) for this plan "
                        "into that folder first.")
    import hashlib

    saved = torch.load(path, weights_only=True)
    g = plan.groups[index]
    faulty = np.zeros(plan.shape, bool)
    faulty[tuple(np.array(g.fused_pes, np.int64).reshape(-1, 2).T)] = True
    pes = hashlib.sha256(np.packbits(faulty).tobytes()).hexdigest()
    if saved["meta"].get("pes") != pes or float(saved["meta"].get("planned", -1)) != g.epochs:
        raise PlanError(f"{path}: the model was retrained for another group than group {index} of this plan "
                        "(other fused PEs or amount).")
    m = copy.deepcopy(model)
    m.load_state_dict(saved["state_dict"])
    return m.eval()
