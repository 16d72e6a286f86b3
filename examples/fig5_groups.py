"""Fig. 5 of eFAT: groups of chips that share one retraining, and their fused fault maps.

Reproduces the fusion idea of Hanif & Shafique, eFAT (2023): chips whose fault maps are
OR-ed into one fused map can share one fault-aware retraining (a model retrained for the
fused map prunes every member's faulty PEs), as long as the fused rate stays within what the
resilience map can repair. The population (``--chips``, default 200, as in fig3) is planned
with reward-driven grouping; the figure shows the largest groups: a few members' faulty PEs
(black) and the group's fused map (blue) with its rate and retraining amount.

Writes ``fig5_groups.png`` and ``fig5_groups.csv`` (every group: members, their rates and
``E*``, fused rate, fused faulty PEs, the group's amount and what its members would cost
one by one)::

    python examples/fig5_groups.py [--data digits|mnist|mnist:PATH] [--model lenet5]
        [--rows 32 --cols 32] [--max-drop 0.02] [--chips 200] [--groups 3] [--members 4]
        [--chip-rates uniform:0.005,0.06] [--spatial uniform|clustered] [--out DIR] [--quick]
"""

from __future__ import annotations

import math
import time

try:
    from . import _common as C
except ImportError:  # run as a script
    import _common as C

NAME = "fig5_groups"
HEADER = ["group", "n_members", "members", "member_rates", "member_epochs", "fused_rate", "fused_faulty_pes",
          "epochs", "members_epochs_sum"]


def main(argv=None):
    t0 = time.perf_counter()
    p = C.parser(__doc__, population=True)
    p.add_argument("--chips", type=int, default=None, help="population size (default 200; 20 with --quick)")
    p.add_argument("--groups", type=int, default=3, help="groups drawn (the largest)")
    p.add_argument("--members", type=int, default=4, help="members drawn per group")
    args = p.parse_args(argv)
    n = args.chips or (20 if args.quick else 200)
    if n < 1 or args.groups < 1 or args.members < 1:
        raise SystemExit("error: --chips, --groups and --members must be >= 1.")
    s = C.setup(args)
    rmap = C.shared_map(s)
    pop = C.population(s, n)
    plan = C.make_plan(s, pop, rmap)
    chip = {c.id: c for c in plan.chips}
    rows = []
    for g in plan.groups:
        rows.append([g.index, len(g.members), " ".join(g.members),
                     " ".join(f"{chip[m].rate:.4g}" for m in g.members),
                     " ".join(C.fmt_epochs(chip[m].epochs) for m in g.members),
                     f"{g.fused_rate:.6g}", len(g.fused_pes), f"{g.epochs:g}",
                     f"{math.fsum(chip[m].epochs for m in g.members):g}"])
    C.write_csv(s.path(NAME + ".csv"), HEADER, rows)
    png = s.path(NAME + ".png")
    if plan.groups:
        import matplotlib

        from cli.figures import plot_groups

        with matplotlib.rc_context({"figure.titlesize": "medium"}):  # its title is long for narrow grids
            plot_groups(png, plan, pop, n_groups=args.groups, n_members=args.members)
    else:
        _empty(png, f"No chip of {n} needs retraining: no groups to draw "
                    f"({s.constraint.text()}, rates {args.chip_rates}).")
    sizes = sorted((len(g.members) for g in plan.groups), reverse=True)
    c = plan.costs
    C.log(f"{n} chips, {c.reduce.runs} to retrain -> {len(plan.groups)} groups "
          f"(sizes {', '.join(map(str, sizes[:10]))}{' ...' if len(sizes) > 10 else ''}); "
          f"retraining {c.efat.epochs:g} epochs instead of {c.reduce.epochs:g} (Reduce)")
    for g in sorted(plan.groups, key=lambda g: (-len(g.members), g.index))[:args.groups]:
        C.log(f"  group {g.index}: {len(g.members)} chips, fused rate {100 * g.fused_rate:.1f}%, {g.epochs:g} epochs "
              f"(members alone: {math.fsum(chip[m].epochs for m in g.members):g})")
    C.done(s, [NAME + ".png", NAME + ".csv"], t0)
    return plan


def _empty(path, text):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
