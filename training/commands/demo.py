"""``efat demo``: the whole eFAT pipeline on the default data and a generated population."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("demo", help="the whole eFAT pipeline: resilience map, population, plan, retraining, figures",
                       description="Baseline, resilience map, a generated population, the plan, group retraining "
                                   "with per-chip verification on the simulator, figures and a summary. "
                                   "Resumes from what --out already holds.")
    p.add_argument("--out", default="demo_out/efat", help="output folder (default demo_out/efat)")
    p.add_argument("--data", default="digits")
    p.add_argument("--model", default="lenet5")
    p.add_argument("--chips", type=int, default=60)
    p.add_argument("--max-drop", type=float, default=0.02, help="verified on every chip (default 0.02)")
    p.add_argument("--margin", type=float, default=0.01, help="plan for max-drop minus this (default 0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args):
    from training.pipeline import DemoConfig, run_demo

    cfg = DemoConfig(data=args.data, model=args.model, chips=args.chips, max_accuracy_drop=args.max_drop,
                     margin=args.margin, seed=args.seed)
    _, report = run_demo(args.out, cfg)
    return 0 if report.all_passed else 1
