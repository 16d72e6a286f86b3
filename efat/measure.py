"""Measuring a resilience map: FAT runs on random chips, evaluated on the simulator.

For each fault rate on the grid and each trial, one random chip (:func:`map_chip`) gets
one FAT run (:func:`training.fat_retrain`) up to the largest amount, evaluated (int8,
on the chip, with bypass) at every amount on the grid as the run passes it. The map is
saved after every chip, and a rerun resumes (``docs/semantics.md``, "eFAT", step 1).
"""

from __future__ import annotations

import os

import numpy as np

from faults import FaultMap
from simulator import ArrayConfig
from training.baseline import DEFAULT_BATCH_SIZE
from training.fat import FAT_LR, chip_accuracy, fat_retrain

from .errors import ResilienceError
from .resilience import ResilienceMap

__all__ = ["resilience_map", "map_chip"]


def map_chip(cfg: ArrayConfig, rate: float, trial: int, seed: int = 0, sites=None) -> FaultMap:
    """The random chip a resilience map measures at ``(rate, trial)`` for ``seed``.

    Drawn from its own stream, so it does not depend on the other rates on the grid.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, round(rate * 1_000_000), trial]))
    return FaultMap.random(cfg, rate, seed=rng, **({"sites": sites} if sites else {}))


def resilience_map(model, data, cfg: ArrayConfig, fault_rates, epochs, trials: int = 3, seed: int = 0,
                   out=None, lr: float = FAT_LR, batch_size: int = DEFAULT_BATCH_SIZE, sites=None,
                   progress: bool | None = None) -> ResilienceMap:
    """Measure accuracy over fault rate x retraining amount x trials on the simulator.

    For each rate and trial, one random chip (:meth:`FaultMap.random`) gets one FAT run up
    to the largest amount, evaluated (int8, on the chip, with bypass) at every amount on
    the grid as the run passes it.

    Parameters
    ----------
    model : nn.Module
        The pretrained float model.
    data : training.Dataset
    cfg : ArrayConfig
    fault_rates, epochs : sequences of float
        The grid; ``0`` is added to ``epochs`` if missing (bypass only).
    trials : int
        Random chips per rate.
    out : path or None
        JSON file written after every (rate, trial) run; if it exists with the same
        grid and settings, measured runs are kept and only the missing ones run (resume).
    """
    from tqdm.auto import tqdm

    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ResilienceError(f"trials must be an int >= 1; got {trials!r}.")
    epochs = sorted(set([0.0] + [float(e) for e in epochs]))
    fault_rates = [float(r) for r in fault_rates]
    sites = tuple(sites) if sites is not None else None
    meta = {"array": [cfg.rows, cfg.cols], "precision": cfg.precision.name, "trials": trials, "seed": seed,
            "lr": lr, "batch_size": batch_size, "sites": list(sites) if sites else "all",
            "model": type(model).__name__, "data": getattr(data, "name", "?")}
    acc = np.full((len(fault_rates), len(epochs), trials), np.nan)
    baseline = chip_accuracy(model, data, cfg, None)
    if out is not None:
        acc = _resume(out, fault_rates, epochs, meta, baseline, acc)
    rmap = ResilienceMap(fault_rates, epochs, acc, baseline, meta)
    todo = [(i, t) for i in range(len(fault_rates)) for t in range(trials) if np.isnan(acc[i, :, t]).any()]
    quiet = None if progress is None else not progress  # None: tqdm shows bars on a terminal only
    for i, t in tqdm(todo, desc="resilience map", unit="chip", disable=quiet):
        fm = map_chip(cfg, fault_rates[i], t, seed, sites)

        def record(amount, m, i=i, t=t, fm=fm):
            acc[i, epochs.index(amount), t] = chip_accuracy(m, data, cfg, fm)

        fat_retrain(model, fm, data, epochs[-1], seed=seed + t, lr=lr, batch_size=batch_size,
                    checkpoints=epochs, on_checkpoint=record)
        rmap = ResilienceMap(fault_rates, epochs, acc, baseline, meta)
        if out is not None:
            rmap.save(out)  # the unit of work is one (rate, trial) run
    if out is not None and not todo:
        rmap.save(out)
    return rmap


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
