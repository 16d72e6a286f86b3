"""``efat resilience``: measure a resilience map (accuracy over fault rate x retraining)."""

from __future__ import annotations

from cli.args import (add_array_args, add_constraint_args, add_data_args, add_executor_args, constraint_of,
                      executor_spec, floats, load_model_and_data)


def register(sub):
    p = sub.add_parser("resilience", help="measure a resilience map on the simulator (resumable)",
                       description="Accuracy over fault rate x FAT epochs x random chips, on the simulator "
                                   "with bypass. Chips are added where the constraint's decision is still "
                                   "uncertain (adaptive sampling). Saved after every chip: rerun the same "
                                   "command to resume.")
    add_data_args(p)
    add_array_args(p)
    p.add_argument("--rates", type=floats, default="0.01,0.02,0.05,0.1,0.2", metavar="F1,F2,...",
                   help="fault-rate grid: comma-separated, strictly increasing, in [0, 1]")
    p.add_argument("--epochs", type=floats, default="0.25,0.5,1,2,4", metavar="E1,E2,...",
                   help="retraining amounts in epochs, comma-separated (0, bypass only, is added)")
    add_constraint_args(p)
    p.add_argument("--trials", type=int, default=None, metavar="N",
                   help="chips per rate in the first round (default: the fewest that can certify the pass "
                        "target at the confidence, 22 for 0.9 at 0.9)")
    p.add_argument("--max-trials", type=int, default=None, metavar="N",
                   help="budget of chips per rate (default: 3 x --trials)")
    p.add_argument("--fixed", action="store_true",
                   help="measure exactly --trials chips per rate, without adaptive sampling")
    add_executor_args(p)
    p.add_argument("--out", required=True, metavar="FILE.json",
                   help="the map, written after every chip; resumes if it exists")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="also draw the heatmap (default: none)")
    p.set_defaults(func=run)


def run(args):
    from cli.maps import resolution_note
    from efat import resilience_map
    from efat.resilience import check_grid
    from simulator import ArrayConfig

    cfg = ArrayConfig(args.rows, args.cols)
    c = constraint_of(args)  # every check before any training
    for name in ("trials", "max_trials"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1; got {value}.")
    check_grid("--rates", args.rates, 0.0, 1.0)
    check_grid("--epochs", sorted(set(args.epochs)))
    spec = executor_spec(args)
    model, data = load_model_and_data(args)
    rmap = resilience_map(model, data, cfg, args.rates, args.epochs, trials=args.trials, seed=args.seed,
                          out=args.out, progress=True, constraint=None if args.fixed else c,
                          max_trials=args.max_trials, executor=spec)
    need = rmap.required_epochs_grid(c)
    print(f"resilience map of {args.model} on {data.name}, {cfg.rows}x{cfg.cols}: baseline {100 * rmap.baseline:.2f}%")
    print(f"E* for {c.text()}:")
    print(f"{'fault rate':>10}  {'chips':>5}  E*")
    for r, n, e in zip(rmap.fault_rates, rmap.n_trials, need):
        print(f"{100 * r:>9.2f}%  {n:>5}  {e:g}")
    note = resolution_note(rmap, c)
    if note:
        print(note)
    print(f"saved {args.out}")
    if args.plot:
        rmap.plot(args.plot, c)
        print(f"wrote {args.plot}")
    return 0
