"""Approximate DNNs on the array (Siddique & Hoque, 2023, on our simulator).

Three studies, each a list of model runs on an executor, resumable, written as CSV:

* ``accuracy``: every model of ``--models`` on a fault-free array of every multiplier of
  ``--multipliers`` (int8 quantization, products through the multiplier's table), and with
  ``--finetune E`` after E epochs of approximation-aware fine-tuning;
* ``resilience``: the same faulty bit (site, bit, stuck value) on the same chips (a single
  PE, or a share of the PEs) for the exact multiplier and each approximate one: the
  accuracy each loses, side by side;
* ``retune``: per multiplier and fault rate, on the same chips: no mitigation, bypass (FAP),
  Fal-reTune (:func:`training.fal_retune`), FAT (FAP+T, ``--fat-epochs``), and Fal-reTune after
  a short FAT (``--short-epochs``: the FAT model's weights on faulty PEs, zero, are retuned so
  those PEs contribute as close to nothing as they can, without bypass hardware); accuracy and
  the seconds each mitigation took.

Chips: ``FaultMap.random(cfg, rate, seed)`` with a seed per (study seed, site, bit, value,
rate, trial), the same for every multiplier (all library multipliers have 16-bit product
registers, so the draws coincide); ``single`` stands for one faulty PE.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .tasks import run_resumable, task_key, task_seed, write_rows

__all__ = ["run_ax_study", "AX_STUDIES", "DEFAULT_MULTIPLIERS"]

AX_STUDIES = ("accuracy", "resilience", "retune")
DEFAULT_MULTIPLIERS = ("exact", "trunc:6", "bam:8,3", "drum:4", "mitchell", "ilm:1")
METHODS = ("none", "bypass", "fal-retune", "fat", "short-fat+fal-retune")


def _chip(cfg, rate, seed, sites, bits=None, value=None):
    from faults import FaultMap

    if rate == "single":
        rng = np.random.default_rng(seed)
        pes = np.zeros(cfg.shape, bool)
        pes[tuple(rng.integers(0, (cfg.rows, cfg.cols)))] = True
        return FaultMap.from_pes(cfg, pes, rng, sites=sites, bits=bits, value=value)
    return FaultMap.random(cfg, float(rate), seed=seed, sites=sites, bits=bits, value=value)


def _run_task(shared, task):
    from mapping import quantize, run_model
    from simulator import ArrayConfig, SystolicArray, multiplier
    from training import fal_retune, fat_retrain

    prec = multiplier(task["multiplier"])
    cfg = ArrayConfig(*shared["shape"], prec)
    data = shared["data"]
    model = shared["models"][task.get("model", shared["model_name"])]
    qm = shared["quantized"].get((task.get("model", shared["model_name"]), task["multiplier"]))
    if qm is None:
        qm = quantize(model, data.x_train[:512], prec)

    def acc(m, arr):
        return run_model(m, data, arr, progress=False).accuracy

    if task["study"] == "accuracy":
        out = {"accuracy": acc(qm, SystolicArray(cfg))}
        if shared["finetune"] > 0:
            from training import approx_finetune

            t0 = time.perf_counter()
            tuned = approx_finetune(model, data, prec, epochs=shared["finetune"], rows=cfg.rows, cols=cfg.cols)
            out.update(finetuned=acc(quantize(tuned, data.x_train[:512], prec), SystolicArray(cfg)),
                       finetune_seconds=time.perf_counter() - t0)
        return out
    seed = task_seed(shared["seed"], task.get("site"), task.get("bit"), task.get("value"), task["rate"], task["trial"])
    if task["study"] == "resilience":
        fm = _chip(cfg, task["rate"], seed, (task["site"],), [task["bit"]], task["value"])
        return {"accuracy": acc(qm, SystolicArray(cfg, fm)), "n_faulty": fm.n_faulty}
    fm = _chip(cfg, task["rate"], seed, shared["sites"])
    method = task["method"]
    t0 = time.perf_counter()
    if method == "none":
        return {"accuracy": acc(qm, SystolicArray(cfg, fm)), "seconds": 0.0, "n_faulty": fm.n_faulty}
    if method == "bypass":
        return {"accuracy": acc(qm, SystolicArray(cfg, fm, "bypass")), "seconds": 0.0, "n_faulty": fm.n_faulty}
    if method == "fal-retune":
        new, _ = fal_retune(qm, fm, shared["hists"][task["multiplier"]])
        secs = time.perf_counter() - t0
        return {"accuracy": acc(new, SystolicArray(cfg, fm)), "seconds": secs, "n_faulty": fm.n_faulty}
    epochs = shared["fat_epochs"] if method == "fat" else shared["short_epochs"]
    retrained = fat_retrain(model, fm, data, epochs, seed=0)
    q2 = quantize(retrained, data.x_train[:512], prec)
    if method == "fat":
        secs = time.perf_counter() - t0
        return {"accuracy": acc(q2, SystolicArray(cfg, fm, "bypass")), "seconds": secs, "n_faulty": fm.n_faulty}
    from training import activation_histograms

    hists = activation_histograms(q2, data.x_train[:512], cfg)
    new, _ = fal_retune(q2, fm, hists)
    secs = time.perf_counter() - t0
    return {"accuracy": acc(new, SystolicArray(cfg, fm)), "seconds": secs, "n_faulty": fm.n_faulty}


def _tasks(study, shared, models, multipliers, trials, rates, sites, bits):
    out = []
    if study == "accuracy":
        return [dict(study=study, model=m, multiplier=x) for m in models for x in multipliers]
    for rate in rates:
        for t in range(trials):
            for x in multipliers:
                if study == "retune":
                    out += [dict(study=study, multiplier=x, rate=rate, trial=t, method=m) for m in METHODS]
                    continue
                for site in sites:
                    width = (8, 8, 16, 32)[("act", "weight", "product", "psum").index(site)]
                    out += [dict(study=study, multiplier=x, site=site, bit=b, value=v, rate=rate, trial=t)
                            for b in range(width) if bits is None or b in bits for v in (0, 1)]
    return out


def run_ax_study(study, models: dict, data, shape, multipliers=DEFAULT_MULTIPLIERS, trials=2, seed=0,
                 out_dir="examples/out", executor=None, rates=("single", 0.01), sites=("act", "weight", "product", "psum"),
                 bits=None, fat_epochs=1.0, short_epochs=0.25, progress=None, finetune=0.0):
    """Run one study; ``models`` maps names to float models (``accuracy`` runs them all, the
    others the first; with ``finetune`` > 0 epochs it also reports each model's accuracy after
    approximation-aware fine-tuning, :func:`training.approx_finetune`). Returns ``(rows, csv path)``."""
    from mapping import quantize
    from simulator import ArrayConfig, multiplier
    from training import activation_histograms

    if study not in AX_STUDIES:
        raise ValueError(f"study must be one of {list(AX_STUDIES)}; got {study!r}.")
    for x in multipliers:
        multiplier(x)  # a clear error for an unknown name, before anything runs
    first = next(iter(models))
    quantized = {}
    for x in multipliers:
        for name in (models if study == "accuracy" else (first,)):
            quantized[(name, x)] = quantize(models[name], data.x_train[:512], multiplier(x))
    shared = dict(shape=tuple(shape), models=models, model_name=first, data=data, seed=seed, quantized=quantized,
                  sites=tuple(sites), fat_epochs=float(fat_epochs), short_epochs=float(short_epochs),
                  finetune=float(finetune))
    if study == "retune":
        shared["hists"] = {x: activation_histograms(quantized[(first, x)], data.x_train[:512],
                                                    ArrayConfig(*shape, multiplier(x))) for x in multipliers}
    settings = dict(study=study, shape=list(shape), seed=seed, models=list(models), data=data.name,
                    n_test=len(data.y_test), rates=list(rates), sites=list(sites), bits=bits,
                    fat_epochs=float(fat_epochs), short_epochs=float(short_epochs))
    if finetune:
        settings["finetune"] = float(finetune)
    tasks = _tasks(study, shared, list(models), list(multipliers), trials, list(rates), list(sites), bits)
    done = run_resumable(_run_task, tasks, shared, settings, os.path.join(out_dir, f"ax_{study}.progress.json"),
                         executor, f"{study} study", progress)
    baseline = {}
    if study != "accuracy":
        from mapping import run_model
        from simulator import SystolicArray

        for x in multipliers:
            baseline[x] = run_model(quantized[(first, x)], data, SystolicArray(ArrayConfig(*shape, multiplier(x))),
                                    progress=False).accuracy
    rows = []
    for t in tasks:
        r = dict(t, **done[task_key(t)])
        if baseline:
            r["baseline"] = baseline[t["multiplier"]]
            r["drop"] = r["baseline"] - r["accuracy"]
        rows.append(r)
    path = os.path.join(out_dir, f"ax_{study}.csv")
    write_rows(path, rows)
    return rows, path
