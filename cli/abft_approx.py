"""ApproxABFT against classic ABFT under transient faults (``efat abft approx``).

For each model: per-layer thresholds are calibrated by fault injection on training images
(:func:`protect.calibrate_thresholds`, at ``calib_ber``, the model's accuracy budget ``max_drop``
split evenly over its layers), once for whole-GEMM checks and once for blocks of about
``block_macs`` multiply-accumulates (:func:`protect.block_shapes`). Then model runs on the test
images with transient flips at every bit-error rate, ``runs`` draws per rate, under five schemes:

* ``none``: no protection;
* ``classic``: ApproxABFT with threshold 0 and whole-GEMM checks (recompute on any mismatch);
* ``approx``: the calibrated thresholds, whole-GEMM checks;
* ``classic_blocked`` / ``approx_blocked``: the same on blocks.

Every scheme of a draw uses the same fault source seed. Rows: accuracy, blocks, mismatched,
tolerated, recovered and unresolved blocks, recovery runs, and the cycles of the unprotected
GEMMs, the checksums and the recovery on the timing model; ``overhead = (checksum + recovery) /
base``. Both phases are resumable task lists (:mod:`cli.tasks`).
"""

from __future__ import annotations

import math
import os

import numpy as np

from .tasks import run_resumable, task_key, task_seed, write_rows

__all__ = ["SCHEMES", "PAPER", "run_approx", "summarize", "comparisons", "plot_approx"]

SCHEMES = ("none", "classic", "approx", "classic_blocked", "approx_blocked")
#: The paper's v1 (Xue et al. 2023) ranges, in percent: computing overhead and accuracy of ApproxABFT
#: against classic ABFT, and the overhead of blocking against ApproxABFT without it.
PAPER = {"overhead": (-81.62, -25.92), "accuracy": (2.63, 72.56), "blocking": (-73.5, -6.56)}
_COLORS = dict(zip(SCHEMES, ("#7f7f7f", "#1f77b4", "#d62728", "#1f77b4", "#d62728")))
_COUNTS = ("gemms", "blocks", "mismatched", "tolerated", "recovered", "recomputed", "unresolved", "base_cycles",
           "checksum_cycles", "recovery_cycles")


def _cfg(shared):
    from simulator import ArrayConfig, precision_by_name

    return ArrayConfig(*shared["shape"], precision_by_name(shared["precision"]))


def _calibrate(shared, task):
    from protect import calibrate_thresholds

    m = task["model"]
    block = shared["blocks"][m] if task["blocking"] == "blocked" else None
    cal = calibrate_thresholds(shared["models"][m], shared["calib"], _cfg(shared), ber=shared["calib_ber"],
                               max_drop=shared["max_drop"] / len(shared["blocks"][m]), block=block,
                               runs=shared["calib_runs"], seed=task_seed(shared["seed"], "calibrate", m),
                               batch_size=shared["batch_size"])
    return {"reference": cal.reference, "layers": list(cal.layers),
            "details": {n: dict(vars(d)) for n, d in cal.details.items()}}


def _run(shared, task):
    from faults import TransientFaults
    from mapping import run_model
    from protect import ApproxAbft
    from simulator import SystolicArray

    m, scheme = task["model"], task["scheme"]
    cal = shared["calibrations"].get(m, {})
    blocks = shared["blocks"][m] if scheme.endswith("_blocked") else None
    protect = None
    if scheme.startswith("classic"):
        protect = ApproxAbft(0.0, block=blocks, recompute=shared["recompute"])
    elif scheme.startswith("approx"):
        c = cal["blocked" if blocks else "whole"]
        protect = ApproxAbft({n: d["threshold"] for n, d in c["details"].items()}, block=blocks,
                             recompute=shared["recompute"], layers=c["layers"])
    flips = TransientFaults(ber=task["ber"], seed=task_seed(shared["seed"], m, task["ber"], task["trial"]))
    res = run_model(shared["models"][m], shared["test"], SystolicArray(_cfg(shared)), batch_size=shared["batch_size"],
                    flips=flips, protect=protect, progress=False)
    out = {"accuracy": res.accuracy}
    if protect is not None:
        t = res.protection.total()
        out.update({k: getattr(t, k) for k in _COUNTS}, overhead=t.overhead)
    return out


def _task(shared, task):
    return _calibrate(shared, task) if task["phase"] == "calibrate" else _run(shared, task)


def run_approx(models, data, shape=(16, 16), precision="int8", bers=(1e-8, 3e-8, 1e-7, 3e-7, 1e-6), runs=3,
               calib_ber=None, max_drop=0.005, calib_images=512, calib_runs=2, block_macs=None, batch_size=64,
               recompute=1, seed=0, out_dir="examples/out", executor=None, n_test=None, progress=None):
    """Run the study; returns ``(rows, threshold rows, csv path)``.

    ``models``: ``{name: float model}`` trained on ``data`` (a Dataset: calibration on the first
    ``calib_images`` training images, runs on the first ``n_test`` test images, all by default).
    ``block_macs``: MACs per block; default ``32 * 32 * median K`` of the model's layers (a layer of
    the median reduction length gets 32 x 32 blocks). ``calib_ber``: default ``max(bers)``.
    """
    from mapping import quantize
    from protect import block_shapes, gemm_shapes
    from simulator import ArrayConfig, precision_by_name

    for name, v in (("runs", runs), ("calib_images", calib_images), ("calib_runs", calib_runs),
                    ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v!r}.")
    if not bers or any(not 0 < b <= 1 for b in bers):
        raise ValueError(f"bers must be bit-error rates in (0, 1]; got {list(bers)}.")
    calib_ber = max(bers) if calib_ber is None else calib_ber
    if not 0 < calib_ber <= 1:
        raise ValueError(f"calib_ber must be a bit-error rate in (0, 1]; got {calib_ber!r}.")
    if not 0 <= max_drop <= 1:
        raise ValueError(f"max_drop must be an accuracy fraction in [0, 1]; got {max_drop!r}.")
    if block_macs is not None and not 0 < block_macs < math.inf:
        raise ValueError(f"block_macs must be a number > 0 (MACs per block); got {block_macs!r}.")
    prec = precision_by_name(precision)
    cfg = ArrayConfig(*shape, prec)
    qms, blocks, targets = {}, {}, {}
    for name, model in models.items():
        qms[name] = quantize(model, data.x_train[:512], prec)
        shapes = gemm_shapes(qms[name], data.x_train[:1], cfg)
        targets[name] = block_macs or 32 * 32 * float(np.median([k for _, k, _ in shapes.values()]))
        blocks[name] = block_shapes(shapes, targets[name])
    shared = dict(shape=tuple(shape), precision=precision, seed=seed, batch_size=batch_size, models=qms,
                  blocks=blocks, calib=(data.x_train[:calib_images], data.y_train[:calib_images]),
                  test=(data.x_test[:n_test], data.y_test[:n_test]), calib_ber=calib_ber, max_drop=max_drop,
                  calib_runs=calib_runs, recompute=recompute)
    settings = dict(shape=list(shape), precision=precision, seed=seed, batch_size=batch_size, data=data.name,
                    models=list(models), blocks={m: {n: list(b) for n, b in bl.items()} for m, bl in blocks.items()},
                    calib_ber=calib_ber, max_drop=max_drop, calib_images=calib_images, calib_runs=calib_runs)
    os.makedirs(out_dir, exist_ok=True)
    calib_tasks = [dict(phase="calibrate", model=m, blocking=b) for m in models for b in ("whole", "blocked")]
    done = run_resumable(_task, calib_tasks, shared, settings, os.path.join(out_dir, "abft_approx_calib.progress.json"),
                         executor, "ApproxABFT thresholds", progress)
    shared["calibrations"] = {m: {b: done[task_key(dict(phase="calibrate", model=m, blocking=b))]
                                  for b in ("whole", "blocked")} for m in models}
    tasks = [dict(phase="run", model=m, ber=b, scheme=s, trial=t) for m in models for b in bers for t in range(runs)
             for s in SCHEMES]
    settings.update(bers=list(bers), runs=runs, recompute=recompute, n_test=len(shared["test"][1]),
                    calibrations=shared["calibrations"])
    done = run_resumable(_task, tasks, shared, settings, os.path.join(out_dir, "abft_approx.progress.json"),
                         executor, "ApproxABFT runs", progress)
    rows = [dict(model=t["model"], precision=precision, ber=t["ber"], scheme=t["scheme"], trial=t["trial"],
                 **done[task_key(t)]) for t in tasks]
    thresholds = []
    for m in models:
        for b in ("whole", "blocked"):
            for layer, d in shared["calibrations"][m][b]["details"].items():
                shape_ = blocks[m].get(layer) if b == "blocked" else None
                thresholds.append(dict(model=m, blocking=b, layer=layer, block_rows=shape_[0] if shape_ else "",
                                       block_cols=shape_[1] if shape_ else "", **d))
    path = os.path.join(out_dir, "abft_approx.csv")
    write_rows(path, rows)
    write_rows(os.path.join(out_dir, "abft_approx_thresholds.csv"), thresholds)
    return rows, thresholds, path


def summarize(rows) -> list[dict]:
    """Per (model, ber, scheme): mean accuracy (min, max over the draws) and mean overheads."""
    groups = {}
    for r in rows:
        groups.setdefault((r["model"], float(r["ber"]), r["scheme"]), []).append(r)
    out = []
    for (model, ber, scheme), rs in groups.items():
        acc = np.array([float(r["accuracy"]) for r in rs])
        s = dict(model=model, ber=ber, scheme=scheme, runs=len(rs), accuracy=float(acc.mean()),
                 acc_min=float(acc.min()), acc_max=float(acc.max()), overhead=0.0, recovery=0.0, recovered=0)
        if scheme != "none":
            s["overhead"] = float(np.mean([float(r["overhead"]) for r in rs]))
            s["recovery"] = float(np.mean([int(r["recovery_cycles"]) / int(r["base_cycles"]) for r in rs]))
            s["recovered"] = sum(int(r["recovered"]) for r in rs)
        out.append(s)
    return out


def comparisons(summary) -> list[dict]:
    """Per (model, ber): ApproxABFT against classic ABFT (overhead change in %, accuracy change in
    points), and blocked ApproxABFT against ApproxABFT without blocks (overhead change in %)."""
    by = {(s["model"], s["ber"], s["scheme"]): s for s in summary}
    out = []
    for model, ber in dict.fromkeys((s["model"], s["ber"]) for s in summary):
        g = {sc: by[model, ber, sc] for sc in SCHEMES}

        def change(a, b):
            return 100 * (a - b) / b if b else float("nan")

        out.append(dict(model=model, ber=ber,
                        overhead=change(g["approx"]["overhead"], g["classic"]["overhead"]),
                        accuracy=100 * (g["approx"]["accuracy"] - g["classic"]["accuracy"]),
                        blocking=change(g["approx_blocked"]["overhead"], g["approx"]["overhead"]),
                        blocked_accuracy=100 * (g["approx_blocked"]["accuracy"] - g["approx"]["accuracy"])))
    return out


def plot_approx(path, summary, title) -> None:
    """Per model: accuracy and overhead against the bit-error rate, one line per scheme."""
    from .ax_figures import _plt

    plt = _plt()
    models = list(dict.fromkeys(s["model"] for s in summary))
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4 * len(models)), squeeze=False)
    for (ax_a, ax_o), model in zip(axes, models):
        for scheme in SCHEMES:
            rs = sorted((s for s in summary if s["model"] == model and s["scheme"] == scheme), key=lambda s: s["ber"])
            xs = [s["ber"] for s in rs]
            style = "--" if scheme.endswith("_blocked") else "-"
            c = _COLORS[scheme]
            ax_a.plot(xs, [100 * s["accuracy"] for s in rs], "o" + style, color=c, label=scheme)
            ax_a.fill_between(xs, [100 * s["acc_min"] for s in rs], [100 * s["acc_max"] for s in rs], color=c,
                              alpha=0.08)
            if scheme != "none":
                ax_o.plot(xs, [100 * s["overhead"] for s in rs], "o" + style, color=c, label=scheme)
        ax_a.set(xscale="log", xlabel="bit-error rate (per register bit and cycle)", ylabel="accuracy (%)",
                 title=f"{model}: accuracy")
        ax_o.set(xscale="log", xlabel="bit-error rate (per register bit and cycle)",
                 ylabel="overhead (% of unprotected cycles)", title=f"{model}: checksums + recovery")
        for ax in (ax_a, ax_o):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
