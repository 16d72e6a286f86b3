"""ABFT coverage under fault injection, on a trained model's real layer operands.

Three studies (each a list of resumable tasks, see :mod:`cli.tasks`):

* ``flips``: one transient flip per run, at every register site. Each trial picks a layer's GEMM
  (with probability proportional to its cycles: a flip strikes a uniformly random moment of the
  inference), and runs it unprotected and under every scheme, the flip landing uniformly on a
  (cycle, PE, bit) of that scheme's own array runs (its checksums included). Outcomes against
  the fault-free result: *masked* (right, no alarm), *tolerated* (floats: wrong by no more than
  the check's rounding tolerance, no alarm), *SDC* (wrong beyond that, no alarm: silent data
  corruption), *corrected* (alarm, right after global ABFT's correction), *detected* (alarm,
  still wrong: recompute), *needless alarm* (alarm, data right: the flip hit a checksum).
* ``ber``: model runs with transient flips at bit-error rates (``0``: false alarms on fault-free
  runs), unprotected and under every scheme with one recompute on an uncorrected alarm:
  accuracy, alarms, corrections, recomputes, unresolved GEMMs, cycle overhead.
* ``stuck``: chips with stuck-at faults: ABFT (global, one recompute) alarms on the GEMMs the
  faults corrupt, run after run, and recomputing does not clear them (*unresolved*): the fault
  is permanent, so the chip needs its fault map and bypass or FAT; the accuracy unprotected and
  with bypass shows what that buys.
"""

from __future__ import annotations

import os

import numpy as np

from .tasks import run_resumable, task_key, task_seed, write_rows

__all__ = ["STUDIES", "SCHEMES", "OUTCOMES", "run_coverage", "capture_gemms"]

STUDIES = ("flips", "ber", "stuck")
SCHEMES = ("none", "global", "fold", "replication")
OUTCOMES = ("masked", "tolerated", "sdc", "corrected", "detected", "needless")


class _Recorder:
    """A protection session that records every GEMM's operands and runs it unchanged."""

    def __init__(self):
        self.gemms = []

    def session(self):
        return self

    def run_gemm(self, name, array, x, w, matmul):
        self.gemms.append((name, np.array(x), np.array(w)))
        return matmul(x, w)


def capture_gemms(qm, x, cfg) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(layer, X, W)`` of every GEMM a fault-free run of ``x`` (one batch) makes."""
    from mapping import run_model
    from simulator import SystolicArray

    rec = _Recorder()
    run_model(qm, (x, None), SystolicArray(cfg), batch_size=len(x), protect=rec, progress=False)
    return rec.gemms


def _bits(a):
    return a.view(np.int32) if a.dtype == np.float32 else a


def _classify(res, want, tol) -> str:
    right = np.array_equal(_bits(res.out), _bits(want))
    within = right
    if not right and tol is not None:  # a float error no larger than the check's rounding tolerance
        with np.errstate(invalid="ignore"):
            within = bool((np.abs(res.out.astype(np.float64) - want.astype(np.float64)) <= tol[:, None]).all())
    if not res.detected:
        return "masked" if right else "tolerated" if within else "sdc"
    if res.corrected:
        return "corrected" if within else "detected"
    return "needless" if within else "detected"


def _flip_trials(shared, task):
    """``trials`` single-flip trials at one site: outcome counts per scheme."""
    from faults import random_flips
    from protect import run_scheme
    from protect.abft import float_tolerance
    from simulator import ArrayConfig, SystolicArray, gemm_timing, precision_by_name

    cfg = ArrayConfig(*shared["shape"], precision_by_name(task["precision"]))
    arr = SystolicArray(cfg)
    gemms = shared["gemms"][task["precision"]]
    weights = np.array([gemm_timing(cfg, x.shape[0], x.shape[1], w.shape[1]).n_cycles for _, x, w in gemms], float)
    counts = {s: dict.fromkeys(OUTCOMES, 0) for s in SCHEMES}
    shapes = {}
    for t in range(task["first"], task["first"] + task["trials"]):
        rng = np.random.default_rng(task_seed(shared["seed"], task["precision"], task["site"], t))
        g = int(rng.choice(len(gemms), p=weights / weights.sum()))
        _, x, w = gemms[g]
        want = arr.matmul(x, w).out
        tol = float_tolerance(x, w, cfg.precision) if want.dtype.kind == "f" else None
        for scheme in SCHEMES:
            if (g, scheme) not in shapes:  # the scheme's array runs, and their cycles
                calls = []
                run_scheme(scheme, x, w, lambda a, b: (calls.append((a.shape, b.shape)), arr.matmul(a, b).out)[1],
                           cfg)
                shapes[g, scheme] = calls, np.array([gemm_timing(cfg, a[0], a[1], b[1]).n_cycles for a, b in calls],
                                                    float)
            calls, cyc = shapes[g, scheme]
            target = int(rng.choice(len(calls), p=cyc / cyc.sum()))
            (m, k), (_, n) = calls[target]
            flips = random_flips(cfg, m, k, n, None, rng, sites=(task["site"],), count=1)
            index = iter(range(len(calls)))

            def run(a, b):
                return arr.matmul(a, b, flips=flips if next(index) == target else None).out

            counts[scheme][_classify(run_scheme(scheme, x, w, run, cfg), want, tol)] += 1
    return counts


def _model_run(shared, task):
    """One model run (the ber and stuck studies)."""
    from faults import FaultMap, TransientFaults
    from mapping import run_model
    from protect import Abft
    from simulator import ArrayConfig, SystolicArray, precision_by_name

    cfg = ArrayConfig(*shared["shape"], precision_by_name(task["precision"]))
    qm = shared["models"][task["precision"]]
    data = (shared["x"], shared["y"])
    seed = task_seed(shared["seed"], task)
    faults, flips, mitigation = None, None, None
    if task["study"] == "ber" and task["ber"] > 0:
        flips = TransientFaults(ber=task["ber"], seed=seed)
    if task["study"] == "stuck":
        faults = FaultMap.random(cfg, shared["stuck_rate"], seed=task_seed(shared["seed"], "chip", task["chip"]))
        mitigation = "bypass" if task["scheme"] == "bypass" else None
    scheme = task["scheme"]
    protect = Abft(scheme, recompute=1) if scheme in SCHEMES[1:] else None
    res = run_model(qm, data, SystolicArray(cfg, faults, mitigation), batch_size=shared["batch_size"], flips=flips,
                    protect=protect, progress=False)
    out = {"accuracy": res.accuracy}
    if protect is not None:
        layers = res.protection.layers.values()
        for key in ("gemms", "detected", "corrected", "recomputed", "unresolved"):
            out[key] = sum(getattr(s, key) for s in layers)
        out["overhead"] = res.protection.total_overhead()
    return out


def _task(shared, task):
    return _flip_trials(shared, task) if task["study"] == "flips" else _model_run(shared, task)


def _tasks(study, precisions, shared):
    if study == "flips":
        chunk = shared["chunk"]
        return [dict(study=study, precision=p, site=s, first=f, trials=min(chunk, shared["trials"] - f))
                for p in precisions for s in shared["sites"] for f in range(0, shared["trials"], chunk)]
    if study == "ber":
        return [dict(study=study, precision=p, ber=b, scheme=s, trial=t) for p in precisions for b in shared["bers"]
                for s in SCHEMES for t in range(shared["runs"])]
    return [dict(study=study, precision=p, chip=c, scheme=s) for p in precisions for c in range(shared["chips"])
            for s in ("none", "global", "bypass")]


def run_coverage(study, model, data, shape=(16, 16), precisions=("int8", "fp16"), seed=0, out_dir="examples/out",
                 executor=None, trials=300, chunk=50, capture_images=16, bers=(0.0, 1e-8, 1e-7, 1e-6), runs=2,
                 stuck_rate=0.05, chips=4, batch_size=256, n_test=None, progress=None):
    """Run one coverage study; returns ``(rows, csv path)``. ``data`` is a Dataset: the first
    ``n_test`` images of its test split (all by default) for the ber and stuck studies."""
    from mapping import quantize
    from simulator import SITES, ArrayConfig, precision_by_name

    if study not in STUDIES:
        raise ValueError(f"study must be one of {list(STUDIES)}; got {study!r}.")
    for name, v in (("trials", trials), ("chunk", chunk), ("runs", runs), ("chips", chips),
                    ("capture_images", capture_images)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v!r}.")
    precs = {p: precision_by_name(p) for p in precisions}
    calib = data.x_train[:512]
    models = {p: quantize(model, calib, precs[p]) for p in precisions}
    shared = dict(shape=tuple(shape), seed=seed, batch_size=batch_size, models=models, x=data.x_test[:n_test], y=data.y_test[:n_test],
                  trials=trials, chunk=chunk, sites=SITES, bers=tuple(bers), runs=runs, stuck_rate=stuck_rate,
                  chips=chips)
    if study == "flips":
        shared["gemms"] = {p: capture_gemms(models[p], data.x_test[:capture_images], ArrayConfig(*shape, precs[p]))
                           for p in precisions}
    settings = {k: shared[k] for k in ("shape", "seed", "batch_size", "trials", "chunk", "bers", "runs",
                                       "stuck_rate", "chips")}
    settings.update(model=type(model).__name__, data=data.name, n_test=len(shared["y"]), capture=capture_images)
    tasks = _tasks(study, list(precisions), shared)
    done = run_resumable(_task, tasks, shared, settings, os.path.join(out_dir, f"abft_{study}.progress.json"),
                         executor, f"ABFT {study}", progress)
    if study == "flips":  # one row per (precision, site, scheme): summed counts
        rows = []
        for p in precisions:
            for site in SITES:
                for scheme in SCHEMES:
                    c = dict.fromkeys(OUTCOMES, 0)
                    for t in tasks:
                        if t["precision"] == p and t["site"] == site:
                            for o in OUTCOMES:
                                c[o] += done[task_key(t)][scheme][o]
                    rows.append(dict(precision=p, site=site, scheme=scheme, trials=sum(c.values()), **c))
    else:
        rows = [dict(t, **done[task_key(t)]) for t in tasks]
    path = os.path.join(out_dir, f"abft_{study}.csv")
    write_rows(path, rows)
    return rows, path
