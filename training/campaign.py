"""Fault-injection campaigns: accuracy of a quantized model over fault rates and chips."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass

import numpy as np

from fileio import atomic_write
from faults import SITES, FaultMap
from mapping import QuantizedModel, run_model
from simulator import ArrayConfig, SystolicArray

__all__ = ["CampaignRow", "accuracy_vs_rate", "write_csv", "plot_accuracy_vs_rate"]


@dataclass(frozen=True)
class CampaignRow:
    """Accuracy of one random chip (``trial``) at one fault rate, with one mitigation."""

    fault_rate: float
    trial: int
    mitigation: str
    n_faulty: int
    accuracy: float


def accuracy_vs_rate(qm: QuantizedModel, data, cfg: ArrayConfig, rates, trials: int = 3, seed: int = 0,
                     mitigations=(None, "bypass"), sites=SITES, batch_size: int = 512,
                     progress: bool | None = None) -> list[CampaignRow]:
    """Run ``qm`` on ``trials`` random chips per fault rate, each with every mitigation.

    Chip ``(i, t)`` (rate index, trial) uses ``FaultMap.random(cfg, rates[i], seed=seed + 1000 * i + t)``,
    so a rate's chips do not change when other rates are added.
    """
    from tqdm.auto import tqdm

    rows = []
    jobs = [(i, float(r), t) for i, r in enumerate(rates) for t in range(trials)]
    bar = tqdm(jobs, desc="chips", unit="chip", disable=progress is False or (progress is None and len(jobs) < 8))
    for i, rate, t in bar:
        fm = FaultMap.random(cfg, rate, seed=seed + 1000 * i + t, sites=sites)
        for mitigation in mitigations:
            res = run_model(qm, data, SystolicArray(cfg, fm, mitigation), batch_size=batch_size, progress=False)
            rows.append(CampaignRow(rate, t, str(mitigation or "none"), fm.n_faulty, res.accuracy))
    return rows


def write_csv(path, rows: list[CampaignRow]) -> None:
    """One row per chip and mitigation, atomically."""
    with atomic_write(path, newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(CampaignRow.__dataclass_fields__))
        out.writeheader()
        out.writerows(asdict(r) for r in rows)


def plot_accuracy_vs_rate(path, rows: list[CampaignRow], baselines: dict[str, float], title: str) -> None:
    """Mean (line) and per-chip (dots) accuracy against fault rate, one colour per mitigation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), constrained_layout=True)
    labels = {"none": "stuck-at faults, no mitigation", "bypass": "bypass faulty PEs (FAP)"}
    rates = sorted({r.fault_rate for r in rows})
    xs = {rate: max(rate, rates[1] / 3 if len(rates) > 1 and rates[0] == 0 else rate) for rate in rates}
    for mitigation, color in (("none", "#d62728"), ("bypass", "#1f77b4")):
        sel = [r for r in rows if r.mitigation == mitigation]
        if not sel:
            continue
        ax.scatter([xs[r.fault_rate] for r in sel], [100 * r.accuracy for r in sel], s=12, alpha=0.45, color=color)
        means = [100 * np.mean([r.accuracy for r in sel if r.fault_rate == rate]) for rate in rates]
        ax.plot([xs[r] for r in rates], means, "-o", ms=4, color=color, label=labels.get(mitigation, mitigation))
    for (name, acc), style in zip(baselines.items(), ("--", ":", "-.")):
        ax.axhline(100 * acc, ls=style, lw=1, color="grey", label=f"{name}: {100 * acc:.1f}%")
    ax.set_xscale("log")
    ax.set(xlabel="fault rate (faulty PEs / all PEs; 0 drawn at the left edge)", ylabel="test accuracy (%)",
           title=title, ylim=(0, 100))
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower left")
    fig.savefig(path, dpi=120)
    plt.close(fig)
