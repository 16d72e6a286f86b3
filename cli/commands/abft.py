"""``efat abft``: ABFT on the array.

``overhead``: the time overhead of global, fold-level, replication and intensity-guided ABFT
per model on the memory-aware timing model, over batch sizes, array sizes, bandwidths and
where global ABFT sums its checksums (at the array's ports, or by the host in separate passes
over DRAM, as on a GPU); the improvement factor of the intensity-guided choice over global
ABFT everywhere, beside Kosaian & Rashmi's 1.09-5.3x (SC21). Writes ``abft_overhead.csv`` and
``abft_overhead.png`` into ``--out``.

``flips``, ``ber``, ``stuck``: coverage under fault injection on a trained model (see
:mod:`cli.abft_coverage`): single transient flips at every register site (masked, SDC,
corrected, detected), model runs at bit-error rates (accuracy with and without each scheme,
one recompute on an uncorrected alarm; rate 0 counts false alarms), and stuck-at chips (ABFT
alarms on every run and recomputing does not clear them: bypass or FAT is the fix). Each
writes a CSV and a PNG into ``--out`` and resumes an interrupted run.
"""

from __future__ import annotations

import math
import os

from cli.args import add_data_args, add_executor_args, executor_spec, floats, ints, limit_threads, resolve_data


def register(sub):
    p = sub.add_parser("abft", help="ABFT on the array: time overhead per model, intensity-guided choice",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("study", choices=("overhead", "flips", "ber", "stuck"), help="which study")
    p.add_argument("--models", default="mlp,lenet5,vgg,alexnet,vgg16,resnet50", metavar="M,...",
                   help="models: mlp, lenet5, vgg (our zoo, 28x28 inputs) and alexnet, vgg16, resnet50 "
                        "(layer shapes at 224x224)")
    p.add_argument("--batches", type=ints, default=[1, 16], metavar="B,...", help="batch sizes (default: 1,16)")
    p.add_argument("--arrays", type=ints, default=[16, 32, 128], metavar="S,...",
                   help="square array sides (default: 16,32,128)")
    p.add_argument("--bandwidths", type=floats, default=[4.0, 16.0, 64.0], metavar="B,...",
                   help="DRAM bytes per cycle (default: 4,16,64)")
    p.add_argument("--buffers-kb", type=floats, default=[64.0, 64.0, 64.0], metavar="I,W,O",
                   help="input, weight and output buffer sizes in KiB (default: 64,64,64)")
    p.add_argument("--precision", default="int8", metavar="NAME", help="operand precision (bytes moved, digits)")
    p.add_argument("--checksums", default="array,host", metavar="WHERE,...",
                   help="where global ABFT sums its checksums: array (at its ports), host (separate DRAM passes)")
    g = p.add_argument_group("coverage studies (flips, ber, stuck)")
    add_data_args(g)
    g.add_argument("--precisions", default="int8,fp16", metavar="P,...",
                   help="array precisions: int8, fp32, fp16, bf16 (default: int8,fp16)")
    g.add_argument("--rows", type=int, default=16, metavar="R", help="PE rows of the array")
    g.add_argument("--cols", type=int, default=16, metavar="C", help="PE columns of the array")
    g.add_argument("--trials", type=int, default=500, metavar="N", help="flips: single-flip runs per site and precision")
    g.add_argument("--bers", type=floats, default=[0.0, 1e-10, 1e-9, 1e-8], metavar="B,...",
                   help="ber: bit-error rates per register bit and cycle, 0 for false alarms (default: 0,1e-10,1e-9,1e-8)")
    g.add_argument("--runs", type=int, default=3, metavar="N", help="ber: runs per rate and scheme")
    g.add_argument("--stuck-rate", type=float, default=0.05, metavar="F", help="stuck: share of faulty PEs per chip")
    g.add_argument("--chips", type=int, default=4, metavar="N", help="stuck: chips")
    g.add_argument("--test-images", type=int, default=2000, metavar="N",
                   help="ber, stuck: test images per run (default: 2000; 0: all)")
    add_executor_args(p)
    p.add_argument("--out", default="examples/out", metavar="DIR", help="folder for the CSV and PNG")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.study != "overhead":
        return _coverage(args)
    from tqdm import tqdm

    from cli.abft_overhead import OWN_MODELS, PAPER_RANGE, ZOO_MODELS, factor_ranges, overhead_rows, plot_overhead
    from cli.tasks import write_rows
    from protect import CHECKSUMS

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in OWN_MODELS + ZOO_MODELS:
            raise ValueError(f"--models: {m!r} is not one of {', '.join(OWN_MODELS + ZOO_MODELS)}.")
    wheres = [w.strip() for w in args.checksums.split(",") if w.strip()]
    for w in wheres:
        if w not in CHECKSUMS:
            raise ValueError(f"--checksums: {w!r} is not one of {', '.join(CHECKSUMS)}.")
    if len(args.buffers_kb) != 3 or min(args.buffers_kb) < 0:
        raise ValueError(f"--buffers-kb must be three sizes in KiB >= 0, e.g. 64,64,64; got {args.buffers_kb}.")
    for b in args.bandwidths:
        if not 0 < b < math.inf:
            raise ValueError(f"--bandwidths must be bytes per cycle > 0; got {b}.")
    rows = overhead_rows(models, args.batches, args.arrays, args.bandwidths, tuple(args.buffers_kb), args.precision,
                         tuple(wheres), progress=lambda xs: tqdm(xs, desc="models", unit="model", leave=False))
    os.makedirs(args.out, exist_ok=True)
    csv_path, png = os.path.join(args.out, "abft_overhead.csv"), os.path.join(args.out, "abft_overhead.png")
    write_rows(csv_path, rows)
    title = (f"ABFT time overhead: global / intensity-guided, {args.precision}, buffers "
             f"{'/'.join(f'{v:g}' for v in args.buffers_kb)} KiB, bandwidths {','.join(f'{b:g}' for b in args.bandwidths)} B/cycle")
    plot_overhead(png, rows, title)
    _print(rows, models, wheres)
    for where, r in factor_ranges(rows).items():
        lo, med, hi = r["factor"]
        print(f"checksums at the {where}: improvement factor {lo:.2f}-{_fmt(hi)} (median {med:.2f}) over "
              f"{r['cases']} cases; SC21: {PAPER_RANGE[0]}-{PAPER_RANGE[1]}")
    print(f"wrote {csv_path} and {png}")
    return 0


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.2f}"


def _print(rows, models, wheres):
    print(f"{'model':10s} {'checksums':9s} {'global':>13s} {'fold':>13s} {'replication':>13s} {'intensity':>13s} "
          f"{'factor':>13s}")
    span = lambda vals: f"{100 * min(vals):5.1f}-{100 * max(vals):5.1f}%"  # noqa: E731
    for model in models:
        for where in wheres:
            sel = [r for r in rows if r["model"] == model and r["checksums"] == where]
            fs = [r["factor"] for r in sel]
            print(f"{model:10s} {where:9s} {span([r['ov_global'] for r in sel]):>13s} "
                  f"{span([r['ov_fold'] for r in sel]):>13s} {span([r['ov_replication'] for r in sel]):>13s} "
                  f"{span([r['ov_intensity'] for r in sel]):>13s} {min(fs):6.2f}-{_fmt(max(fs)):>6s}")


def _coverage(args) -> int:
    from cli.abft_coverage import run_coverage
    from cli.abft_figures import plot_ber, plot_flips, summarize_flips, summarize_runs
    from training import load_dataset, pretrained

    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    bad = [p for p in precisions if p not in ("int8", "fp32", "fp16", "bf16")]
    if bad or not precisions:
        raise ValueError(f"--precisions must name int8, fp32, fp16 or bf16; got {args.precisions!r}.")
    for name in ("trials", "runs", "chips"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be an int >= 1; got {getattr(args, name)}.")
    if not 0 < args.stuck_rate <= 1:
        raise ValueError(f"--stuck-rate must be a share in (0, 1]; got {args.stuck_rate}.")
    if args.test_images < 0:
        raise ValueError(f"--test-images must be >= 0 (0: all); got {args.test_images}.")
    if any(not 0 <= b <= 1 for b in args.bers):
        raise ValueError(f"--bers must be rates in [0, 1]; got {args.bers}.")
    spec = executor_spec(args)
    limit_threads()
    data = load_dataset(resolve_data(args.data), seed=args.seed)
    model = pretrained(args.model, data, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    rows, path = run_coverage(args.study, model, data, (args.rows, args.cols), precisions, args.seed, args.out, spec,
                              trials=args.trials, bers=tuple(args.bers), runs=args.runs, stuck_rate=args.stuck_rate,
                              chips=args.chips, n_test=args.test_images or None)
    png = path[:-4] + ".png"
    what = f"{args.model} on {data.name}, {args.rows}x{args.cols} array"
    if args.study == "flips":
        plot_flips(png, rows, f"One transient flip per run: outcomes by site and scheme, {what}, "
                              f"{args.trials} runs per site")
        print(f"{'precision':>9} {'scheme':>12} " + " ".join(f"{o:>9}" for o in
                                                              ("masked", "tolerated", "sdc", "corrected", "detected",
                                                               "needless", "detection", "correction")))
        for s in summarize_flips(rows):
            print(f"{s['precision']:>9} {s['scheme']:>12} " + " ".join(
                f"{100 * s[k]:8.1f}%" for k in ("masked", "tolerated", "sdc", "corrected", "detected", "needless",
                                                "detection", "correction")))
    else:
        keys = ("precision", "ber", "scheme") if args.study == "ber" else ("precision", "scheme")
        summary = summarize_runs(rows, keys)
        if args.study == "ber":
            plot_ber(png, summary, f"Accuracy under transient flips, {what}, {args.runs} runs per point")
        else:
            png = None
        cols = ("accuracy", "acc_min", "acc_max", "gemms", "detected", "corrected", "recomputed", "unresolved",
                "overhead")
        print(" ".join(f"{k:>11}" for k in keys + cols))
        for s in summary:
            print(" ".join(f"{s[k]!s:>11}" for k in keys) + " " + " ".join(
                f"{s[k]:11.4f}" if isinstance(s.get(k), float) else f"{s.get(k, ''):>11}" for k in cols))
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    return 0
