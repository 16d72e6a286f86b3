"""Fault-aware training (FAP+T): retraining a model for one chip's faulty PEs.

**FAT** retrains a pretrained model for one chip: every weight that bypass drops on that
chip (weight ``W[k, n]`` on a faulty PE ``(k mod R, n mod C)``, see
:func:`mapping.bypass_masks`) is set to zero and held there (its gradient is masked and
it is re-zeroed after every step), and the rest learn to compensate. The amount is in
epochs, fractions allowed (counted in batches). A run of ``e`` epochs is exactly the
first ``round(e * batches_per_epoch)`` steps of any longer run with the same seed, so one
run, evaluated at each amount as it passes it, stands for every amount on a grid.

Accuracy is always measured **on the simulator** (:func:`chip_accuracy`): the retrained
model, quantized to int8 (calibrated on ``mapping.N_CALIB`` training inputs), runs on
the chip with bypass. Resilience maps built from FAT runs are :mod:`efat`'s.
"""

from __future__ import annotations

import copy
import math

import torch

from faults import FaultMap
from mapping import N_CALIB, apply_masks, bypass_masks, run_model
from simulator import ArrayConfig, SystolicArray

from .baseline import DEFAULT_BATCH_SIZE, DEFAULT_LR, TrainState, train

__all__ = ["fat_retrain", "chip_accuracy", "FAT_LR"]

#: Retraining starts from a trained model: a smaller step than from scratch.
FAT_LR = DEFAULT_LR / 3


def chip_accuracy(model, data, cfg: ArrayConfig, fault_map: FaultMap | None, mitigation="bypass") -> float:
    """Accuracy of ``model`` (int8) on the test split, on the chip ``fault_map`` (None: fault-free)."""
    arr = SystolicArray(cfg, fault_map, mitigation if fault_map is not None else None)
    return run_model(model, data, arr, calib=data.x_train[:N_CALIB], progress=False).accuracy


def fat_retrain(model, fault_map: FaultMap, data, epochs: float, seed: int = 0, lr: float = FAT_LR,
                batch_size: int = DEFAULT_BATCH_SIZE, checkpoints=(), on_checkpoint=None,
                progress: bool = False, state: TrainState | None = None):
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
    state : training.TrainState, optional
        Warm continuation: ``model`` is the result of an earlier run for a map whose
        faulty PEs are all in ``fault_map`` (the same map, for an exact continuation) and
        ``state`` where that run ended; this run trains on to ``epochs`` in total. The
        state is updated to the end of this run.

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
    step = state.step if state is not None else 0

    def after_step(model_):
        nonlocal step
        with torch.no_grad():
            for name, k in keep.items():
                params[name].mul_(k)
        step += 1
        for amount in at_step.get(step, ()):
            on_checkpoint(amount, model_)

    for amount in at_step.get(step, ()):
        on_checkpoint(amount, m)
    train(m, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=progress,
          after_step=after_step, grad_mask=keep, state=state)
    return m.eval()
