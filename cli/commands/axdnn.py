"""``efat axdnn``: approximate DNNs on the array: accuracy per multiplier, resilience to the
same faulty bit against the accurate multiplier, and Fal-reTune against bypass and FAT.

Studies (see :mod:`cli.ax_study`): ``accuracy`` (every model of ``--models`` on a fault-free
array of every multiplier), ``resilience`` (each faulty bit, stuck at 0 and at 1, on the same
chips for every multiplier: the accuracy lost), ``retune`` (no mitigation, bypass, Fal-reTune,
FAT, and Fal-reTune after a short FAT, at each fault rate: accuracy and seconds). Each writes
a CSV and a PNG into ``--out`` and resumes an interrupted run.
"""

from __future__ import annotations

import os

from cli.args import add_data_args, add_executor_args, executor_spec, limit_threads, resolve_data


def register(sub):
    p = sub.add_parser("axdnn", help="approximate multipliers: DNN accuracy, fault resilience, Fal-reTune",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("study", choices=("accuracy", "resilience", "retune"), help="which study")
    add_data_args(p, model=False)
    p.add_argument("--models", default="lenet5", metavar="M,...",
                   help="models of the zoo, comma-separated (accuracy: all of them; the others: the first)")
    p.add_argument("--multipliers", default="exact,trunc:6,bam:8,3,drum:4,mitchell,ilm:1", metavar="X;...",
                   help="multipliers, separated by ';' or by ',' between names (see efat multipliers)")
    p.add_argument("--rows", type=int, default=16, metavar="R", help="PE rows of the array")
    p.add_argument("--cols", type=int, default=16, metavar="C", help="PE columns of the array")
    p.add_argument("--rates", default=None, metavar="RATE,...",
                   help="faulty PEs: 'single' (one PE) or shares, comma-separated "
                        "(default: single,0.01 for resilience; 0.001,0.01,0.1,0.5 for retune)")
    p.add_argument("--sites", default=None, metavar="SITE,...",
                   help="fault sites (default: act,weight,product,psum for resilience; weight,product for retune)")
    p.add_argument("--bits", default=None, metavar="B,...", help="resilience: only these bits (default: every bit)")
    p.add_argument("--trials", type=int, default=2, metavar="N", help="chips per point (>= 1)")
    p.add_argument("--fat-epochs", type=float, default=1.0, metavar="E", help="retune: FAT amount in epochs")
    p.add_argument("--short-epochs", type=float, default=0.25, metavar="E",
                   help="retune: the short FAT before Fal-reTune, in epochs")
    p.add_argument("--finetune", type=float, default=0.0, metavar="E",
                   help="accuracy: also fine-tune each model for E epochs through each multiplier "
                        "(straight-through estimator of its error; 0: no)")
    p.add_argument("--out", default="examples/out", metavar="DIR", help="folder for the CSVs and PNGs")
    add_executor_args(p)
    p.set_defaults(func=run)


def _multipliers(text):
    from simulator import multiplier

    parts, out = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()], []
    for p in parts:  # re-join 'bam:8' '3' into 'bam:8,3'
        if out and p.isdigit() and out[-1].startswith("bam:") and "," not in out[-1]:
            out[-1] += "," + p
        else:
            out.append(p)
    for name in out:
        multiplier(name)
    if "exact" not in out:
        out.insert(0, "exact")
    return out


def _rates(text, default):
    out = []
    for v in (text or default).split(","):
        v = v.strip()
        if v == "single":
            out.append("single")
            continue
        try:
            f = float(v)
        except ValueError:
            raise ValueError(f"--rates must be 'single' or shares in (0, 1]; got {v!r}.") from None
        if not 0 < f <= 1:
            raise ValueError(f"--rates must be 'single' or shares in (0, 1]; got {v!r}.")
        out.append(f)
    return out


def run(args):
    from cli.ax_figures import (plot_accuracy, plot_resilience, plot_retune, summarize_resilience,
                                summarize_retune)
    from cli.ax_study import run_ax_study
    from simulator import cell_share, error_metrics, multiplier
    from training import load_dataset, pretrained

    mults = _multipliers(args.multipliers)
    if args.trials < 1:
        raise ValueError(f"--trials must be an int >= 1; got {args.trials}.")
    resil = args.study == "resilience"
    rates = _rates(args.rates, "single,0.01" if resil else "0.001,0.01,0.1,0.5")
    sites = tuple(s.strip() for s in (args.sites or ("act,weight,product,psum" if resil else "weight,product")).split(","))
    bad = [s for s in sites if s not in ("act", "weight", "product", "psum")]
    if bad:
        raise ValueError(f"--sites must name act, weight, product or psum; got {bad}.")
    bits = None if args.bits is None else sorted({int(b) for b in args.bits.split(",")})
    spec = executor_spec(args)
    limit_threads()
    data = load_dataset(resolve_data(args.data), seed=args.seed)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    models = {n: pretrained(n, data, seed=args.seed) for n in names}
    os.makedirs(args.out, exist_ok=True)
    what = f"on {data.name}, {args.rows}x{args.cols} array"
    rows, path = run_ax_study(args.study, models, data, (args.rows, args.cols), mults, args.trials, args.seed,
                              args.out, spec, rates, sites, bits, args.fat_epochs, args.short_epochs,
                              finetune=args.finetune)
    png = path[:-4] + ".png"
    if args.study == "accuracy":
        plot_accuracy(png, rows, f"Accuracy with approximate multipliers, {what}")
        print(f"{'model':>14} " + " ".join(f"{x:>9}" for x in mults))
        for n in names:
            for key, label in (("accuracy", n), ("finetuned", f"{n} tuned")):
                accs = {r["multiplier"]: r.get(key) for r in rows if r["model"] == n}
                if all(v is not None for v in accs.values()):
                    print(f"{label:>14} " + " ".join(f"{100 * accs[x]:9.2f}" for x in mults))
    elif resil:
        metrics = {x: dict(error_metrics(multiplier(x)), cells=cell_share(x)) for x in mults}
        for rate in rates:
            suffix = "single" if rate == "single" else f"{100 * rate:g}pct"
            plot_resilience(png.replace(".png", f"_{suffix}.png"), rows, rate,
                            f"Accuracy lost to one stuck bit ({'one PE' if rate == 'single' else f'{100 * rate:g}% of PEs'}), "
                            f"{names[0]} {what}, mean of {args.trials} chips")
        print(f"{'multiplier':>10} {'rate':>6} {'MRE%':>6} {'cells':>5} {'mean drop':>9} {'worst bit':>28} "
              f"{'drop':>6} {'largest gap to exact':>28} {'drop':>6} {'exact':>6}")
        for s in summarize_resilience(rows, metrics):
            print(f"{s['multiplier']:>10} {str(s['rate']):>6} {s['mre_pct']:6.2f} {s['cells']:5.2f} "
                  f"{100 * s['mean_drop']:9.2f} {s['worst']:>28} {100 * s['worst_drop']:6.1f} {s['largest_gap']:>28} "
                  f"{100 * s['gap_drop']:6.1f} {100 * s['gap_exact_drop']:6.1f}")
        png = png.replace(".png", "_*.png")
    else:
        summary = summarize_retune(rows)
        plot_retune(png, summary, f"Mitigations by fault rate ({', '.join(sites)} faults), {names[0]} {what}, "
                                  f"mean of {args.trials} chips")
        print(f"{'multiplier':>10} {'rate':>6} {'method':>22} {'accuracy':>9} {'seconds':>8}")
        for s in summary:
            print(f"{s['multiplier']:>10} {str(s['rate']):>6} {s['method']:>22} {100 * s['accuracy']:9.2f} "
                  f"{s['seconds']:8.2f}")
    print(f"wrote {png} and {path}")
    return 0
