"""The time overhead of ABFT schemes on the memory-aware timing model, and the intensity-guided
choice against global ABFT everywhere (the shape of Kosaian & Rashmi, SC21, on our array).

For every model, batch size, array size and bandwidth: each layer's GEMM is timed unprotected
and under every protecting scheme (:func:`protect.scheme_timing`); the intensity-guided choice
takes per layer the scheme with the fewest cycles. Overheads are of the whole model
(protected cycles / unprotected - 1); the improvement factor is global ABFT's overhead over
the intensity-guided one. Pure arithmetic on layer shapes: no weights, no simulation.
"""

from __future__ import annotations

import itertools
import math
import numpy as np

from protect import CHECKSUMS, PROTECTING, choose_scheme, scheme_cost
from simulator import ArrayConfig, MemoryConfig, precision_by_name, zoo

__all__ = ["OWN_MODELS", "ZOO_MODELS", "model_gemms", "overhead_rows", "factor_ranges", "plot_overhead",
           "PAPER_RANGE"]

#: The models of our zoo, on MNIST-sized inputs (timing only: untrained weights do not matter).
OWN_MODELS = ("mlp", "lenet5", "vgg")
#: Reference networks from :mod:`simulator.zoo` (224 x 224 inputs).
ZOO_MODELS = tuple(zoo.NETWORKS)
#: The improvement factors Kosaian & Rashmi report against global ABFT (SC21).
PAPER_RANGE = (1.09, 5.3)


def model_gemms(name: str, batch: int) -> list[tuple[str, int, int, int]]:
    """``(layer, M, K, N)`` of every GEMM of a model at ``batch`` inputs."""
    if name in ZOO_MODELS:
        return zoo.gemms(name, batch)
    if name not in OWN_MODELS:
        raise ValueError(f"model must be one of {list(OWN_MODELS + ZOO_MODELS)}; got {name!r}.")
    from mapping import layer_report
    from training import build_model

    model = build_model(name, (1, 28, 28), 10)
    return [(r.name, r.m, r.k, r.n) for r in layer_report(model, (1, 28, 28), ArrayConfig(8, 8), batch=batch)]


def _one(gemms, cfg, checksums) -> dict:
    base = {s: 0 for s in ("none", *PROTECTING, "intensity")}
    picks = {s: 0 for s in PROTECTING}
    free = 0
    for _, m, k, n in gemms:
        costs = {s: scheme_cost(s, cfg, m, k, n, checksums) for s in ("none", *PROTECTING)}
        best = choose_scheme(cfg, m, k, n, checksums)
        costs["intensity"] = costs[best]
        picks[best] += 1
        free += costs[best] == costs["none"]
        for s, c in costs.items():
            base[s] += c
    ov = {s: base[s] / base["none"] - 1 for s in base if s != "none"}
    factor = ov["global"] / ov["intensity"] if ov["intensity"] > 0 else math.inf
    return {"cycles": base["none"], **{f"ov_{s}": round(v, 6) for s, v in ov.items()},
            "factor": round(factor, 4), **{f"n_{s}": v for s, v in picks.items()}, "layers_free": free,
            "layers": len(gemms)}


def overhead_rows(models, batches, arrays, bandwidths, buffers_kb=(64.0, 64.0, 64.0), precision="int8",
                  checksums=CHECKSUMS, progress=None) -> list[dict]:
    """One row per (model, batch, array side, bandwidth, checksums): cycles, overheads, factor."""
    prec = precision_by_name(precision)
    rows = []
    combos = list(itertools.product(models, batches))
    for model, batch in (progress(combos) if progress else combos):
        gemms = model_gemms(model, batch)
        for side, bw, where in itertools.product(arrays, bandwidths, checksums):
            cfg = ArrayConfig(side, side, prec, memory=MemoryConfig(bw, *buffers_kb))
            rows.append({"model": model, "batch": batch, "array": side, "bandwidth": bw, "checksums": where,
                         **_one(gemms, cfg, where)})
    return rows


def factor_ranges(rows) -> dict:
    """Per checksums placement: (min, median, max) improvement factor and the models' overhead ranges."""
    out = {}
    for where in sorted({r["checksums"] for r in rows}):
        sel = [r for r in rows if r["checksums"] == where]
        f = np.array([r["factor"] for r in sel], dtype=float)
        out[where] = {"factor": (float(f.min()), float(np.median(f)), float(f.max())), "cases": len(sel),
                      "global": (min(r["ov_global"] for r in sel), max(r["ov_global"] for r in sel)),
                      "intensity": (min(r["ov_intensity"] for r in sel), max(r["ov_intensity"] for r in sel))}
    return out


def plot_overhead(path, rows, title: str) -> None:
    """Improvement factor per model and configuration, one panel per checksums placement."""
    from cli.ax_figures import _plt

    plt = _plt()
    wheres = sorted({r["checksums"] for r in rows})
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(wheres), figsize=(6 * len(wheres), 4.5), sharey=True, squeeze=False)
    marks = {b: m for b, m in zip(sorted({r["batch"] for r in rows}), "os^Dv")}
    cmap = plt.get_cmap("viridis")
    sides = sorted({r["array"] for r in rows})
    for ax, where in zip(axes[0], wheres):
        for i, model in enumerate(models):
            for r in (r for r in rows if r["checksums"] == where and r["model"] == model):
                jitter = (sides.index(r["array"]) - (len(sides) - 1) / 2) * 0.12
                ax.scatter(i + jitter, min(r["factor"], 100), marker=marks[r["batch"]], s=18, alpha=0.7,
                           color=cmap(sides.index(r["array"]) / max(1, len(sides) - 1)))
        ax.axhspan(*PAPER_RANGE, color="#ff7f0e", alpha=0.15, label=f"SC21: {PAPER_RANGE[0]}-{PAPER_RANGE[1]}x")
        ax.axhline(1, color="k", lw=0.8)
        ax.set(xticks=range(len(models)), title=f"checksums summed {'at the array' if where == 'array' else 'by the host'}",
               yscale="log", xlabel="model")
        ax.set_xticklabels(models, rotation=30)
    axes[0][0].set_ylabel("global ABFT overhead / intensity-guided overhead")
    handles = [plt.Line2D([], [], ls="", marker=m, color="gray", label=f"batch {b}") for b, m in marks.items()]
    handles += [plt.Line2D([], [], ls="", marker="o", color=cmap(j / max(1, len(sides) - 1)), label=f"{s}x{s}")
                for j, s in enumerate(sides)]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="#ff7f0e", alpha=0.15, label="SC21 range"))
    axes[0][-1].legend(handles=handles, fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

