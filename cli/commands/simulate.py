"""``efat simulate``: a trained model on a simulated faulty chip.

Trains (or loads from the cache) the baseline, then reports accuracy in float, quantized
on a fault-free chip, on the faulty chip without mitigation and with bypass, and the
per-layer timing table. ``--plot`` adds a sweep of accuracy against fault rate.
"""

from __future__ import annotations

import json
import os

from cli.args import add_data_args, floats, load_model_and_data

def register(sub):
    p = sub.add_parser("simulate", help="run a trained model on a simulated faulty chip",
                       description=__doc__.split("\n\n")[0])
    add_data_args(p)
    p.add_argument("--rows", type=int, default=None, metavar="R",
                   help="PE rows (default: the --fault-map's or --population's array, else 32)")
    p.add_argument("--cols", type=int, default=None, metavar="C",
                   help="PE columns (default: the --fault-map's or --population's array, else 32)")
    chip = p.add_argument_group("the chip (one of --rate, --fault-map, --population; default a random chip "
                                "with --rate 0.02)")
    chip.add_argument("--rate", type=float, default=None, metavar="FRACTION",
                      help="fraction of faulty PEs of a random chip, in [0, 1] (default: 0.02)")
    chip.add_argument("--fault-seed", type=int, default=0, metavar="SEED", help="seed of the random chip and sweep")
    chip.add_argument("--sites", default=None, metavar="SITE,...",
                      help="fault sites of the random chip, comma-separated: act, weight, product, psum "
                           "(default: all four)")
    chip.add_argument("--fault-map", default=None, metavar="FILE.npz", help="a saved FaultMap (default: none)")
    chip.add_argument("--population", default=None, metavar="FILE.npz",
                      help="a saved Population; pick one chip with --chip (default: none)")
    chip.add_argument("--chip", default=None, metavar="ID",
                      help="chip id or index in --population (default: the first chip)")
    p.add_argument("--precision", default=None, metavar="NAME",
                   help="array precision: int8, fp32, fp16, bf16, fp8_e4m3 or fp8_e5m2 (default: the --fault-map's "
                        "or --population's when --rows/--cols are left out, else int8)")
    p.add_argument("--engine", default="fast", choices=("fast", "cycle"), help="simulator engine")
    p.add_argument("--batch-size", type=int, default=512, metavar="N", help="inputs per simulated batch")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="also sweep fault rates and write this PNG and a CSV beside it (default: no sweep)")
    p.add_argument("--sweep-rates", type=floats, default="0,0.001,0.002,0.005,0.01,0.02,0.05,0.1",
                   metavar="F1,F2,...", help="fault rates of the sweep, comma-separated")
    p.add_argument("--trials", type=int, default=3, metavar="N", help="random chips per rate in the sweep (>= 1)")
    p.add_argument("--per-layer", action="store_true",
                   help="add the sensitivity of each op: the accuracy drop when only that op runs on the faulty chip")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.set_defaults(func=run)


def _chip(args):
    """``(fault map, name)`` of a --fault-map or --population chip, else ``(None, None)``."""
    from faults import FaultMap, Population

    given = [a for a in ("rate", "fault_map", "population") if getattr(args, a) is not None]
    if len(given) > 1:
        raise ValueError(f"give one of --rate, --fault-map, --population; got {', '.join('--' + g.replace('_', '-') for g in given)}.")
    if args.fault_map:
        return FaultMap.load(args.fault_map), os.path.basename(args.fault_map)
    if args.population:
        pop = Population.load(args.population)
        key = args.chip if args.chip is not None else 0
        if isinstance(key, str) and key.lstrip("-").isdigit():
            key = int(key)
        try:
            chip = pop[key]
        except (KeyError, IndexError) as e:
            raise ValueError(f"--chip {args.chip}: {e.args[0]}") from None
        return chip.fault_map, chip.id
    return None, None


def _array_and_chip(args):
    from faults import SITES, FaultMap
    from simulator import INT8, ArrayConfig

    from simulator import precision_by_name

    fm, name = _chip(args)
    precision = None if args.precision is None else precision_by_name(args.precision)
    if fm is not None and precision is not None and precision != fm.cfg.precision:
        raise ValueError(f"--precision {args.precision}: the fault map is for {fm.cfg.precision.name} "
                         "(leave --precision out to use it).")
    if fm is not None and args.rows is None and args.cols is None:
        return fm.cfg, fm, name  # the file's array
    cfg = ArrayConfig(32 if args.rows is None else args.rows, 32 if args.cols is None else args.cols,
                      precision if precision is not None else INT8)
    if fm is None:
        rate = 0.02 if args.rate is None else args.rate
        sites = SITES if args.sites is None else tuple(s.strip() for s in args.sites.split(","))
        fm = FaultMap.random(cfg, rate, seed=args.fault_seed, sites=sites)
        name = f"random chip (rate {rate:g}, seed {args.fault_seed})"
    if fm.cfg.shape != cfg.shape:
        raise ValueError(f"the fault map is for a {fm.cfg.rows}x{fm.cfg.cols} array; this run uses "
                         f"{cfg.rows}x{cfg.cols} (set --rows/--cols, or leave them out to use the map's).")
    return cfg, fm, name


def run(args):
    from mapping import N_CALIB, format_report, layer_report, layer_sensitivity, quantize, run_model
    from simulator import SystolicArray
    from training import evaluate
    from training.campaign import accuracy_vs_rate, plot_accuracy_vs_rate, write_csv

    if args.trials < 1:
        raise ValueError(f"--trials must be >= 1 (random chips per rate of the sweep); got {args.trials}.")
    cfg, fm, chip_name = _array_and_chip(args)
    model, data = load_model_and_data(args)
    qm = quantize(model, data.x_train[:N_CALIB], cfg.precision)
    float_acc = evaluate(model, data.x_test, data.y_test)
    def acc_on(arr):
        return run_model(qm, data, arr, engine=args.engine, batch_size=args.batch_size).accuracy

    fmt = "int8" if cfg.precision.name == "int8x8->int32" else cfg.precision.name
    results = {
        "data": data.name,
        "model": args.model,
        "array": f"{cfg.rows}x{cfg.cols}",
        "precision": cfg.precision.name,
        "chip": chip_name,
        "fault_rate": fm.rate,
        "n_faulty": fm.n_faulty,
        "accuracy": {
            "float": float_acc,
            f"{fmt}, fault-free chip": acc_on(SystolicArray(cfg)),
            f"{fmt}, faulty chip": acc_on(SystolicArray(cfg, fm)),
            f"{fmt}, faulty chip + bypass": acc_on(SystolicArray(cfg, fm, "bypass")),
        },
    }
    rows = layer_report(qm, tuple(data.input_shape), cfg)
    results["layers"] = [r.as_dict() for r in rows]
    if args.per_layer:
        _, sens = layer_sensitivity(qm, data, SystolicArray(cfg, fm), args.engine, args.batch_size)
        results["sensitivity"] = [s.as_dict() for s in sens]
    if args.plot:
        sweep = accuracy_vs_rate(qm, data, cfg, args.sweep_rates, trials=args.trials, seed=args.fault_seed,
                                 batch_size=args.batch_size)
        base = os.path.splitext(args.plot)[0]
        write_csv(base + ".csv", sweep)
        plot_accuracy_vs_rate(args.plot, sweep, {"float": float_acc,
                                                 f"{fmt} fault-free": results["accuracy"][f"{fmt}, fault-free chip"]},
                              f"{args.model} on {data.name}, {cfg.rows}x{cfg.cols} array, {args.trials} chips per rate")
        results["sweep"] = {"png": args.plot, "csv": base + ".csv"}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.model} on {data.name} ({len(data.x_test)} test inputs), {cfg.rows}x{cfg.cols} array ({fmt}), "
          f"chip: {chip_name}, {fm.n_faulty} faulty PEs ({fm.rate:.2%})")
    for k, v in results["accuracy"].items():
        print(f"  {k:<28} {100 * v:6.2f}%")
    print("\nPer-layer timing (one input):")
    print(format_report(rows))
    if args.per_layer:
        print("\nPer-layer sensitivity (only that op on the faulty chip, the others fault-free):")
        width = max(len(s["name"]) for s in results["sensitivity"])
        for s in results["sensitivity"]:
            print(f"  {s['name']:<{width}}  {s['kind']:<8} {100 * s['accuracy']:6.2f}%  drop {100 * s['drop']:+6.2f} points")
    if args.plot:
        print(f"\nwrote {args.plot} and {results['sweep']['csv']}")
    return 0
