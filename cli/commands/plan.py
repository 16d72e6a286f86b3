"""``efat plan``: group a population's chips for retraining from a resilience map."""

from __future__ import annotations

from cli.args import add_constraint_args, constraint_of


def register(sub):
    p = sub.add_parser("plan", help="plan retraining for a population (groups, fused maps, costs)",
                       description="Per-chip amounts E*, groups of fusable chips, and the cost of fixed-amount "
                                   "FAT, Reduce and eFAT side by side. Pure computation.")
    p.add_argument("--population", required=True, metavar="FILE.npz", help="a saved Population (efat population --out)")
    p.add_argument("--rmap", required=True, metavar="FILE.json", help="a resilience map (efat resilience --out)")
    add_constraint_args(p)
    p.add_argument("--strategy", default="reward", choices=("reward", "none", "exact"),
                   help="grouping: reward-driven merging, none (one group per chip: Reduce), or exact search "
                        "(up to 12 chips)")
    p.add_argument("--fixed-epochs", type=float, default=None, metavar="EPOCHS",
                   help="amount per chip of the fixed-FAT policy, on the map's grid (default: the largest E* of "
                        "the chips)")
    p.add_argument("--out", required=True, metavar="FILE.json", help="where to write the plan")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw the per-chip amounts (default: none)")
    p.set_defaults(func=run)


def run(args):
    from cli.figures import plot_required_epochs
    from cli.maps import resolution_note
    from efat import ResilienceMap, plan
    from faults import Population

    pop = Population.load(args.population)
    rmap = ResilienceMap.load(args.rmap)
    c = constraint_of(args)
    p = plan(pop, rmap, c, strategy=args.strategy, fixed_epochs=args.fixed_epochs)
    p.save(args.out)
    print(p.summary_text())
    note = resolution_note(rmap, c)
    if note:
        print(note)
    print(f"saved {args.out}")
    if args.plot:
        plot_required_epochs(args.plot, p)
        print(f"wrote {args.plot}")
    return 0
