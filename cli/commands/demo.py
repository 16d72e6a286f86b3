"""``efat demo``: the whole eFAT pipeline on the default data and generated populations."""

from __future__ import annotations

from cli.args import add_constraint_args, add_executor_args, executor_spec


def register(sub):
    p = sub.add_parser("demo", help="the whole eFAT pipeline: resilience map, populations, plans, retraining",
                       description="Baseline, an adaptively sampled resilience map, then for several generated "
                                   "populations the plan and its execution (every unit retrained once, every chip "
                                   "verified on the simulator), figures and a summary with intervals over the "
                                   "populations. Resumes from what --out already holds.")
    p.add_argument("--out", default="demo_out/efat", metavar="DIR", help="output folder")
    p.add_argument("--data", default="digits", metavar="SPEC", help="data set, as for efat simulate")
    p.add_argument("--model", default="lenet5", metavar="NAME", help="model of the zoo: mlp, lenet5, vgg or vit")
    p.add_argument("--chips", type=int, default=60, metavar="N", help="chips per generated population")
    p.add_argument("--populations", type=int, default=5, metavar="N",
                   help="populations (seeds seed, seed+1, ...) the savings are measured over")
    add_constraint_args(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, training, map chips and populations")
    add_executor_args(p)
    p.set_defaults(func=run)


def run(args):
    from cli.args import resolve_data
    from cli.pipeline import DemoConfig, check_demo, demo_succeeded, run_demo

    cfg = DemoConfig(data=resolve_data(args.data), model=args.model, chips=args.chips, populations=args.populations,
                     max_accuracy_drop=args.max_drop, pass_target=args.pass_target, confidence=args.confidence,
                     seed=args.seed, executor=executor_spec(args))
    check_demo(cfg)
    summary = run_demo(args.out, cfg)
    return 0 if demo_succeeded(summary) else 1
