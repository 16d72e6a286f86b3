"""``efat resilience``: measure a resilience map (accuracy over fault rate x retraining)."""

from __future__ import annotations

from ._common import add_model_args, floats, load_model_and_data


def register(sub):
    p = sub.add_parser("resilience", help="measure a resilience map on the simulator (resumable)",
                       description="Accuracy over fault rate x FAT epochs x random chips, on the simulator "
                                   "with bypass. Saved after every chip: rerun the same command to resume.")
    add_model_args(p)
    p.add_argument("--rates", type=floats, default=floats("0.01,0.02,0.05,0.1,0.2"), help="fault-rate grid")
    p.add_argument("--epochs", type=floats, default=floats("0.25,0.5,1,2,4"), help="retraining grid (0 is added)")
    p.add_argument("--trials", type=int, default=3, help="random chips per rate (default 3)")
    p.add_argument("--out", required=True, help="JSON file (written after every chip; resumes if present)")
    p.add_argument("--plot", default=None, help="also draw the heatmap to this PNG")
    p.add_argument("--max-drop", type=float, default=0.02, help="constraint drawn on the heatmap (default 0.02)")
    p.set_defaults(func=run)


def run(args):
    from simulator import ArrayConfig
    from training.fat import resilience_map
    from training.resilience import check_grid

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
