"""``efat retrain``: execute a plan (retrain groups once, verify every chip; resumable)."""

from __future__ import annotations

from cli.args import add_data_args, add_executor_args, executor_spec, load_model_and_data


def register(sub):
    p = sub.add_parser("retrain", help="execute a plan: retrain each group, verify every chip (resumable)",
                       description="Retrains each group of the plan once, evaluates every chip with its own fault "
                                   "map on the simulator, retrains a failing unit on (warm) over the map's amounts, "
                                   "and writes report.json and report.csv. Rerun to resume. Refuses a model or "
                                   "data set other than the plan's. Exit code 1 if a chip still misses the "
                                   "constraint.")
    add_data_args(p)
    p.add_argument("--plan", required=True, metavar="FILE.json", help="a plan (efat plan --out)")
    p.add_argument("--population", required=True, metavar="FILE.npz", help="the Population the plan was made for")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="checkpoints and the report")
    add_executor_args(p)
    p.set_defaults(func=run)


def run(args):
    from efat import Plan, execute
    from faults import Population

    p = Plan.load(args.plan)
    pop = Population.load(args.population)
    p.check_population(pop)
    spec = executor_spec(args)
    model, data = load_model_and_data(args)
    p.check_provenance(model, data)
    report = execute(p, model, data, pop, args.out_dir, seed=args.seed, executor=spec, progress=True)
    print(report.summary_text())
    print(f"wrote {args.out_dir}/report.json and report.csv")
    return 0 if report.all_passed else 1
