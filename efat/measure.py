"""Measuring a resilience map: FAT runs on random chips, evaluated on the simulator.

For each fault rate on the grid, random chips (:func:`map_chip`) each get one FAT run
(:func:`training.fat_retrain`) up to the largest amount, evaluated (int8, on the chip,
with bypass) at every amount of the grid as the run passes it. One chip is one task of
an executor (serial, processes or Dask; :mod:`efat.executors`); the map is saved after
every chip, and a rerun resumes (``docs/semantics.md``, "eFAT", step 1).

**Adaptive sampling.** With a constraint, each rate starts with ``trials`` chips
(default: the fewest that can certify an amount, ``Constraint.min_trials``). Then, round
after round, every rate whose ``E*`` is not settled (:meth:`ResilienceMap.settled`: an
amount certified to suffice and every smaller one certified not to, or every amount
certified not to) gets ``batch`` more chips, until it is settled or holds
``max_trials`` (default: 3 x the initial number). Undecided amounts never count as
sufficient, so stopping at the budget is conservative. Chip ``t`` at rate ``f`` is the
same chip whatever else was measured, so a resumed or re-scheduled map is the same map.
"""

from __future__ import annotations

import os

import numpy as np

from faults import FaultMap
from simulator import ArrayConfig
from training import model_digest
from training.baseline import DEFAULT_BATCH_SIZE
from training.fat import FAT_LR, chip_accuracy, fat_retrain

from .constraint import Constraint
from .errors import ResilienceError
from .executors import Executor, make_executor
from .resilience import ResilienceMap

__all__ = ["resilience_map", "map_chip"]


def map_chip(cfg: ArrayConfig, rate: float, trial: int, seed: int = 0, sites=None) -> FaultMap:
    """The random chip a resilience map measures at ``(rate, trial)`` for ``seed``.

    Drawn from its own stream, so it does not depend on the other rates on the grid.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, round(rate * 1_000_000), trial]))
    return FaultMap.random(cfg, rate, seed=rng, **({"sites": sites} if sites else {}))


def measure_chip(shared: dict, task) -> np.ndarray:
    """Executor task: accuracies ``(E,)`` of chip ``trial`` at ``rate`` after each amount."""
    rate, trial = task
    s = shared
    epochs = s["epochs"]
    fm = map_chip(s["cfg"], rate, trial, s["seed"], s["sites"])
    acc = np.full(len(epochs), np.nan)

    def record(amount, m):
        acc[epochs.index(amount)] = chip_accuracy(m, s["data"], s["cfg"], fm)

    fat_retrain(s["model"], fm, s["data"], epochs[-1], seed=s["seed"] + trial, lr=s["lr"],
                batch_size=s["batch_size"], checkpoints=epochs, on_checkpoint=record)
    return acc


def resilience_map(model, data, cfg: ArrayConfig, fault_rates, epochs, trials: int | None = None, seed: int = 0,
                   out=None, lr: float = FAT_LR, batch_size: int = DEFAULT_BATCH_SIZE, sites=None,
                   progress: bool | None = None, constraint=None, max_trials: int | None = None,
                   batch: int | None = None, executor=None) -> ResilienceMap:
    """Measure accuracy over fault rate x retraining amount x chips on the simulator.

    Parameters
    ----------
    model : nn.Module
        The pretrained float model.
    data : training.Dataset
    cfg : ArrayConfig
    fault_rates, epochs : sequences of float
        The grid; ``0`` is added to ``epochs`` if missing (bypass only).
    trials : int, optional
        Chips per rate (without ``constraint``: all of them, default 3; with it: the
        first round, default ``constraint.min_trials``).
    seed : int
        Chips and retraining runs derive from it.
    out : path or None
        JSON file written after every chip; if it exists with the same grid and
        settings, measured chips are kept and only the missing ones run (resume).
    constraint : Constraint or float, optional
        Sample adaptively for this constraint (a float is a drop with the default pass
        target and confidence); see the module docstring.
    max_trials : int, optional
        Budget of chips per rate for adaptive sampling (default 3 x ``trials``).
    batch : int, optional
        Chips added per unsettled rate and round (default ``max(2, trials // 4)``).
    executor : None, str, int or Executor
        Where the chips run (:func:`efat.executors.make_executor`); same map on every one.
    """
    c = None if constraint is None else Constraint.of(constraint)
    trials = _count("trials", trials, (c.min_trials if c else 3))
    max_trials = _count("max_trials", max_trials, 3 * trials) if c else trials
    batch = _count("batch", batch, max(2, trials // 4))
    if max_trials < trials:
        raise ResilienceError(f"max_trials must be >= trials = {trials}; got {max_trials}.")
    epochs = sorted(set([0.0] + [float(e) for e in epochs]))
    fault_rates = [float(r) for r in fault_rates]
    sites = tuple(sites) if sites is not None else None
    meta = {"array": [cfg.rows, cfg.cols], "precision": cfg.precision.name, "trials": trials, "seed": seed,
            "lr": lr, "batch_size": batch_size, "sites": list(sites) if sites else "all",
            "model": type(model).__name__, "data": getattr(data, "name", "?"),
            "model_digest": model_digest(model), "data_fingerprint": data.fingerprint()}
    if c is not None:
        meta["sampling"] = {"constraint": c.to_json(), "max_trials": max_trials, "batch": batch}
    baseline = chip_accuracy(model, data, cfg, None)
    acc = np.full((len(fault_rates), len(epochs), trials), np.nan)
    if out is not None:
        acc = _resume(out, fault_rates, epochs, meta, baseline, acc)
    state = {"acc": acc}

    def current() -> ResilienceMap:
        return ResilienceMap(fault_rates, epochs, state["acc"], baseline, meta)

    def record(task, accuracies):
        i, t = fault_rates.index(task[0]), task[1]
        if t >= state["acc"].shape[2]:
            grown = np.full((*state["acc"].shape[:2], t + 1), np.nan)
            grown[:, :, :state["acc"].shape[2]] = state["acc"]
            state["acc"] = grown
        state["acc"][i, :, t] = accuracies
        if out is not None:
            current().save(out)  # the unit of work is one chip

    shared = {"model": model, "data": data, "cfg": cfg, "epochs": epochs, "seed": seed, "lr": lr,
              "batch_size": batch_size, "sites": sites}
    wanted = np.full(len(fault_rates), trials)
    owned = not isinstance(executor, Executor)
    ex = make_executor(executor)
    try:
        while True:
            measured = current().measured
            tasks = [(fault_rates[i], t) for i in range(len(fault_rates)) for t in range(wanted[i])
                     if t >= measured.shape[1] or not measured[i, t]]
            if tasks:
                ex.run(measure_chip, tasks, shared, desc="resilience map (chips)", progress=progress,
                       on_result=lambda k, a: record(tasks[k], a))
            if c is None:
                break
            # decide on the chips each round asked for, never on more a resumed file may hold
            prefix = np.where(np.arange(state["acc"].shape[2]) < wanted[:, None], 1.0, np.nan)[:, None, :]
            decided = ResilienceMap(fault_rates, epochs, state["acc"] * prefix, baseline, meta)
            more = ~decided.settled(c) & (wanted < max_trials)
            if not more.any():
                break
            wanted = np.where(more, np.minimum(wanted + batch, max_trials), wanted)
    finally:
        if owned:
            ex.close()
    rmap = current()
    if out is not None:
        rmap.save(out)
    return rmap


def _count(name: str, value, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ResilienceError(f"{name} must be an int >= 1; got {value!r}.")
    return value


def _resume(path, fault_rates, epochs, meta, baseline, acc):
    if not os.path.exists(path):
        return acc
    old = ResilienceMap.load(path)
    same = (old.fault_rates.tolist() == fault_rates and old.epochs.tolist() == epochs
            and old.meta == meta and abs(old.baseline - baseline) < 1e-12)
    if not same:
        raise ResilienceError(
            f"{path} holds a resilience map of another grid or setting; remove it or choose another --out."
        )
    return np.array(old.accuracy, dtype=float)
