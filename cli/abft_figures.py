"""Summaries and figures of the ABFT coverage studies (:mod:`cli.abft_coverage`)."""

from __future__ import annotations

import numpy as np

from .abft_coverage import OUTCOMES, SCHEMES
from .ax_figures import _plt

__all__ = ["summarize_flips", "summarize_runs", "plot_flips", "plot_ber"]

_COLORS = {"masked": "#bbbbbb", "tolerated": "#dddd88", "sdc": "#d62728", "corrected": "#2ca02c",
           "detected": "#1f77b4", "needless": "#9edae5"}


def summarize_flips(rows) -> list[dict]:
    """Per precision and scheme (all sites): outcome shares, detection and correction rates.

    ``detection`` = alarms on runs whose data went wrong / runs whose data went wrong
    (corrected + detected + sdc); ``correction`` = corrected / the same.
    """
    out = []
    for p in dict.fromkeys(r["precision"] for r in rows):
        for s in SCHEMES:
            c = {o: sum(int(r[o]) for r in rows if r["precision"] == p and r["scheme"] == s) for o in OUTCOMES}
            n = sum(c.values())
            wrong = c["corrected"] + c["detected"] + c["sdc"]
            out.append(dict(precision=p, scheme=s, trials=n, **{o: c[o] / n for o in OUTCOMES},
                            detection=(c["corrected"] + c["detected"]) / wrong if wrong else float("nan"),
                            correction=c["corrected"] / wrong if wrong else float("nan")))
    return out


def summarize_runs(rows, keys=("precision", "ber", "scheme")) -> list[dict]:
    """Mean accuracy (and min-max) and summed check counts per ``keys``."""
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, rs in groups.items():
        acc = np.array([r["accuracy"] for r in rs])
        row = dict(zip(keys, key), runs=len(rs), accuracy=float(acc.mean()), acc_min=float(acc.min()),
                   acc_max=float(acc.max()))
        for k in ("gemms", "detected", "corrected", "recomputed", "unresolved"):
            if k in rs[0]:
                row[k] = sum(int(r[k]) for r in rs)
        if "overhead" in rs[0]:
            row["overhead"] = float(np.mean([r["overhead"] for r in rs]))
        out.append(row)
    return out


def plot_flips(path, rows, title) -> None:
    """Stacked outcome shares per site and scheme, one panel per precision."""
    plt = _plt()
    precs = list(dict.fromkeys(r["precision"] for r in rows))
    sites = list(dict.fromkeys(r["site"] for r in rows))
    fig, axes = plt.subplots(1, len(precs), figsize=(6.5 * len(precs), 4.5), squeeze=False, sharey=True)
    for ax, p in zip(axes[0], precs):
        labels, x = [], 0
        for site in sites:
            for s in SCHEMES:
                r = next(r for r in rows if r["precision"] == p and r["site"] == site and r["scheme"] == s)
                n, bottom = int(r["trials"]), 0.0
                for o in OUTCOMES:
                    share = int(r[o]) / n
                    ax.bar(x, share, bottom=bottom, color=_COLORS[o], width=0.8, label=o if not labels else None)
                    bottom += share
                labels.append((x, s[:4]))
                x += 1
            x += 0.6
        ax.set_xticks([t for t, _ in labels])
        ax.set_xticklabels([s for _, s in labels], rotation=90, fontsize=7)
        for i, site in enumerate(sites):
            ax.text(i * (len(SCHEMES) + 0.6) + (len(SCHEMES) - 1) / 2, 1.02, site, ha="center", fontsize=9)
        ax.set(ylim=(0, 1.08), title=p, ylabel="share of single-flip runs")
    handles = [plt.Rectangle((0, 0), 1, 1, color=_COLORS[o]) for o in OUTCOMES]
    axes[0][-1].legend(handles, OUTCOMES, fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_ber(path, summary, title) -> None:
    """Accuracy against the bit-error rate, per scheme, one panel per precision."""
    plt = _plt()
    precs = list(dict.fromkeys(r["precision"] for r in summary))
    fig, axes = plt.subplots(1, len(precs), figsize=(5.5 * len(precs), 4), squeeze=False, sharey=True)
    for ax, p in zip(axes[0], precs):
        for s in SCHEMES:
            rs = sorted((r for r in summary if r["precision"] == p and r["scheme"] == s and r["ber"] > 0),
                        key=lambda r: r["ber"])
            xs = [r["ber"] for r in rs]
            ax.plot(xs, [100 * r["accuracy"] for r in rs], "o-", label=s if s != "none" else "no ABFT")
            ax.fill_between(xs, [100 * r["acc_min"] for r in rs], [100 * r["acc_max"] for r in rs], alpha=0.15)
        ax.set(xscale="log", xlabel="bit-error rate (per register bit and cycle)", title=p)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%), one recompute on an uncorrected alarm")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
