"""``efat plan``: group a population's chips for retraining from a resilience map."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("plan", help="plan retraining for a population (groups, fused maps, costs)",
                       description="Per-chip amounts E*, groups of fusable chips, and the cost of fixed-amount "
                                   "FAT, Reduce and eFAT side by side. Pure computation.")
    p.add_argument("--population", required=True, help="a saved Population (.npz)")
    p.add_argument("--rmap", required=True, help="a resilience map (JSON from efat resilience)")
    p.add_argument("--max-drop", type=float, default=0.02, help="max accuracy drop, 0.02 = 2 points (default)")
    p.add_argument("--strategy", default="reward", help="reward (default), none, exact")
    p.add_argument("--quantile", type=float, default=None, help="meet the drop for this quantile of trials "
                                                                "(default: every trial)")
    p.add_argument("--margin", type=float, default=0.0, help="choose amounts for max-drop minus this on the map "
                                                              "(safety for unseen chips; default 0)")
    p.add_argument("--fixed-epochs", type=float, default=None, help="amount of the fixed-FAT policy "
                                                                    "(default: the largest E* of the chips)")
    p.add_argument("--out", required=True, help="plan JSON")
    p.add_argument("--plot", default=None, help="also draw per-chip amounts to this PNG")
    p.set_defaults(func=run)


def run(args):
    from faults import Population
    from training.figures import plot_required_epochs
    from training.planner import plan
    from training.resilience import ResilienceMap

    pop = Population.load(args.population)
    rmap = ResilienceMap.load(args.rmap)
    p = plan(pop, rmap, args.max_drop, strategy=args.strategy, fixed_epochs=args.fixed_epochs,
             quantile=args.quantile, margin=args.margin)
    p.save(args.out)
    print(p.summary_text())
    print(f"saved {args.out}")
    if args.plot:
        plot_required_epochs(args.plot, p)
        print(f"wrote {args.plot}")
    return 0
