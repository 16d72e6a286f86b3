"""``efat demo``: the whole eFAT pipeline on the default data and a generated population."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("demo", help="the whole eFAT pipeline: resilience map, population, plan, retraining, figures",
                       description="Baseline, resilience map, a generated population, the plan, group retraining "
                                   "with per-chip verification on the simulator, figures and a summary. "
                                   "Resumes from what --out already holds.")
    p.add_argument("--out", default="demo_out/efat", metavar="DIR", help="output folder")
    p.add_argument("--data", default="digits", metavar="SPEC", help="data set, as for efat simulate")
    p.add_argument("--model", default="lenet5", metavar="NAME", help="model of the zoo: mlp, lenet5 or vgg")
    p.add_argument("--chips", type=int, default=60, metavar="N", help="chips in the generated population")
    p.add_argument("--max-drop", type=float, default=0.02, metavar="FRACTION",
                   help="accuracy constraint verified on every chip (0.02 = 2 points below the fault-free int8 model)")
    p.add_argument("--margin", type=float, default=0.01, metavar="FRACTION",
                   help="plan amounts for max-drop minus this on the map (safety for chips the map never saw)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, training, map chips and population")
    p.set_defaults(func=run)


def run(args):
    from cli.args import resolve_data
    from cli.pipeline import DemoConfig, run_demo

    if args.chips < 1:
        raise ValueError(f"--chips must be >= 1; got {args.chips}.")
    cfg = DemoConfig(data=resolve_data(args.data), model=args.model, chips=args.chips,
                     max_accuracy_drop=args.max_drop, margin=args.margin, seed=args.seed)
    _, report = run_demo(args.out, cfg)
    return 0 if report.all_passed else 1
