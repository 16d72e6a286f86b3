"""How close eFAT's grouping comes to the best one, on paper (issue 8).

For each of the demo's populations, on the demo's resilience map (run ``make demo`` first,
or pass ``--rmap``): Reduce's cost on paper, eFAT's plan (strategy ``reward``), the floor
of :meth:`efat.Plan.grouping_floor`, and a mixed-integer program (SciPy's HiGHS) for the
cheapest grouping on paper. The program packs the chips to retrain into at most as many
groups as chips, each group at one step of ``E*`` (amount ``E_a``, at most ``cap_a`` faulty
PEs: the step's largest grid rate times ``R*C``), counting a group's faulty PEs as the sum
of its members' (shared PEs would only lower it, so the program may miss groupings that
rely on them; on random maps they are few). Within its time limit it reports the best
grouping it found and a lower bound on every grouping (HiGHS's dual bound).

    .venv/bin/python bench/bench_grouping.py [--rmap demo_out/efat/resilience_map.json] [--seconds 100]
        [--chip-rates lognormal:0.02,0.6 --result grouping]

``--chip-rates`` draws the populations at other rates (another bench_efat case, e.g.
``lognormal:0.2,0.3`` with ``--rmap`` at that case's map), ``--result`` names the file in
``bench/results``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_result  # noqa: E402

import efat  # noqa: E402
from cli.pipeline import DemoConfig  # noqa: E402
from efat.resilience import ResilienceMap  # noqa: E402
from faults import Population  # noqa: E402
from simulator import ArrayConfig  # noqa: E402


def cheapest(counts, amounts, caps, seconds):
    """``(best found, lower bound, solver message)`` of the grouping program (module docstring)."""
    m, a = len(counts), len(amounts)
    nx, ny = m * m, m * a  # x[i, b]: chip i in group b; y[b, s]: group b at step s
    cost = np.concatenate([np.zeros(nx), np.tile(amounts, m)])
    rows, lo, hi = [], [], []

    def add(coeffs, low, high):
        r = np.zeros(nx + ny)
        for idx, v in coeffs:
            r[idx] = v
        rows.append(r)
        lo.append(low)
        hi.append(high)

    for i in range(m):  # every chip in one group
        add([(np.arange(i * m, i * m + m), 1)], 1, 1)
    for b in range(m):
        ys = nx + b * a + np.arange(a)
        r = np.zeros(nx + ny)
        r[np.arange(m) * m + b] = counts
        r[ys] = -caps
        rows.append(r), lo.append(-np.inf), hi.append(0)  # the group's faulty PEs fit its step
        add([(ys, 1)], 0, 1)  # one step per group
        if b + 1 < m:  # symmetry: groups ordered by amount
            r = np.zeros(nx + ny)
            r[ys] = amounts
            r[ys + a] = -amounts
            rows.append(r), lo.append(0), hi.append(np.inf)
    res = milp(cost, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=np.ones(nx + ny),
               bounds=Bounds(0, 1), options={"time_limit": seconds})
    return float(res.fun), float(res.mip_dual_bound), res.message.split(".")[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rmap", default=os.path.join("demo_out", "efat", "resilience_map.json"))
    ap.add_argument("--seconds", type=float, default=100.0)
    ap.add_argument("--chip-rates", default=DemoConfig.chip_rates, help="fault rates of the populations' chips")
    ap.add_argument("--result", default="grouping", help="name of the result file in bench/results")
    args = ap.parse_args(argv)
    cfg = DemoConfig(chip_rates=args.chip_rates)
    rmap = ResilienceMap.load(args.rmap)
    array = ArrayConfig(cfg.rows, cfg.cols)
    pops = [Population.generate(array, cfg.chips, rates=cfg.chip_rates, seed=cfg.seed + k, spatial=cfg.spatial)
            for k in range(cfg.populations)]
    plans = [efat.plan(pop, rmap, cfg.constraint, strategy=cfg.strategy) for pop in pops]
    amounts, caps = plans[0].steps()  # the map's: the same for every population
    lines = [f"The demo's {cfg.populations} populations ({cfg.chips} chips, {cfg.chip_rates}) on the map {args.rmap}; "
             f"steps of E*: {', '.join(f'{e:g} epochs up to {c} faulty PEs' for e, c in zip(amounts, caps))}; "
             f"MILP time limit {args.seconds:g} s; {machine()}", "",
             "    .venv/bin/python bench/bench_grouping.py" + ("" if args.result == "grouping" else
                                                              f" --rmap {args.rmap} --chip-rates {args.chip_rates} "
                                                              f"--result {args.result}"), "",
             "| population seed | chips to retrain | Reduce | eFAT plan | floor | MILP best | MILP bound | solver | seconds |",
             "|--:|--:|--:|--:|--:|--:|--:|---|--:|"]
    totals = np.zeros(5)
    for k, p in enumerate(plans):
        counts = np.array([round(c.rate * array.n_pes) for c in p.chips if c.status == "retrain"])
        t = time.perf_counter()
        best, bound, message = cheapest(counts, amounts, caps, args.seconds)
        row = np.array([p.costs.reduce.epochs, p.costs.efat.epochs, p.grouping_floor(), best, bound])
        totals += row
        lines.append(f"| {cfg.seed + k} | {len(counts)} | " + " | ".join(f"{v:.4g}" for v in row)
                     + f" | {message} | {time.perf_counter() - t:.0f} |")
    lines += [f"| all | | {' | '.join(f'{v:.4g}' for v in totals)} | | |", "",
              f"As shares of Reduce: eFAT {100 * totals[1] / totals[0]:.1f}%, floor {100 * totals[2] / totals[0]:.1f}%, "
              f"MILP best {100 * totals[3] / totals[0]:.1f}%, MILP bound {100 * totals[4] / totals[0]:.1f}% "
              "(epochs on paper, summed over the populations).", ""]
    write_result(args.result, "\n".join(lines))


if __name__ == "__main__":
    main()
