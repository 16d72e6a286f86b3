"""Figures and summaries of the approximate-DNN studies (:mod:`cli.ax_study`)."""

from __future__ import annotations

import numpy as np

from .ax_study import METHODS

__all__ = ["plot_accuracy", "plot_resilience", "plot_retune", "summarize_resilience", "summarize_retune"]

SITES = ("act", "weight", "product", "psum")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(names):
    cmap = _plt().get_cmap("tab10")
    return {n: ("#000000" if n == "exact" else cmap(i % 10)) for i, n in enumerate(names)}


def _mean(rows, key="accuracy", **match):
    vals = [float(r[key]) for r in rows if all(r.get(k) == v for k, v in match.items())]
    return float(np.mean(vals)) if vals else float("nan")


def plot_accuracy(path, rows, title):
    plt = _plt()
    models = list(dict.fromkeys(r["model"] for r in rows))
    mults = list(dict.fromkeys(r["multiplier"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(mults)), 4.2))
    width = 0.8 / len(models)
    for i, m in enumerate(models):
        pos = np.arange(len(mults)) + (i - (len(models) - 1) / 2) * width
        ax.bar(pos, [100 * _mean(rows, model=m, multiplier=x) for x in mults], width, label=m)
        if all("finetuned" in r for r in rows):
            ax.scatter(pos, [100 * _mean(rows, "finetuned", model=m, multiplier=x) for x in mults], marker="_",
                       s=120, color="k", zorder=3, label="after fine-tuning" if i == 0 else None)
    ax.set_xticks(np.arange(len(mults)), mults, rotation=20)
    ax.set_ylabel("accuracy, fault-free array (%)")
    lo = min(100 * min(float(r["accuracy"]), float(r.get("finetuned", 1))) for r in rows)
    ax.set_ylim(max(0, lo - 5), 100)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_resilience(path, rows, rate, title):
    """Accuracy drop against the faulty bit, per site (rows) and stuck value (columns)."""
    plt = _plt()
    mults = list(dict.fromkeys(r["multiplier"] for r in rows))
    colors = _colors(mults)
    fig, axes = plt.subplots(4, 2, figsize=(13, 11), sharey=True)
    for i, site in enumerate(SITES):
        for j, v in enumerate((0, 1)):
            ax = axes[i, j]
            for x in mults:
                sel = [r for r in rows if r["multiplier"] == x and r["site"] == site and r["value"] == v
                       and r["rate"] == rate]
                bits = sorted({r["bit"] for r in sel})
                ax.plot(bits, [100 * _mean(sel, "drop", bit=b) for b in bits], "-o", ms=2.5, color=colors[x],
                        lw=2 if x == "exact" else 1, label=x)
            ax.set_title(f"{site} bit stuck at {v}", fontsize=10, loc="left")
            ax.grid(alpha=0.3)
        axes[i, 0].set_ylabel("accuracy drop (points)")
    for ax in axes[-1]:
        ax.set_xlabel("faulty bit")
    axes[0, 0].legend(fontsize=8, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cells(rows):
    """Mean drop per (site, bit, value) over the chips."""
    cells = {}
    for r in rows:
        cells.setdefault((r["site"], r["bit"], r["value"]), []).append(float(r["drop"]))
    return {k: float(np.mean(v)) for k, v in cells.items()}


def summarize_resilience(rows, metrics: dict) -> list[dict]:
    """Per multiplier and rate: mean drop over every faulty bit, the worst bit and its drop,
    and the faulty bit where the drop exceeds the exact multiplier's most (the paper's
    comparison: the same faulty bit in an AxDNN and in the accurate DNN)."""
    out = []
    for rate in dict.fromkeys(r["rate"] for r in rows):
        exact = _cells([r for r in rows if r["multiplier"] == "exact" and r["rate"] == rate])
        for x in dict.fromkeys(r["multiplier"] for r in rows):
            cells = _cells([r for r in rows if r["multiplier"] == x and r["rate"] == rate])
            worst = max(cells, key=cells.get)
            gap = max(cells, key=lambda k: cells[k] - exact.get(k, np.inf))
            out.append(dict(multiplier=x, rate=rate, mean_drop=float(np.mean(list(cells.values()))),
                            worst=f"{worst[0]} bit {worst[1]} stuck at {worst[2]}", worst_drop=cells[worst],
                            largest_gap=f"{gap[0]} bit {gap[1]} stuck at {gap[2]}", gap_drop=cells[gap],
                            gap_exact_drop=exact.get(gap, float("nan")),
                            mre_pct=metrics.get(x, {}).get("mre_pct", float("nan")),
                            cells=metrics.get(x, {}).get("cells", float("nan"))))
    return out


def summarize_retune(rows) -> list[dict]:
    """Per multiplier, rate and method: mean accuracy and seconds over the chips."""
    out = []
    for x in dict.fromkeys(r["multiplier"] for r in rows):
        for rate in dict.fromkeys(r["rate"] for r in rows):
            for m in METHODS:
                sel = [r for r in rows if r["multiplier"] == x and r["rate"] == rate and r["method"] == m]
                if sel:
                    out.append(dict(multiplier=x, rate=rate, method=m, accuracy=_mean(sel),
                                    seconds=_mean(sel, "seconds"), baseline=float(sel[0]["baseline"])))
    return out


def plot_retune(path, summary, title):
    plt = _plt()
    mults = list(dict.fromkeys(s["multiplier"] for s in summary))
    ncol = min(3, len(mults))
    nrow = -(-len(mults) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.6 * nrow), sharey=True, squeeze=False)
    for ax in axes.ravel()[len(mults):]:
        ax.set_visible(False)
    axes = axes.ravel()
    styles = dict(zip(METHODS, ("-", "--", "-", "-.", ":")))
    colors = dict(zip(METHODS, ("#7f7f7f", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd")))
    for ax, x in zip(axes, mults):
        rates = [s["rate"] for s in summary if s["multiplier"] == x and s["method"] == "none"]
        pos = np.arange(len(rates))
        for m in METHODS:
            acc = [100 * next(s["accuracy"] for s in summary if s["multiplier"] == x and s["rate"] == r
                              and s["method"] == m) for r in rates]
            ax.plot(pos, acc, styles[m], marker="o", ms=3, color=colors[m], label=m)
        ax.set_xticks(pos, [r if r == "single" else f"{100 * float(r):g}%" for r in rates])
        ax.set_title(x)
        ax.set_xlabel("faulty PEs")
        ax.grid(alpha=0.3)
    for i in range(0, len(mults), ncol):
        axes[i].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
