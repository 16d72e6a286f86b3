"""The whole eFAT pipeline in one call (what ``efat demo`` runs).

baseline -> resilience map (adaptive) -> for each of several populations: plan, and
execute it three ways (eFAT's groups, Reduce: every chip at its own E*, fixed FAT: every
chip at the largest E*), every unit retrained and every chip verified -> figures and a
summary with intervals over the populations. Every stage writes into ``out_dir`` and a rerun picks up what is there (the
map resumes per chip, execution per unit).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from efat import Constraint, execute, plan, resilience_map
from efat.execution import POLICIES
from efat.stats import mean_interval
from faults import Population
from fileio import json_clean, write_json
from simulator import ArrayConfig
from training import MODELS, load_dataset, pretrained

from .figures import plot_costs, plot_groups, plot_required_epochs
from .maps import resolution_note

__all__ = ["DemoConfig", "run_demo", "check_demo", "demo_succeeded", "summary_text"]


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo; the defaults run in a few minutes on 2 CPU cores."""

    data: str = "digits"
    model: str = "lenet5"
    rows: int = 32
    cols: int = 32
    chips: int = 60
    populations: int = 5  # population seeds seed, seed + 1, ...: the spread of the savings
    chip_rates: str = "lognormal:0.02,0.6"  # most chips at a few %, a tail of worse ones
    spatial: str = "uniform"
    # A chip pays E* of its rate rounded up to the grid, so the grid is fine where most
    # chips are; amounts reach 8 epochs so that chips up to ~8% faulty PEs are feasible
    # (with 3 at most, every rate above 4% was infeasible on digits).
    fault_rates: tuple = (0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.12, 0.15)
    epochs: tuple = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
    max_accuracy_drop: float = 0.02
    pass_target: float = 0.9
    confidence: float = 0.9
    max_trials: int | None = None
    strategy: str = "reward"
    seed: int = 0
    executor: object = None

    @property
    def constraint(self) -> Constraint:
        return Constraint(self.max_accuracy_drop, self.pass_target, self.confidence)


def check_demo(cfg: DemoConfig) -> None:
    """Raise ``ValueError`` naming the bad setting, before anything is computed."""
    if cfg.model not in MODELS:
        raise ValueError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}.")
    for name in ("chips", "populations"):
        if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be an int >= 1; got {getattr(cfg, name)!r}.")
    cfg.constraint  # noqa: B018 - raises on a bad drop, pass target or confidence
    ArrayConfig(cfg.rows, cfg.cols)
    Population.generate(ArrayConfig(cfg.rows, cfg.cols), 1, rates=cfg.chip_rates, spatial=cfg.spatial)


def run_demo(out_dir, cfg: DemoConfig = DemoConfig(), log=print) -> dict:
    """Run the pipeline into ``out_dir``; returns the summary (also ``summary.json``)."""
    check_demo(cfg)
    os.makedirs(out_dir, exist_ok=True)
    path = lambda *name: os.path.join(out_dir, *name)  # noqa: E731
    c = cfg.constraint
    array = ArrayConfig(cfg.rows, cfg.cols)
    data = load_dataset(cfg.data, seed=cfg.seed)
    model = pretrained(cfg.model, data, seed=cfg.seed, progress=True)
    log(f"[1/4] baseline: {cfg.model} on {data.name}; resilience map on a {cfg.rows}x{cfg.cols} array for {c.text()}")
    rmap = resilience_map(model, data, array, cfg.fault_rates, cfg.epochs, seed=cfg.seed, constraint=c,
                          max_trials=cfg.max_trials, out=path("resilience_map.json"), progress=True,
                          executor=cfg.executor)
    rmap.plot(path("resilience_map.png"), c, title=f"{cfg.model} on {data.name}, {cfg.rows}x{cfg.cols}: accuracy "
                                                    f"drop after FAT (baseline {100 * rmap.baseline:.1f}%)")
    log(f"      {int(rmap.n_trials.sum())} chips measured ({', '.join(map(str, rmap.n_trials))} per rate); "
        f"E* = {', '.join(f'{e:g}' for e in rmap.required_epochs_grid(c))}")
    note = resolution_note(rmap, c)
    if note:
        log(f"      {note}")
    rows = []
    for k in range(cfg.populations):
        seed = cfg.seed + k
        log(f"[2/4] population {k + 1}/{cfg.populations}: {cfg.chips} chips, rates {cfg.chip_rates}, seed {seed}")
        pop = Population.generate(array, cfg.chips, rates=cfg.chip_rates, seed=seed, spatial=cfg.spatial)
        pop.save(path(f"population-{k}", "population.npz"))
        p = plan(pop, rmap, c, strategy=cfg.strategy)
        p.save(path(f"population-{k}", "plan.json"))
        log(f"[3/4] plan and execution {k + 1}/{cfg.populations}: {len(p.groups)} groups; eFAT, Reduce and "
            "fixed FAT each executed")
        reports = {policy: execute(p, model, data, pop, path(f"population-{k}", policy), seed=cfg.seed,
                                   executor=cfg.executor, policy=policy) for policy in POLICIES}
        rows.append(_row(seed, p, reports))
        if k == 0:
            plot_required_epochs(path("required_epochs.png"), p)
            if p.groups:
                plot_groups(path("groups.png"), p, pop)
    log("[4/4] summary and figures")
    summary = json_clean(_summary(cfg, data.name, rmap, rows))  # inf (no certified amount) -> null
    write_json(path("summary.json"), summary)
    plot_costs(path("costs.png"), rows,
               f"Retraining {cfg.chips} chips, {cfg.populations} populations\n({c.text()})")
    log(summary_text(summary))
    return summary


def _row(seed: int, p, reports: dict) -> dict:
    row = {"seed": seed, "chips": len(reports["efat"].chips), "groups": len(p.groups),
           "efat_paper": p.costs.efat.epochs, "reduce_paper": p.costs.reduce.epochs, "floor": p.grouping_floor(),
           "infeasible": reports["efat"].totals["infeasible"]["chips"],
           "beyond_repair": [{"id": c.id, "rate": c.rate, "accuracy": c.accuracy,
                              "epochs": c.unit_epochs + c.own_epochs}
                             for c in reports["efat"].chips if not c.passed and c.status == "infeasible"]}
    for policy, report in reports.items():
        t = report.totals
        row.update({f"{policy}_executed": t["executed"]["epochs"], f"{policy}_runs": t["executed"]["runs"],
                    f"{policy}_seconds": t["executed"]["seconds"], f"{policy}_expected": t["executed"]["expected"],
                    f"{policy}_lower": t["executed"]["lower"], f"{policy}_upper": t["executed"]["upper"],
                    f"{policy}_verified": sum(c.passed for c in report.chips),
                    f"{policy}_feasible_failed": sum(not c.passed and c.status != "infeasible" for c in report.chips),
                    f"{policy}_failed_first": t["units_failing_first_check"]})
    return row


def _summary(cfg: DemoConfig, data_name: str, rmap, rows: list[dict]) -> dict:
    def stat(values):
        """Mean, interval, min and max of ``values``; None when there are none."""
        if not values:
            return None
        mean, lo, hi = mean_interval(np.array(values, float), cfg.confidence)
        return {"mean": float(mean), "lower": float(lo), "upper": float(hi), "min": float(min(values)),
                "max": float(max(values)), "n": len(values)}

    def share(other):  # eFAT's share of another policy, over the populations where that retrained anything
        return stat([r["efat_executed"] / r[f"{other}_executed"] for r in rows if r[f"{other}_executed"] > 0])

    out = {"config": {**{k: v for k, v in asdict(cfg).items() if k != "executor"}, "data_name": data_name},
           "map": {"chips": rmap.n_trials.tolist(),
                   "required_epochs": rmap.required_epochs_grid(cfg.constraint).tolist()},
           "populations": rows,
           "efat_of_reduce": share("reduce"), "efat_of_fixed": share("fixed"),
           "paper": {"efat_of_reduce": stat([r["efat_paper"] / r["reduce_paper"] for r in rows if r["reduce_paper"] > 0]),
                     "floor_of_reduce": stat([r["floor"] / r["reduce_paper"] for r in rows if r["reduce_paper"] > 0])}}
    for policy in POLICIES:
        out[policy] = stat([r[f"{policy}_executed"] for r in rows])
        out[f"{policy}_verified"] = sum(r[f"{policy}_verified"] for r in rows)
        out[f"{policy}_feasible_failed"] = sum(r[f"{policy}_feasible_failed"] for r in rows)
    out["verified"], out["chips"] = out["efat_verified"], sum(r["chips"] for r in rows)
    out["infeasible"] = sum(r["infeasible"] for r in rows)
    out["beyond_repair"] = [b for r in rows for b in r["beyond_repair"]]
    return out


def demo_succeeded(s: dict) -> bool:
    """Every chip the map calls feasible meets the constraint under every policy (a chip
    the map calls infeasible may stay short: it is reported, beyond repair by FAT)."""
    return all(s[f"{p}_feasible_failed"] == 0 for p in POLICIES)


def _paper_line(s: dict) -> list[str]:
    """On paper: eFAT's plans and the floor no grouping can beat with this map."""
    paper = s.get("paper") or {}
    if not paper.get("floor_of_reduce"):
        return []
    e, f = paper["efat_of_reduce"], paper["floor_of_reduce"]
    return [f"on paper (planned amounts): eFAT's plans cost {100 * e['mean']:.1f}% of Reduce; no grouping can cost less "
            f"than {100 * f['mean']:.1f}% (range {100 * f['min']:.1f}-{100 * f['max']:.1f}%) with this map: every step of "
            "E* costs at least the same epochs per faulty PE (Plan.grouping_floor)"]


def summary_text(s: dict) -> str:
    """The demo's result in a few lines: per population, then means with intervals."""
    c = s["config"]
    level = f"{100 * c['confidence']:g}%"
    lines = [f"{'population seed':>16}{'groups':>8}{'eFAT':>9}{'expected [interval]':>26}{'Reduce':>9}{'fixed':>9}"
             f"{'eFAT failed 1st':>16}   (epochs as executed)"]
    for r in s["populations"]:
        lines.append(f"{r['seed']:>16}{r['groups']:>8}{r['efat_executed']:>9.4g}"
                     f"{r['efat_expected']:>11.4g} [{r['efat_lower']:.4g}, {r['efat_upper']:.4g}]"
                     f"{r['reduce_executed']:>9.4g}{r['fixed_executed']:>9.4g}{r['efat_failed_first']:>16}")

    def ratio(key):
        x, n = s[key], len(s["populations"])
        if x is None:
            return "undefined (no chip needed retraining)"
        among = "" if x["n"] == n else f", over the {x['n']} populations with any retraining"
        if x["lower"] is None or np.isnan(x["lower"]):  # one population with retraining: no interval
            return f"{100 * x['mean']:.1f}% (one population{among})"
        return f"{100 * x['mean']:.1f}% (mean; {level} interval {100 * x['lower']:.1f}-{100 * x['upper']:.1f}%, " \
               f"range {100 * x['min']:.1f}-{100 * x['max']:.1f}%{among})"

    lines += [f"over {len(s['populations'])} populations of {c['chips']} chips ({c['model']} on {c['data_name']}, "
              f"{c['rows']}x{c['cols']}), all three executed: eFAT = {ratio('efat_of_reduce')} of Reduce, "
              f"{ratio('efat_of_fixed')} of fixed FAT",
              *_paper_line(s),
              "chips meeting the constraint on the simulator: "
              + ", ".join(f"{p} {s[p + '_verified']}/{s['chips']}" for p in POLICIES)
              + f"; {s['infeasible']} chips the map calls infeasible (no certified amount)"]
    for p in POLICIES:
        if s[f"{p}_feasible_failed"]:
            lines.append(f"FAILED: {s[f'{p}_feasible_failed']} chips the map calls feasible miss the constraint under {p}")
    for b in s["beyond_repair"]:
        lines.append(f"beyond repair: {b['id']} ({100 * b['rate']:.2f}% faulty PEs, infeasible on the map) reaches "
                     f"{100 * b['accuracy']:.2f}% after {b['epochs']:g} epochs of FAT; discard it or retrain it longer")
    return "\n".join(lines)
