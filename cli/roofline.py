"""The roofline of an array with a memory side, with each layer placed on it."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_roofline"]


def plot_roofline(path, layers, cfg, title: str) -> None:
    """``layers``: ``(name, MemoryTiming)``. x: arithmetic intensity (MACs per byte), y: MACs per
    cycle achieved (MACs / total cycles); the roof: ``min(R*C, bandwidth * intensity)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peak, bw = cfg.n_pes, cfg.memory.bandwidth
    xs = np.array([t.intensity for _, t in layers])
    ys = np.array([t.macs / t.total_cycles for _, t in layers])
    lo, hi = min(xs.min(), peak / bw) / 4, max(xs.max(), peak / bw) * 4
    grid = np.geomspace(lo, hi, 200)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.plot(grid, np.minimum(peak, bw * grid), "k-", lw=2, label=f"roof: {peak} MACs/cycle, {bw:g} B/cycle")
    ax.axvline(peak / bw, color="k", ls=":", lw=1)
    bound = np.array([t.memory_bound for _, t in layers])
    ax.scatter(xs[bound], ys[bound], color="#d62728", s=28, label="memory-bound layers", zorder=3)
    ax.scatter(xs[~bound], ys[~bound], color="#1f77b4", s=28, label="compute-bound layers", zorder=3)
    for (name, _), x, y in zip(layers, xs, ys):
        ax.annotate(name, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (MACs per byte moved)",
           ylabel="MACs per cycle (MACs / total cycles)",
           title=f"{title}\n{cfg.rows}x{cfg.cols} {cfg.precision.name} array, buffers "
                 f"{cfg.memory.input_kb:g}/{cfg.memory.weight_kb:g}/{cfg.memory.output_kb:g} KiB")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
