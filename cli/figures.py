"""Figures of eFAT: per-chip amounts, policy costs, groups and their fused maps."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["plot_required_epochs", "plot_costs", "plot_groups", "plot_cost_vs_population"]

POLICIES = (("fixed", "fixed-amount FAT", "#7f7f7f"), ("reduce", "Reduce (per-chip E*)", "#ff7f0e"),
            ("efat", "eFAT (grouped)", "#1f77b4"))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _amount_label(e: float) -> str:
    return "none\npossible" if math.isinf(e) else ("0\n(bypass)" if e == 0 else f"{e:g}")


def plot_required_epochs(path, plan, title: str | None = None) -> None:
    """Histogram of the per-chip required amounts ``E*`` of a plan, and rate vs amount."""
    plt = _plt()
    amounts = np.array([c.epochs for c in plan.chips])
    rates = np.array([c.rate for c in plan.chips])
    keys = sorted(set(amounts.tolist()), key=lambda e: (math.isinf(e), e))
    counts = [int((amounts == k).sum()) for k in keys]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ax[0].bar(range(len(keys)), counts, color="#1f77b4")
    ax[0].set_xticks(range(len(keys)), [_amount_label(k) for k in keys])
    for i, c in enumerate(counts):
        ax[0].text(i, c, str(c), ha="center", va="bottom", fontsize=9)
    ax[0].set(xlabel="required retraining E* (epochs)", ylabel="chips",
              title=title or f"Per-chip retraining need, {len(amounts)} chips\n"
                                  f"(amounts certified for {plan.constraint.text()})")
    finite = np.isfinite(amounts)
    ax[1].scatter(100 * rates[finite], amounts[finite], s=14, alpha=0.7, label="chips")
    if (~finite).any():
        top = max(amounts[finite].max() if finite.any() else 1, 1) * 1.15
        ax[1].scatter(100 * rates[~finite], np.full((~finite).sum(), top), marker="x", color="red",
                      label="infeasible (drawn at the top)")
    grid_r = 100 * np.asarray(plan.fault_rates)
    grid_e = np.asarray(plan.required_epochs_grid)
    ok = np.isfinite(grid_e)
    ax[1].step(grid_r[ok], grid_e[ok], where="pre", color="black", lw=1, label="E*(rate), rounded up to the grid")
    ax[1].set(xlabel="chip fault rate (%)", ylabel="E* (epochs)", title="Required amount against fault rate")
    ax[1].legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_costs(path, rows: list[dict], title: str) -> None:
    """Total retraining of the three policies, each as executed, over populations: the mean
    (bar) with its interval (error bar) and every population (dots). ``rows``: dicts with
    ``efat_executed``, ``reduce_executed``, ``fixed_executed`` (one per population)."""
    from efat.stats import mean_interval

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    keys = (("fixed_executed", "fixed-amount FAT", "#7f7f7f"),
            ("reduce_executed", "Reduce, per-chip E*", "#ff7f0e"),
            ("efat_executed", "eFAT (grouped)", "#1f77b4"))
    top = 0.0
    for i, (key, _, color) in enumerate(keys):
        values = np.array([r[key] for r in rows], float)
        mean, lo, hi = mean_interval(values)
        err = None if np.isnan(lo) else [[mean - lo], [hi - mean]]
        ax.bar(i, mean, color=color, yerr=err, capsize=6)
        ax.scatter(np.full(values.size, i) + np.linspace(-0.2, 0.2, values.size), values, s=12, color="black",
                   zorder=3)
        ax.text(i + 0.42, mean, f"{mean:.4g}", va="center", fontsize=8)
        top = max(top, float(values.max()), float(np.nan_to_num(hi)))
    ax.set_xticks(range(3), [label for _, label, _ in keys])
    ax.set(ylabel="total retraining as executed (epochs)", title=title, ylim=(0, 1.15 * top if top else 1))
    ax.annotate(f"bars: mean over {len(rows)} populations, 90% interval; dots: each population",
                (0.01, 0.97), xycoords="axes fraction", fontsize=7, va="top", color="dimgrey")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_cost_vs_population(path, rows: list[dict], title: str) -> None:
    """Total retraining against population size; ``rows``: dicts with n, fixed, reduce, efat."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    ns = [r["n"] for r in rows]
    for key, label, color in POLICIES:
        ax.plot(ns, [r[key] for r in rows], "-o", ms=4, color=color, label=label)
    ax.set(xlabel="chips in the population", ylabel="total retraining (epochs)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_groups(path, plan, population, n_groups: int = 3, n_members: int = 4) -> None:
    """A few groups (the largest first): each member's faulty PEs and the group's fused map."""
    plt = _plt()
    groups = sorted(plan.groups, key=lambda g: (-len(g.members), g.index))[:n_groups]
    if not groups:
        raise ValueError("the plan has no groups to draw (no chip needs retraining).")
    cols = min(n_members, max(len(g.members) for g in groups)) + 1
    fig, axes = plt.subplots(len(groups), cols, figsize=(2.3 * cols, 2.4 * len(groups)), squeeze=False,
                             constrained_layout=True)
    for row, g in zip(axes, groups):
        for ax in row:
            ax.axis("off")
        for ax, member in zip(row, g.members[:n_members]):
            chip = population[member]
            ax.imshow(chip.fault_map.faulty, cmap="Greys", interpolation="nearest")
            ax.set_title(f"{member}\n{100 * chip.rate:.1f}%, E*={plan.chips[_pos(plan, member)].epochs:g}", fontsize=8)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
        fused = plan.fused_map(g.index, population).faulty
        ax = row[-1]
        ax.imshow(fused, cmap="Blues", interpolation="nearest")
        more = f" (+{len(g.members) - n_members} more)" if len(g.members) > n_members else ""
        ax.set_title(f"fused: {len(g.members)} chips{more}\n{100 * g.fused_rate:.1f}%, {g.epochs:g} epoch{'' if g.epochs == 1 else 's'}", fontsize=8)
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Groups: members' faulty PEs (black), fused (OR) map retrained once (blue)\n"
                 f"(amounts certified for {plan.constraint.text()})", fontsize=9 if cols < 4 else 11)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _pos(plan, chip_id: str) -> int:
    for i, c in enumerate(plan.chips):
        if c.id == chip_id:
            return i
    raise KeyError(chip_id)
