"""``efat assign``: match new chips to a plan's retrained groups, at zero retraining."""

from __future__ import annotations

from cli.args import add_data_args, load_model_and_data


def register(sub):
    p = sub.add_parser("assign", help="reuse a plan's group models for new chips (no retraining), and verify them",
                       description="For every chip of a new population, the group of the plan whose fused map "
                                   "covers its faulty PEs: that group's retrained model serves it without "
                                   "retraining. With --run-dir (where efat retrain wrote the plan's models) "
                                   "every assigned chip is verified on the simulator.")
    add_data_args(p)
    p.add_argument("--plan", required=True, metavar="FILE.json", help="a plan (efat plan --out)")
    p.add_argument("--population", required=True, metavar="FILE.npz", help="the new chips (efat population --out)")
    p.add_argument("--run-dir", default=None, metavar="DIR",
                   help="the plan's execution folder (efat retrain --out-dir); verify every assigned chip "
                        "(default: match only)")
    p.add_argument("--csv", default=None, metavar="FILE.csv", help="write one row per chip (default: none)")
    p.set_defaults(func=run)


def run(args):
    import csv
    from dataclasses import asdict

    from efat import Plan, assign, verify_assignment
    from faults import Population
    from fileio import atomic_write

    plan = Plan.load(args.plan)
    pop = Population.load(args.population)
    result = assign(plan, pop)
    if args.run_dir:
        model, data = load_model_and_data(args)
        result = verify_assignment(result, plan, pop, model, data, args.run_dir)
    matched = [a for a in result if a.group is not None]
    print(f"{len(matched)}/{len(result)} chips are covered by a group of the plan and need no retraining")
    if args.run_dir:
        passed = sum(bool(a.passed) for a in matched)
        print(f"verified on the simulator: {passed}/{len(matched)} assigned chips meet the constraint")
    if args.csv:
        with atomic_write(args.csv, newline="") as f:
            w = csv.DictWriter(f, fieldnames=["chip", "rate", "group", "accuracy", "passed"])
            w.writeheader()
            w.writerows(asdict(a) for a in result)
        print(f"wrote {args.csv}")
    return 0 if all(a.passed is not False for a in result) else 1
