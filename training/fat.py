"""Fault-aware training (FAP+T) and the resilience maps built from it.

**FAT** retrains a pretrained model for one chip: every weight that bypass drops on that
chip (weight ``W[k, n]`` on a faulty PE ``(k mod R, n mod C)``, see
:func:`mapping.bypass_masks`) is set to zero and held there (its gradient is masked and
it is re-zeroed after every step), and the rest learn to compensate. The amount is in
epochs, fractions allowed (counted in batches). A run of ``e`` epochs is exactly the
first ``round(e * batches_per_epoch)`` steps of any longer run with the same seed, so one
run, evaluated at each amount as it passes it, stands for every amount on a grid.

Accuracy is always measured **on the simulator**: the retrained model, quantized to
int8 (calibrated on 512 training inputs), runs on the chip with bypass.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

from faults import FaultMap
from mapping import apply_masks, bypass_masks, run_model
from simulator import ArrayConfig, SystolicArray

from .baseline import DEFAULT_BATCH_SIZE, DEFAULT_LR, train
from .resilience import ResilienceError, ResilienceMap

__all__ = ["fat_retrain", "chip_accuracy", "resilience_map", "map_chip", "N_CALIB", "FAT_LR"]

N_CALIB = 512
#: Retraining starts from a trained model: a smaller step than from scratch.
FAT_LR = DEFAULT_LR / 3


def chip_accuracy(model, data, cfg: ArrayConfig, fault_map: FaultMap | None, mitigation="bypass") -> float:
    """Accuracy of ``model`` (int8) on the test split, on the chip ``fault_map`` (None: fault-free)."""
    arr = SystolicArray(cfg, fault_map, mitigation if fault_map is not None else None)
    return run_model(model, data, arr, calib=data.x_train[:N_CALIB], progress=False).accuracy


def fat_retrain(model, fault_map: FaultMap, data, epochs: float, seed: int = 0, lr: float = FAT_LR,
                batch_size: int = DEFAULT_BATCH_SIZE, checkpoints=(), on_checkpoint=None,
                progress: bool = False):
    """Fault-aware retraining of a copy of ``model`` for the chip ``fault_map``.

    Parameters
    ----------
    model : nn.Module
        The pretrained float model (not modified).
    fault_map : faults.FaultMap
        Which PEs are faulty (a chip's map, or a group's fused map).
    data : training.Dataset
    epochs : float
        Retraining amount (>= 0; fractions are counted in batches).
    seed : int
        Seed of the batch order.
    checkpoints : sequence of float
        Amounts (<= epochs) at which ``on_checkpoint(amount, model)`` is called, as the
        run passes them (0 before the first step).

    Returns
    -------
    nn.Module
        The retrained copy, with the masked weights exactly zero.
    """
    if not (isinstance(epochs, (int, float)) and math.isfinite(epochs) and epochs >= 0):
        raise ValueError(f"epochs must be a finite number >= 0; got {epochs!r}.")
    pruned = bypass_masks(model, fault_map)
    m = apply_masks(copy.deepcopy(model), pruned)
    keep = {f"{name}.weight": (~mask).to(torch.float32) for name, mask in pruned.items()}
    params = dict(m.named_parameters())
    per_epoch = math.ceil(len(data.x_train) / batch_size)
    at_step = {}
    for amount in sorted(set(float(c) for c in checkpoints)):
        if amount > epochs + 1e-12:
            raise ValueError(f"checkpoint {amount} lies beyond the retraining amount {epochs}.")
        at_step.setdefault(round(amount * per_epoch), []).append(amount)
    step = 0

    def after_step(model_):
        nonlocal step
        with torch.no_grad():
            for name, k in keep.items():
                params[name].mul_(k)
        step += 1
        for amount in at_step.get(step, ()):
            on_checkpoint(amount, model_)

    for amount in at_step.get(0, ()):
        on_checkpoint(amount, m)
    train(m, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress,
          after_step=after_step, grad_mask=keep)
    return m.eval()


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
    import os

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


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of a call."""
    t = time.perf_counter()
    res = fn(*args, **kwargs)
    return res, time.perf_counter() - t
