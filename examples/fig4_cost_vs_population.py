"""Fig. 4 of eFAT: total retraining cost against population size, for three policies.

Reproduces the cost comparison of Hanif & Shafique, eFAT (2023): the total retraining (in
epochs) needed to bring every feasible chip of a population within the accuracy constraint,
for populations of 10, 25, 50, 100 and 200 chips (nested: the first ``n`` chips of one
population), under

* fixed-amount FAT: every chip retrained with the one amount that suits them all (the
  largest ``E*``),
* Reduce: every chip retrained on its own with its own ``E*`` from the resilience map,
* eFAT: chips grouped by fusing their fault maps (reward-driven merging), one retraining
  per group with the fused map's ``E*``.

Planning only (``efat.plan``; costs from ``Plan.costs``), nothing is retrained;
the resilience map is the shared one. Writes ``fig4_cost_vs_population.png`` and ``.csv``::

    python examples/fig4_cost_vs_population.py [--data digits|mnist|mnist:PATH] [--model lenet5]
        [--rows 32 --cols 32] [--max-drop 0.02] [--sizes 10,25,50,100,200]
        [--chip-rates uniform:0.005,0.06] [--spatial uniform|clustered] [--out DIR] [--quick]
"""

from __future__ import annotations

import time

try:
    from . import _common as C
except ImportError:  # run as a script
    import _common as C

NAME = "fig4_cost_vs_population"
HEADER = ["chips", "feasible", "fixed_amount", "fixed_epochs", "fixed_runs", "reduce_epochs", "reduce_runs",
          "efat_epochs", "efat_runs", "efat_vs_fixed", "efat_vs_reduce", "fixed_expected", "reduce_expected",
          "efat_expected", "efat_expected_lower", "efat_expected_upper"]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.4f}" if b > 0 else ""


def main(argv=None):
    t0 = time.perf_counter()
    p = C.parser(__doc__, population=True)
    p.add_argument("--sizes", type=C.ints, default=None,
                   help="population sizes (default 10,25,50,100,200; 5,10,20 with --quick)")
    args = p.parse_args(argv)
    sizes = sorted(set(args.sizes or ([5, 10, 20] if args.quick else [10, 25, 50, 100, 200])))
    s = C.setup(args)
    rmap = C.shared_map(s)
    pop = C.population(s, sizes[-1])
    rows, table = [], []
    for n in sizes:
        plan = C.make_plan(s, pop[:n], rmap)
        c = plan.costs
        feasible = sum(ch.status != "infeasible" for ch in plan.chips)
        rows.append({"n": n, "fixed": c.fixed.epochs, "reduce": c.reduce.epochs, "efat": c.efat.epochs})
        table.append([n, feasible, f"{c.fixed_amount:g}", f"{c.fixed.epochs:g}", c.fixed.runs, f"{c.reduce.epochs:g}",
                      c.reduce.runs, f"{c.efat.epochs:g}", c.efat.runs, _ratio(c.efat.epochs, c.fixed.epochs),
                      _ratio(c.efat.epochs, c.reduce.epochs), f"{c.fixed.expected:.4g}", f"{c.reduce.expected:.4g}",
                      f"{c.efat.expected:.4g}", f"{c.efat.lower:.4g}", f"{c.efat.upper:.4g}"])
    C.write_csv(s.path(NAME + ".csv"), HEADER, table)
    last = table[-1]
    vs = (f"eFAT at {last[0]} chips: {100 * float(last[9]):.0f}% of fixed, {100 * float(last[10]):.0f}% of Reduce"
          if last[9] and last[10] else f"{last[0]} chips")
    from cli.figures import plot_cost_vs_population

    plot_cost_vs_population(s.path(NAME + ".png"), rows,
                            title=f"Total retraining (on paper) for {s.constraint.text()}\n"
                                  f"{s.tag()}, chip rates {args.chip_rates}\n{vs}")
    C.log(f"{'chips':>6} {'fixed':>14} {'Reduce':>14} {'eFAT':>14}   (epochs / runs)")
    for r in table:
        C.log(f"{r[0]:>6} {r[3]:>8} / {r[4]:<4} {r[5]:>8} / {r[6]:<4} {r[7]:>8} / {r[8]:<4}")
    C.log(vs)
    C.done(s, [NAME + ".png", NAME + ".csv"], t0)
    return table


if __name__ == "__main__":
    main()
