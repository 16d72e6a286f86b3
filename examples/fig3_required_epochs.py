"""Fig. 3 of eFAT: how much retraining the chips of a population need.

Reproduces the per-chip retraining need of Hanif & Shafique, eFAT (2023): for a population
of faulty chips (``--chips``, default 200, fault rates ``--chip-rates``) each chip's required
amount ``E*`` is read off the shared resilience map for the constraint ``--max-drop`` (its
rate rounded up to the map's grid): 0 = bypass alone suffices, ``inf`` = nothing on the map
meets the constraint. Left: how many chips need each amount; right: amount against rate.

Writes ``fig3_required_epochs.png`` and ``.csv`` (per chip: rate, faulty PEs, ``E*``, status,
eFAT group)::

    python examples/fig3_required_epochs.py [--data digits|mnist|mnist:PATH] [--model lenet5]
        [--rows 32 --cols 32] [--max-drop 0.02] [--chips 200] [--chip-rates uniform:0.005,0.06]
        [--spatial uniform|clustered] [--out DIR] [--quick]
"""

from __future__ import annotations

import time

try:
    from . import _common as C
except ImportError:  # run as a script
    import _common as C

NAME = "fig3_required_epochs"
HEADER = ["chip", "fault_rate", "n_faulty", "required_epochs", "status", "group"]


def main(argv=None):
    t0 = time.perf_counter()
    p = C.parser(__doc__, population=True)
    p.add_argument("--chips", type=int, default=None, help="population size (default 200; 20 with --quick)")
    args = p.parse_args(argv)
    n = args.chips or (20 if args.quick else 200)
    if n < 1:
        raise SystemExit(f"error: --chips must be >= 1; got {n}.")
    s = C.setup(args)
    rmap = C.shared_map(s)
    pop = C.population(s, n)
    plan = C.make_plan(s, pop, rmap)
    n_faulty = pop.n_faulty
    C.write_csv(s.path(NAME + ".csv"), HEADER,
                [[c.id, f"{c.rate:.6g}", int(k), C.fmt_epochs(c.epochs), c.status, "" if c.group is None else c.group]
                 for c, k in zip(plan.chips, n_faulty)])
    from cli.figures import plot_required_epochs

    plot_required_epochs(s.path(NAME + ".png"), plan,
                         title=f"E* of {n} chips ({s.args.chip_rates}), {plan.constraint.text()}\n{s.tag()}")
    counts = plan.status_counts()
    amounts = sorted({c.epochs for c in plan.chips})
    C.log(f"{n} chips: {counts['no_retraining']} need no retraining, {counts['retrain']} need some, "
          f"{counts['infeasible']} cannot meet the constraint")
    C.log("  E* (epochs): " + ", ".join(f"{C.fmt_epochs(a)}: {sum(c.epochs == a for c in plan.chips)}"
                                        for a in amounts))
    C.done(s, [NAME + ".png", NAME + ".csv"], t0)
    return plan


if __name__ == "__main__":
    main()
