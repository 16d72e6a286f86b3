"""``efat resilience``: measure a resilience map (accuracy over fault rate x retraining)."""

from __future__ import annotations

from cli.args import add_array_args, add_data_args, floats, load_model_and_data


def register(sub):
    p = sub.add_parser("resilience", help="measure a resilience map on the simulator (resumable)",
                       description="Accuracy over fault rate x FAT epochs x random chips, on the simulator "
                                   "with bypass. Saved after every chip: rerun the same command to resume.")
    add_data_args(p)
    add_array_args(p)
    p.add_argument("--rates", type=floats, default="0.01,0.02,0.05,0.1,0.2", metavar="F1,F2,...",
                   help="fault-rate grid: comma-separated, strictly increasing, in [0, 1]")
    p.add_argument("--epochs", type=floats, default="0.25,0.5,1,2,4", metavar="E1,E2,...",
                   help="retraining amounts in epochs, comma-separated (0, bypass only, is added)")
    p.add_argument("--trials", type=int, default=3, metavar="N", help="random chips per rate")
    p.add_argument("--out", required=True, metavar="FILE.json",
                   help="the map, written after every chip; resumes if it exists")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw the heatmap (default: none)")
    p.add_argument("--max-drop", type=float, default=0.02, metavar="FRACTION",
                   help="the constraint whose E* is printed and drawn (0.02 = 2 points)")
    p.set_defaults(func=run)


def run(args):
    from efat import resilience_map
    from efat.resilience import check_grid
    from simulator import ArrayConfig

    cfg = ArrayConfig(args.rows, args.cols)
    if args.trials < 1:
        raise ValueError(f"--trials must be >= 1; got {args.trials}.")
    check_grid("--rates", args.rates, 0.0, 1.0)  # before any training
    check_grid("--epochs", sorted(set(args.epochs)))
    model, data = load_model_and_data(args)
    rmap = resilience_map(model, data, cfg, args.rates, args.epochs, trials=args.trials, seed=args.seed,
                          out=args.out, progress=True)
    need = rmap.required_epochs_grid(args.max_drop)
    print(f"resilience map of {args.model} on {data.name}, {cfg.rows}x{cfg.cols}: baseline {100 * rmap.baseline:.2f}%")
    print(f"{'fault rate':>10}  E* for a drop of {100 * args.max_drop:g} points")
    for r, e in zip(rmap.fault_rates, need):
        print(f"{100 * r:>9.2f}%  {e:g}")
    print(f"saved {args.out}")
    if args.plot:
        rmap.plot(args.plot, args.max_drop)
        print(f"wrote {args.plot}")
    return 0
