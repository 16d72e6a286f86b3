"""The whole eFAT pipeline in one call (what ``efat demo`` runs).

baseline -> resilience map -> population -> plan -> retrain groups and verify every chip
-> figures and a summary. Every stage writes its result into ``out_dir`` and a rerun
picks up what is there (the map resumes per chip, retraining per group).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from faults import Population
from simulator import ArrayConfig

from efat import execute, plan, resilience_map
from training import load_dataset, pretrained

from .figures import constraint_text, plot_costs, plot_groups, plot_required_epochs

__all__ = ["DemoConfig", "run_demo"]


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo; the defaults run in a few minutes on 2 CPU cores."""

    data: str = "digits"
    model: str = "lenet5"
    rows: int = 32
    cols: int = 32
    chips: int = 60
    chip_rates: str = "lognormal:0.02,0.6"  # most chips at a few %, a tail of worse ones
    spatial: str = "uniform"
    fault_rates: tuple = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15)
    epochs: tuple = (0.5, 1.0, 2.0, 3.0)
    trials: int = 5
    max_accuracy_drop: float = 0.02
    margin: float = 0.01  # plan for 1 point on the map, verify 2 points on every chip
    strategy: str = "reward"
    seed: int = 0


def run_demo(out_dir, cfg: DemoConfig = DemoConfig(), log=print):
    """Run the pipeline into ``out_dir``; returns ``(plan, report)``."""
    os.makedirs(out_dir, exist_ok=True)
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731
    array = ArrayConfig(cfg.rows, cfg.cols)
    data = load_dataset(cfg.data, seed=cfg.seed)
    model = pretrained(cfg.model, data, seed=cfg.seed, progress=True)
    log(f"[1/5] baseline: {cfg.model} on {data.name}; resilience map on a {cfg.rows}x{cfg.cols} array")
    rmap = resilience_map(model, data, array, cfg.fault_rates, cfg.epochs, trials=cfg.trials, seed=cfg.seed,
                          out=path("resilience_map.json"), progress=True)
    rmap.plot(path("resilience_map.png"), cfg.max_accuracy_drop, margin=cfg.margin,
              title=f"{cfg.model} on {data.name}, {cfg.rows}x{cfg.cols}: accuracy drop after FAT "
                    f"(baseline {100 * rmap.baseline:.1f}%)")
    log(f"[2/5] population: {cfg.chips} chips, rates {cfg.chip_rates}, {cfg.spatial} placement")
    pop = Population.generate(array, cfg.chips, rates=cfg.chip_rates, seed=cfg.seed, spatial=cfg.spatial)
    pop.save(path("population.npz"))
    log(f"[3/5] plan: max accuracy drop {100 * cfg.max_accuracy_drop:g} points (margin {100 * cfg.margin:g}), "
        f"strategy {cfg.strategy}")
    p = plan(pop, rmap, cfg.max_accuracy_drop, strategy=cfg.strategy, margin=cfg.margin)
    p.save(path("plan.json"))
    log(p.summary_text())
    log("[4/5] retraining each group once, verifying every chip on the simulator")
    report = execute(p, model, data, pop, path("retrain"), seed=cfg.seed)
    log("[5/5] figures")
    plot_required_epochs(path("required_epochs.png"), p)
    plot_costs(path("costs.png"), report.totals,
               f"Retraining {cfg.chips} chips ({sum(c.passed for c in report.chips)} verified at a drop <= "
               f"{100 * cfg.max_accuracy_drop:g} pts;\n{constraint_text(cfg.max_accuracy_drop, cfg.margin)})")
    if p.groups:
        plot_groups(path("groups.png"), p, pop)
    log(report.summary_text())
    log(f"results in {out_dir}: resilience_map.{{json,png}}, population.npz, plan.json, retrain/report.{{json,csv}}, "
        "required_epochs.png, costs.png" + (", groups.png" if p.groups else ""))
    return p, report
