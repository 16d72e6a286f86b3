"""Figures of the mixed-precision fault-injection study (:mod:`cli.fi_study`)."""

from __future__ import annotations

import numpy as np

from .fi_study import SITES_AND_OUTPUT, _mean

__all__ = ["plot_bits", "plot_stuck", "plot_ber", "plot_transient_vs_permanent"]

COLORS = {"fp32": "#1f77b4", "fp16": "#2ca02c", "bf16": "#d62728", "int8": "#7f7f7f"}
MARKERS = {"sign": "s", "exponent": "^", "mantissa": "o", "int": "."}
SITE_TITLES = {"act": "act latch", "weight": "weight register", "product": "product register",
               "psum": "psum register", "output": "GEMM output (as it leaves the array)"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _per_bit(ax, rows, precisions, site, **match):
    for p in precisions:
        sel = [r for r in rows if r["precision"] == p and r["site"] == site and all(r.get(k) == v for k, v in match.items())]
        bits = sorted({r["bit"] for r in sel})
        if not bits:
            continue
        acc = np.array([100 * _mean(sel, bit=b) for b in bits])
        ax.plot(bits, acc, "-", color=COLORS[p], lw=1, alpha=0.7, label=p)
        fields = [next(r["field"] for r in sel if r["bit"] == b) for b in bits]
        for f in sorted(set(fields)):
            idx = [i for i, g in enumerate(fields) if g == f]
            ax.scatter(np.array(bits)[idx], acc[idx], marker=MARKERS[f], color=COLORS[p], s=16, zorder=3)
    ax.set_xlim(-0.5, 31.5)


def _legend(fig, ax, precisions):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=COLORS[p], label=p) for p in precisions]
    handles += [Line2D([], [], ls="", marker=m, color="k", label=f) for f, m in MARKERS.items() if f != "int"]
    handles += [Line2D([], [], ls="", marker=".", color="k", label="int bit")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)


def plot_bits(path, rows, precisions, title):
    """Accuracy against the flipped bit, one panel per site, lines per precision."""
    plt = _plt()
    fig, axes = plt.subplots(len(SITES_AND_OUTPUT), 1, figsize=(10, 13), sharex=True)
    for ax, site in zip(axes, SITES_AND_OUTPUT):
        _per_bit(ax, rows, precisions, site)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(SITE_TITLES[site], fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("flipped bit (0 = least significant)")
    fig.suptitle(title)
    _legend(fig, axes[-1], precisions)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_stuck(path, rows, precisions, title):
    """Accuracy against the stuck bit: stuck-at-0 (left) and stuck-at-1 (right), per site."""
    plt = _plt()
    sites = SITES_AND_OUTPUT[:4]
    fig, axes = plt.subplots(len(sites), 2, figsize=(13, 11), sharex=True, sharey="row")
    for i, site in enumerate(sites):
        for j, v in enumerate((0, 1)):
            ax = axes[i, j]
            _per_bit(ax, rows, precisions, site, value=v)
            ax.set_title(f"{SITE_TITLES[site]}, stuck at {v}", fontsize=10, loc="left")
            ax.grid(alpha=0.3)
        axes[i, 0].set_ylabel("accuracy (%)")
    for ax in axes[-1]:
        ax.set_xlabel("stuck bit (0 = least significant)")
    fig.suptitle(title)
    _legend(fig, axes[-1, 0], precisions)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ber(path, summary, precisions, title):
    """Accuracy against BER, without check and with the range check (zero / clamp)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    styles = {"none": ("-", "no check"), "zero": ("--", "range check, zero"), "clamp": (":", "range check, clamp")}
    for p in precisions:
        sel = [s for s in summary if s["precision"] == p]
        bers = [s["ber"] for s in sel]
        for key, (ls, label) in styles.items():
            axes[0].plot(bers, [100 * s[key] for s in sel], ls, marker="o", ms=3, color=COLORS[p], label=f"{p}, {label}")
        axes[1].plot(bers, [100 * s["detection"] for s in sel], "-", marker="o", ms=3, color=COLORS[p], label=p)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("bit-error rate (flips per register bit per cycle)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].set_ylabel("corrupted GEMM outputs flagged (%)")
    axes[1].set_title("range check: detection", fontsize=10)
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_transient_vs_permanent(path, bit_rows, stuck_rows, precisions, title):
    """Per precision and site: mean accuracy over bits, transient flips against stuck-at 0/1."""
    plt = _plt()
    sites = SITES_AND_OUTPUT[:4]
    fig, axes = plt.subplots(1, len(precisions), figsize=(3.4 * len(precisions), 4.2), sharey=True)
    axes = np.atleast_1d(axes)
    x = np.arange(len(sites))
    for ax, p in zip(axes, precisions):
        tr = [100 * _mean(bit_rows, precision=p, site=s) for s in sites]
        s0 = [100 * _mean(stuck_rows, precision=p, site=s, value=0) for s in sites]
        s1 = [100 * _mean(stuck_rows, precision=p, site=s, value=1) for s in sites]
        ax.bar(x - 0.27, tr, 0.27, label="transient flips", color="#9467bd")
        ax.bar(x, s0, 0.27, label="stuck at 0", color="#8c564b")
        ax.bar(x + 0.27, s1, 0.27, label="stuck at 1", color="#e377c2")
        ax.set_xticks(x, sites)
        ax.set_title(p)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("accuracy, mean over the site's bits (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
