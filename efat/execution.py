"""Executing an eFAT plan: retrain each unit once, verify every chip, escalate warm.

A **unit** is what verification decides on: a group (retrained for its fused map at its
amount) or a chip outside every group (its own map, amount 0: the pretrained model
pruned for it; an infeasible chip too). Every member of a group gets exactly the
group's model, whose weights on every fused faulty PE are zero, so on every member's
chip (with bypass) it computes what it computes on the fused chip: members pass or fail
together, and the tests check it.

Steps (``docs/semantics.md``, "eFAT", step 5), each a round of tasks on an executor
(:mod:`efat.executors`; the same report on every one):

1. Every unit is trained to its planned amount and **every chip is verified with its
   own fault map** on the simulator.
2. A unit with a chip below ``baseline - max_accuracy_drop`` is never passed: it is
   retrained on, **warm** (the run continues from where it stopped, optimizer and batch
   order included, so reaching amount ``a`` costs ``a`` epochs in total, not ``a`` more),
   to the next amount of the map's grid, and verified again, until it passes or the
   grid ends. This is exactly the path a map chip runs, so the plan's expected cost
   (:mod:`efat.costs`) predicts it.
3. A chip still failing at the end of the grid is retrained on, warm from its unit's
   model but on **its own** fault map (the weights on the other members' faulty PEs are
   free again), for ``d`` more epochs, ``d`` escalating over the grid's amounts, until it
   passes or ``d`` reaches the largest amount; then it is reported with its outcome.

A unit's latest state (weights, optimizer, step, seconds) is saved to
``out_dir/units/<unit>.pt`` after every step, atomically, and reused only for the same
faulty PEs, planned amount, seed and learning rate: an interrupted run resumes where it
stood.
``report.json`` and ``report.csv`` (:class:`efat.Report`) hold per chip its amounts,
accuracy and outcome, and the real cost beside the plan's expected cost.
"""

from __future__ import annotations

import copy
import hashlib
import os
import time

import numpy as np
import torch

from fileio import atomic_write
from training import TrainState
from training.baseline import DEFAULT_BATCH_SIZE
from training.fat import FAT_LR, chip_accuracy, fat_retrain

from .errors import PlanError
from .executors import Executor, make_executor
from .report import ChipResult, Report, totals

__all__ = ["execute", "train_unit"]


def train_unit(shared: dict, task: dict) -> dict:
    """Executor task: train a unit to ``task["amount"]`` (warm from ``task["start"]`` if
    given) for ``task["fault_map"]``, then verify it on every chip of ``task["members"]``."""
    s = shared
    t0 = time.perf_counter()
    start = task["start"]
    model = copy.deepcopy(s["model"])
    state = TrainState()
    if start is not None:
        model.load_state_dict(start["state_dict"])
        state = TrainState(start["step"], start["optimizer"])
    m = fat_retrain(model, task["fault_map"], s["data"], task["amount"], seed=s["seed"], lr=s["lr"],
                    batch_size=s["batch_size"], state=state)
    seconds = time.perf_counter() - t0 + (start["seconds"] if start is not None else 0.0)
    accuracy = [chip_accuracy(m, s["data"], s["cfg"], fm) for fm in task["members"]]
    return {"state_dict": m.state_dict(), "optimizer": state.optimizer, "step": state.step,
            "amount": task["amount"], "seconds": seconds, "accuracy": accuracy}


POLICIES = ("efat", "reduce", "fixed")


def execute(plan, model, data, population, out_dir, seed: int = 0, lr: float = FAT_LR,
            progress: bool | None = None, executor=None, batch_size: int = DEFAULT_BATCH_SIZE,
            policy: str = "efat") -> Report:
    """Run ``plan`` for ``population``: retrain units, verify every chip, write the report.

    Parameters
    ----------
    plan : efat.Plan
    model : nn.Module
        The pretrained float model the plan was made for (checked when the plan records it).
    data : training.Dataset
    population : faults.Population
        The population the plan was made for (checked).
    out_dir : path
        Unit states, ``report.json`` and ``report.csv``. Rerunning resumes.
    seed, lr, batch_size
        Of the retraining runs.
    executor : None, str, int or Executor
        Where units run (:func:`efat.executors.make_executor`); same report on every one.
    policy : {"efat", "reduce", "fixed"}
        What to execute: the plan's groups (``"efat"``), or for comparison every chip on
        its own at its ``E*`` (``"reduce"``) or at the plan's fixed amount (``"fixed"``).
        Chips the map calls infeasible run on their own under every policy and are
        counted apart. Use one ``out_dir`` per policy.
    """
    if policy not in POLICIES:
        raise PlanError(f"policy must be one of {list(POLICIES)}; got {policy!r}.")
    plan.check_population(population)
    plan.check_provenance(model, data)
    cfg = population.cfg
    baseline = chip_accuracy(model, data, cfg, None)
    if abs(baseline - plan.baseline) > 1e-12:
        raise PlanError(f"the model's fault-free accuracy on this array is {baseline:.6f}, the plan's map measured "
                        f"{plan.baseline:.6f}: another model, data set or array than the plan was made for.")
    threshold = plan.constraint.threshold(baseline)
    grid = [float(e) for e in plan.epochs]
    units = _units(plan, population, policy)
    os.makedirs(out_dir, exist_ok=True)
    shared = {"model": model, "data": data, "cfg": cfg, "seed": seed, "lr": lr, "batch_size": batch_size}
    state = {u["name"]: _load_state(out_dir, u, seed, lr) for u in units}
    todo = {u["name"]: max(u["amount"], state[u["name"]]["amount"] if state[u["name"]] else 0.0) for u in units}
    outcome = {}
    owned = not isinstance(executor, Executor)
    ex = make_executor(executor)
    try:
        first = _escalate(ex, units, todo, state, outcome, grid, threshold, out_dir, seed, lr, shared, progress,
                          "units: retrain and verify")
        failed_first = {u["name"] for u in units
                        if not first.get(u["name"], True) or outcome[u["name"]]["amount"] > u["amount"]}
        own_units = _own_units(units, outcome, threshold)
        own_state = {u["name"]: _load_state(out_dir, u, seed, lr) for u in own_units}
        base = {u["name"]: outcome[u["unit"]]["amount"] for u in own_units}
        for u in own_units:  # warm from the unit's final model, unless a later own step was saved
            if own_state[u["name"]] is None:
                own_state[u["name"]] = dict(state[u["unit"]])
        own_todo = {u["name"]: max(base[u["name"]] + grid[1], own_state[u["name"]]["amount"]) for u in own_units}
        own_grid = {u["name"]: [base[u["name"]] + d for d in grid[1:]] for u in own_units}
        own = {}
        _escalate(ex, own_units, own_todo, own_state, own, own_grid, threshold, out_dir, seed, lr, shared, progress,
                  "own retraining")
    finally:
        if owned:
            ex.close()
    own_of = {u["members"][0][0]: {**own[u["name"]], "extra": own[u["name"]]["amount"] - base[u["name"]],
                                   "extra_seconds": own[u["name"]]["seconds"] - outcome[u["unit"]]["seconds"]}
              for u in own_units}
    chips = _results(plan, units, outcome, own_of, threshold)
    report = Report(baseline, plan.max_accuracy_drop, chips,
                    totals(plan, policy, units, outcome, own_of, failed_first), policy)
    report.save(out_dir)
    return report


def _units(plan, population, policy: str) -> list[dict]:
    """The units of a policy with their fault maps and planned amounts: the groups and every
    chip outside a group (``"efat"``), or every chip alone (``"reduce"``, ``"fixed"``)."""
    out = []
    if policy == "efat":
        for g in plan.groups:
            out.append({"name": f"group-{g.index:04d}", "fault_map": plan.fused_map(g.index, population),
                        "amount": g.epochs, "members": [(m, population[m].fault_map) for m in g.members]})
    for c in plan.chips:
        if policy == "efat" and c.group is not None:
            continue
        fm = population[c.id].fault_map
        amount = 0.0 if c.status == "infeasible" else plan.costs.fixed_amount if policy == "fixed" else c.epochs
        out.append({"name": c.id, "fault_map": fm, "amount": float(amount), "members": [(c.id, fm)],
                    "infeasible": c.status == "infeasible"})
    return out


def _escalate(ex, units, todo, state, outcome, grid, threshold, out_dir, seed, lr, shared, progress, desc) -> dict:
    """Rounds of tasks: train each unit in ``todo`` to its amount (warm from ``state``),
    verify, and move a failing unit to the next amount of its grid (``grid``: a list, or
    per unit a dict of lists). Returns ``{unit: passed}`` of the first round."""
    first, round_no = {}, 0
    while todo:
        batch = [u for u in units if u["name"] in todo]
        tasks = [{"fault_map": u["fault_map"], "members": [fm for _, fm in u["members"]],
                  "amount": todo[u["name"]], "start": state[u["name"]]} for u in batch]

        def record(k, result, batch=batch):
            u = batch[k]
            start = state[u["name"]]
            if start is None or start["amount"] != result["amount"]:  # trained: keep the new state
                state[u["name"]] = _save_state(out_dir, u, seed, lr, result)
            outcome[u["name"]] = result

        ex.run(train_unit, tasks, shared, progress=progress, on_result=record,
               desc=desc if round_no == 0 else f"{desc}: escalation {round_no}")
        todo = {}
        for u in batch:
            res = outcome[u["name"]]
            passed = min(res["accuracy"]) >= threshold
            if round_no == 0:
                first[u["name"]] = passed
            amounts = grid[u["name"]] if isinstance(grid, dict) else grid
            higher = [a for a in amounts if a > res["amount"] + 1e-12]
            if not passed and higher:
                todo[u["name"]] = higher[0]
        round_no += 1
    return first


def _own_units(units, outcome, threshold) -> list[dict]:
    """Step 3: a unit per chip still failing at the end of its unit's grid, on its own map."""
    out = []
    for u in units:
        for (cid, fm), acc in zip(u["members"], outcome[u["name"]]["accuracy"]):
            if acc < threshold:
                out.append({"name": f"{cid}-own", "unit": u["name"], "fault_map": fm, "members": [(cid, fm)],
                            "amount": outcome[u["name"]]["amount"]})
    return out


def _results(plan, units, outcome, own, threshold) -> list[ChipResult]:
    unit_of = {cid: u for u in units for cid, _ in u["members"]}
    out = []
    for c in plan.chips:
        u = unit_of[c.id]
        res = outcome[u["name"]]
        acc = res["accuracy"][[cid for cid, _ in u["members"]].index(c.id)]
        own_epochs = 0.0
        if c.id in own:
            acc, own_epochs = own[c.id]["accuracy"][0], own[c.id]["extra"]
        out.append(ChipResult(c.id, c.rate, c.status, c.group, float(c.epochs), float(res["amount"]), float(acc),
                              bool(acc >= threshold), own_epochs))
    return out


def _key(unit, seed, lr) -> dict:
    pes = hashlib.sha256(np.packbits(unit["fault_map"].faulty).tobytes()).hexdigest()
    return {"pes": pes, "seed": int(seed), "lr": float(lr), "planned": float(unit["amount"])}


def _path(out_dir, unit) -> str:
    return os.path.join(out_dir, "units", f"{unit['name']}.pt")


def _load_state(out_dir, unit, seed, lr):
    """The unit's saved state if it was made for the same faulty PEs, seed and lr (else None)."""
    path = _path(out_dir, unit)
    if not os.path.exists(path):
        return None
    try:
        saved = torch.load(path, weights_only=True)
        if all(saved["meta"].get(k) == v for k, v in _key(unit, seed, lr).items()):
            return {"state_dict": saved["state_dict"], "optimizer": saved["optimizer"], "step": int(saved["step"]),
                    "amount": float(saved["meta"]["amount"]), "seconds": float(saved["meta"]["seconds"])}
    except Exception:  # noqa: BLE001 - a torn or foreign file: the unit is redone
        pass
    return None


def _save_state(out_dir, unit, seed, lr, result) -> dict:
    st = {"state_dict": result["state_dict"], "optimizer": result["optimizer"], "step": result["step"],
          "amount": float(result["amount"]), "seconds": float(result["seconds"])}
    meta = {**_key(unit, seed, lr), "amount": st["amount"], "seconds": st["seconds"]}
    with atomic_write(_path(out_dir, unit), binary=True) as f:
        torch.save({"state_dict": st["state_dict"], "optimizer": st["optimizer"], "step": st["step"], "meta": meta}, f)
    return st
