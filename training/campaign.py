"""Fault-injection campaigns: accuracy of a quantized model over fault rates and chips.

:func:`population_accuracy` runs a model on every chip of a population, streamed: one
chip at a time, reduced to one number per chip, so with :meth:`faults.Population.stream`
its memory stays flat in the number of chips (``bench/bench_memory.py``).
"""

from __future__ import annotations

import csv
from array import array
from dataclasses import asdict, dataclass

import numpy as np

from fileio import atomic_write
from faults import SITES, Chip, FaultMap
from mapping import N_CALIB, QuantizedModel, quantize, run_model
from simulator import ArrayConfig, SystolicArray

__all__ = ["CampaignRow", "accuracy_vs_rate", "population_accuracy", "write_csv", "plot_accuracy_vs_rate"]


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


def population_accuracy(model, data, chips, mitigation="bypass", engine: str = "fast", batch_size: int = 256,
                        calib=None, progress: bool | None = None, on_result=None) -> np.ndarray:
    """Accuracy of ``model`` on every chip of ``chips``, one chip at a time.

    The same numbers as ``[run_model(model, data, SystolicArray(chip.fault_map.cfg,
    chip.fault_map, mitigation)).accuracy for chip in chips]``, but streamed: each chip is
    drawn (from a :class:`faults.ChipStream`), run and reduced to its accuracy before the
    next, and nothing else is kept per chip. With ``Population.stream(...)`` peak memory is
    flat in the number of chips; a :class:`faults.Population` holds its chips' faults itself.

    Parameters
    ----------
    model : nn.Module or QuantizedModel
        A float model is quantized once, for the first chip's precision, on ``calib`` (else
        the first :data:`mapping.N_CALIB` training inputs of a Dataset, else of ``data``),
        exactly as :func:`mapping.run_model` would for every chip.
    data : (inputs, labels) or Dataset
        Labelled inputs (a Dataset: its test split).
    chips : Population, ChipStream or iterable of Chip or FaultMap
        E.g. ``Population.stream(cfg, 10_000, rates=0.01, seed=0)``.
    mitigation : None or "bypass"
    engine, batch_size
        As in :func:`mapping.run_model` (results do not depend on ``batch_size``).
    progress : bool or None
        A bar over the chips; ``None``: only when stderr is a terminal.
    on_result : callable, optional
        ``on_result(index, chip, accuracy)`` after each chip (e.g. to write a CSV row).

    Returns
    -------
    float64 array (n,)
        Chip ``i``'s accuracy, in the order of ``chips``.
    """
    from tqdm.auto import tqdm

    acc = array("d")
    qm = model if isinstance(model, QuantizedModel) else None
    with tqdm(total=len(chips) if hasattr(chips, "__len__") else None, desc="chips", unit="chip",
              disable=None if progress is None else not progress) as bar:
        for i, chip in enumerate(chips):
            fm = chip.fault_map if isinstance(chip, Chip) else chip
            if not isinstance(fm, FaultMap):
                raise TypeError(f"chips must yield faults.Chip or FaultMap; item {i} is a {type(chip).__name__}.")
            if qm is None:
                qm = quantize(model, _calib(data) if calib is None else calib, fm.cfg.precision)
            res = run_model(qm, data, SystolicArray(fm.cfg, fm, mitigation), engine=engine, batch_size=batch_size,
                            progress=False)
            if res.accuracy is None:
                raise ValueError("data has no labels: give (inputs, labels) or a Dataset.")
            acc.append(res.accuracy)
            if on_result is not None:
                on_result(i, chip, res.accuracy)
            bar.update(1)
    return np.array(acc, dtype=np.float64)


def _calib(data):
    """The inputs :func:`mapping.run_model` calibrates a float model on when given no ``calib``."""
    if hasattr(data, "x_test") and hasattr(data, "y_test"):
        x = getattr(data, "x_train", None)
        return (data.x_test if x is None else x)[:N_CALIB]
    return (data[0] if isinstance(data, (tuple, list)) else data)[:N_CALIB]


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
