"""The mixed-precision fault-injection study (MPGemmFI, CLUSTER 2024, on our array).

One trained model, the same weights, run on arrays of several precisions (FP32, FP16, BF16
and int8 by default), under:

* ``bits``: transient flips of one bit of one register site (act, weight, product, psum),
  or of GEMM results as they leave the array (``output``, what MPGemmFI injects), for every
  bit of every site, at a rate of ``per_image`` flips per image and GEMM (Poisson, placed
  uniformly over the GEMM's cycles and PEs, or over its results);
* ``stuck``: the same bit stuck at 0 or at 1 in a share of the PEs (permanent faults);
* ``ber``: flips of every register bit at a sweep of bit-error rates, without protection
  and with the range check (:class:`protect.RangeCheck`, zeroing or clamping what it flags).

Every accuracy is one model run on the simulator (``fast`` engine), one task of an
executor (serial, processes or Dask: the same numbers on each). Each study writes a CSV of
every run and a PNG; a run interrupted keeps the finished tasks in ``NAME.progress.json``
and resumes from them. Seeds are per task (study seed, precision, site, bit, trial).
"""

from __future__ import annotations

import math
import os

import numpy as np

from .tasks import run_resumable, task_key, task_seed, write_rows

__all__ = ["STUDIES", "PRECISION_NAMES", "run_study", "field_of", "summarize_bits", "summarize_ber"]

PRECISION_NAMES = ("fp32", "fp16", "bf16", "int8")
STUDIES = ("bits", "stuck", "ber")
SITES_AND_OUTPUT = ("act", "weight", "product", "psum", "output")


def _precision(name):
    from simulator import precision_by_name

    return precision_by_name(name)


def field_of(precision_name: str, site: str, bit: int) -> str:
    """``"sign"``, ``"exponent"``, ``"mantissa"`` (float registers) or ``"int"``."""
    p = _precision(precision_name)
    if not hasattr(p, "field_of_bit"):
        return "int"
    return p.field_of_bit("psum" if site == "output" else site, bit)


def _site_width(precision_name: str, site: str) -> int:
    return 32 if site == "output" else _precision(precision_name).site_bits(site)


# -- the tasks (module level: they run in worker processes) ------------------------------

def _run_task(shared, task):
    """One model run: ``task`` names the study, precision, fault and trial; returns a result dict."""
    from faults import FaultMap, TransientFaults
    from mapping import run_model
    from simulator import ArrayConfig, SystolicArray

    prec = _precision(task["precision"])
    cfg = ArrayConfig(*shared["shape"], prec)
    qm = shared["models"][task["precision"]]
    data = (shared["x"], shared["y"])
    seed = task_seed(shared["seed"], task["study"], task["precision"], task.get("site"), task.get("bit"),
                 task.get("value"), task.get("ber"), task["trial"])
    flips, array, protect = None, SystolicArray(cfg), None
    if task["study"] == "bits":
        if task["site"] == "output":
            flips = TransientFaults(seed=seed, out_per_image=shared["per_image"], out_bits=(task["bit"],))
        else:
            flips = TransientFaults(per_image=shared["per_image"], seed=seed, sites=(task["site"],), bits=(task["bit"],))
    elif task["study"] == "stuck":
        fm = FaultMap.random(cfg, shared["stuck_rate"], seed=seed, sites=(task["site"],), bits=[task["bit"]],
                             value=task["value"])
        array = SystolicArray(cfg, fm)
    else:
        flips = TransientFaults(ber=task["ber"], seed=seed)
        if task["check"] != "none":
            protect = shared["checks"][task["precision"]].with_mode(task["check"]).session(measure=True)
    res = run_model(qm, data, array, batch_size=shared["batch_size"], flips=flips, protect=protect, progress=False)
    out = {"accuracy": res.accuracy}
    if protect is not None:
        t = res.protection.total()
        out.update(outputs=t.outputs, flagged=t.flagged, corrupted=t.corrupted, detected=t.detected,
                   false_alarms=t.false_alarms, host_ops=res.protection.host_ops)
    return out


def _tasks(study, precisions, trials, shared, only_bits=None):
    tasks = []

    def bits_of(p, site):
        return [b for b in range(_site_width(p, site)) if only_bits is None or b in only_bits]

    for p in precisions:
        for t in range(trials):
            if study == "bits":
                for site in SITES_AND_OUTPUT:
                    tasks += [dict(study=study, precision=p, site=site, bit=b, trial=t) for b in bits_of(p, site)]
            elif study == "stuck":
                for site in SITES_AND_OUTPUT[:4]:
                    tasks += [dict(study=study, precision=p, site=site, bit=b, value=v, trial=t)
                              for b in bits_of(p, site) for v in (0, 1)]
            else:
                tasks += [dict(study=study, precision=p, ber=float(ber), check=c, trial=t)
                          for ber in shared["bers"] for c in ("none", "zero", "clamp")]
    return tasks


def run_study(study, model, data, shape, precisions=PRECISION_NAMES, trials=2, seed=0, out_dir="examples/out",
              executor=None, per_image=1.0, stuck_rate=0.01, bers=(1e-9, 1e-8, 1e-7, 1e-6),
              batch_size=256, calib=None, progress=None, bits=None):
    """Run one study; returns ``(rows, csv path)``. ``data`` is a Dataset (its test split is used);
    ``bits`` restricts the bits and stuck studies to these bit positions."""
    from mapping import quantize
    from protect import RangeCheck
    from simulator import ArrayConfig

    if study not in STUDIES:
        raise ValueError(f"study must be one of {list(STUDIES)}; got {study!r}.")
    unknown = [p for p in precisions if p not in PRECISION_NAMES]
    if unknown or not precisions:
        raise ValueError(f"precisions must be a non-empty selection of {list(PRECISION_NAMES)}; got {list(precisions)}.")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an int >= 1; got {trials!r}.")
    calib = data.x_train[:512] if calib is None else calib
    models = {p: quantize(model, calib, _precision(p)) for p in precisions}
    shared = dict(shape=tuple(shape), models=models, x=data.x_test, y=data.y_test, seed=seed, per_image=per_image,
                  stuck_rate=stuck_rate, bers=tuple(bers), batch_size=batch_size)
    if study == "ber":
        shared["checks"] = {p: RangeCheck.calibrate(models[p], calib, ArrayConfig(*shape, _precision(p)))
                            for p in precisions}
    settings = {k: v for k, v in shared.items() if k in ("shape", "seed", "per_image", "stuck_rate", "bers",
                                                         "batch_size")}
    settings["bits"] = None if bits is None else sorted(bits)
    settings.update(model=type(model).__name__, data=data.name, n_test=len(data.y_test))
    tasks = _tasks(study, precisions, trials, shared, None if bits is None else set(bits))
    done = run_resumable(_run_task, tasks, shared, settings, os.path.join(out_dir, f"fi_{study}.progress.json"),
                         executor, f"{study} study", progress)
    baseline = {p: _run_task(shared, dict(study="ber", precision=p, ber=0.0, check="none", trial=0))["accuracy"]
                for p in precisions}
    rows = []
    for t in tasks:
        r = dict(t, **done[task_key(t)])
        r["baseline"] = baseline[t["precision"]]
        if "bit" in t:
            r["field"] = field_of(t["precision"], t["site"], t["bit"])
        rows.append(r)
    path = os.path.join(out_dir, f"fi_{study}.csv")
    write_rows(path, rows)
    return rows, path


# -- summaries -------------------------------------------------------------------------

def _mean(rows, **match):
    vals = [r["accuracy"] for r in rows if all(r.get(k) == v for k, v in match.items())]
    return float(np.mean(vals)) if vals else math.nan


def summarize_bits(rows, precisions) -> list[dict]:
    """Per precision and site: the worst bit (lowest mean accuracy) and what field it is."""
    out = []
    for p in precisions:
        for site in SITES_AND_OUTPUT:
            bits = sorted({r["bit"] for r in rows if r["precision"] == p and r.get("site") == site})
            if not bits:
                continue
            accs = [(_mean(rows, precision=p, site=site, bit=b), b) for b in bits]
            acc, b = min(accs)
            base = next(r["baseline"] for r in rows if r["precision"] == p)
            out.append(dict(precision=p, site=site, worst_bit=b, field=field_of(p, site, b), accuracy=acc,
                            baseline=base, bits_costing_1pt=sum(1 for a, _ in accs if a < base - 0.01)))
    return out


def summarize_ber(rows, precisions) -> list[dict]:
    """Per precision and BER: accuracy without check, with zeroing and clamping, the share
    of the lost accuracy each recovers, and the check's detection rate."""
    out = []
    for p in precisions:
        for ber in sorted({r["ber"] for r in rows if r["precision"] == p}):
            sel = [r for r in rows if r["precision"] == p and r["ber"] == ber]
            base = sel[0]["baseline"]
            acc = {c: _mean(sel, check=c) for c in ("none", "zero", "clamp")}
            lost = base - acc["none"]
            zero = [r for r in sel if r["check"] == "zero"]
            corrupted = sum(int(r["corrupted"]) for r in zero)
            out.append(dict(precision=p, ber=ber, baseline=base, none=acc["none"], zero=acc["zero"],
                            clamp=acc["clamp"],
                            recovered_zero=(acc["zero"] - acc["none"]) / lost if lost > 0.005 else math.nan,
                            recovered_clamp=(acc["clamp"] - acc["none"]) / lost if lost > 0.005 else math.nan,
                            detection=sum(int(r["detected"]) for r in zero) / corrupted if corrupted else math.nan,
                            flag_rate=sum(int(r["flagged"]) for r in zero) / max(1, sum(int(r["outputs"]) for r in zero))))
    return out
