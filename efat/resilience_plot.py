"""The resilience map as a picture: mean accuracy drop, pass counts, and ``E*``."""

from __future__ import annotations

import numpy as np

from . import stats
from .constraint import Constraint

__all__ = ["plot_map", "format_drop"]


def plot_map(rmap, path, constraint=None, title: str | None = None) -> None:
    """Heatmap per (rate, amount): the mean accuracy drop over the measured chips (colour
    and number) and, with a constraint, the chips that meet it (``k/n``), the cells
    certified to suffice (outlined) and ``E*`` (bold box; hatched rows: none).

    A number is printed with as many decimals as it takes to show on which side of the
    limit it lies (2.037 beside a 2-point limit reads "2.04", never "2.0").
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = None if constraint is None else Constraint.of(constraint)
    mean, _, _ = rmap.mean_accuracy()
    drop = 100 * (rmap.baseline - mean)  # (F, E), points
    limit = None if c is None else 100 * c.max_accuracy_drop
    F, E = drop.shape
    fig, ax = plt.subplots(figsize=(1.25 * E + 3, 0.55 * F + 2.7), constrained_layout=True)
    top = 3 * limit if limit else float(np.nanmax(drop))
    im = ax.imshow(drop, cmap="RdYlGn_r", vmin=0, vmax=max(1.0, top), aspect="auto", origin="lower")
    fig.colorbar(im, ax=ax, label="mean accuracy drop over the chips (points)")
    counts = None if c is None else rmap.pass_counts(c)
    n = rmap.n_trials
    for i in range(F):
        for j in range(E):
            if np.isnan(drop[i, j]):
                continue
            text = f"{drop[i, j]:.1f}" if limit is None else format_drop(drop[i, j], limit)
            if counts is not None:
                text += f"\n{counts[i, j]}/{n[i]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(E), [f"{e:g}" for e in rmap.epochs])
    ax.set_yticks(range(F), [f"{100 * r:g}% ({k})" for r, k in zip(rmap.fault_rates, n)])
    ax.set(xlabel="retraining amount (epochs of FAT; 0 = bypass only)", ylabel="fault rate (chips measured)")
    fig.suptitle(title or f"Resilience map (baseline {100 * rmap.baseline:.1f}%)", fontsize=10)
    if c is not None:
        _draw_decisions(ax, plt, rmap, c)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _draw_decisions(ax, plt, rmap, c: Constraint) -> None:
    F, E = rmap.accuracy.shape[:2]
    certified = rmap.decisions(c) == stats.PASS
    for i, j in zip(*np.nonzero(certified)):
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=0.8, ls=":"))
    need = rmap.required_epochs_grid(c)
    for i, e in enumerate(need):
        if np.isfinite(e):
            j = int(np.searchsorted(rmap.epochs, e))
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=2.5))
        else:
            ax.add_patch(plt.Rectangle((-0.5, i - 0.5), E, 1, fill=False, hatch="//", edgecolor="black", lw=0))
    ax.plot([], [], "s", mfc="none", mec="black", mew=2.5,
            label=f"E*: least amount certified to suffice (hatched: none); k/n: chips within the drop\n"
                  f"constraint: {c.text()}")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, frameon=False)


def format_drop(value: float, limit: float) -> str:
    """``value`` (points) with the fewest decimals (at least 1) that keep it on its side of
    ``limit``: a cell that misses the limit never prints as one that meets it."""
    meets = value <= limit + 1e-10  # the tolerance of Constraint.threshold, in points
    for decimals in range(1, 7):
        text = f"{value:.{decimals}f}"
        if (float(text) <= limit + 1e-10) == meets:
            return text
    return repr(float(value))
