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

``approx``: ApproxABFT (see :mod:`cli.abft_approx`): per-layer thresholds calibrated by fault
injection, then accuracy and recovery overhead in cycles against the bit-error rate, for no
protection, classic ABFT (recompute on any mismatch) and ApproxABFT, on whole GEMMs and on blocks
of even size; writes ``abft_approx.csv``, ``abft_approx_thresholds.csv`` and ``abft_approx.png``.
"""

from __future__ import annotations

import math
import os

from cli.args import add_data_args, add_executor_args, executor_spec, floats, ints, limit_threads, resolve_data


def register(sub):
    p = sub.add_parser("abft", help="ABFT on the array: time overhead per model, intensity-guided choice",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("study", choices=("overhead", "flips", "ber", "stuck", "approx"), help="which study")
    p.add_argument("--models", default=None, metavar="M,...",
                   help="overhead: mlp, lenet5, vgg (our zoo, 28x28 inputs) and alexnet, vgg16, resnet50 (layer shapes "
                        "at 224x224), default all six; approx: models of the zoo (training.MODELS), trained on --data "
                        "once and cached, default lenet5")
    p.add_argument("--batches", type=ints, default=[1, 16], metavar="B,...", help="batch sizes (default: 1,16)")
    p.add_argument("--arrays", type=ints, default=[16, 32, 128], metavar="S,...",
                   help="square array sides (default: 16,32,128)")
    p.add_argument("--bandwidths", type=floats, default=[4.0, 16.0, 64.0], metavar="B,...",
                   help="DRAM bytes per cycle (default: 4,16,64)")
    p.add_argument("--buffers-kb", type=floats, default=[64.0, 64.0, 64.0], metavar="I,W,O",
                   help="input, weight and output buffer sizes in KiB (default: 64,64,64)")
    p.add_argument("--precision", default="int8", metavar="NAME",
                   help="operand precision (overhead: bytes moved, digits; approx: int8, fp16, fp32 or bf16)")
    p.add_argument("--checksums", default="array,host", metavar="WHERE,...",
                   help="where global ABFT sums its checksums: array (at its ports), host (separate DRAM passes)")
    g = p.add_argument_group("coverage studies (flips, ber, stuck)")
    add_data_args(g)
    g.add_argument("--precisions", default="int8,fp16", metavar="P,...",
                   help="array precisions: int8, fp32, fp16, bf16 (default: int8,fp16)")
    g.add_argument("--rows", type=int, default=16, metavar="R", help="PE rows of the array")
    g.add_argument("--cols", type=int, default=16, metavar="C", help="PE columns of the array")
    g.add_argument("--trials", type=int, default=500, metavar="N", help="flips: single-flip runs per site and precision")
    g.add_argument("--bers", type=floats, default=None, metavar="B,...",
                   help="ber, approx: bit-error rates per register bit and cycle, 0 for false alarms (default: ber "
                        "0,1e-10,1e-9,1e-8; approx 1e-8,3e-8,1e-7,3e-7,1e-6)")
    g.add_argument("--runs", type=int, default=None, metavar="N",
                   help="ber, approx: runs per rate and scheme (default: 3)")
    g.add_argument("--stuck-rate", type=float, default=0.05, metavar="F", help="stuck: share of faulty PEs per chip")
    g.add_argument("--chips", type=int, default=4, metavar="N", help="stuck: chips")
    g.add_argument("--test-images", type=int, default=2000, metavar="N",
                   help="ber, stuck, approx: test images per run (default: 2000; 0: all)")
    a = p.add_argument_group("ApproxABFT study (approx)")
    a.add_argument("--max-drop", type=float, default=0.005, metavar="FRACTION",
                   help="calibration: accuracy the unrecovered errors may cost the model (0.005 = half a point), "
                        "split evenly over its layers")
    a.add_argument("--calib-ber", type=float, default=None, metavar="B",
                   help="calibration: bit-error rate of the injected flips (default: the largest of --bers)")
    a.add_argument("--calib-images", type=int, default=512, metavar="N", help="calibration: training images")
    a.add_argument("--calib-runs", type=int, default=2, metavar="N", help="calibration: fault-injection runs per layer")
    a.add_argument("--block-macs", type=float, default=None, metavar="MACS",
                   help="multiply-accumulates per checksum block (default: 32 * 32 * the median reduction length K "
                        "of the model's layers)")
    a.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per simulated batch (GEMM)")
    a.add_argument("--recompute", type=int, default=1, metavar="N",
                   help="recovery rounds of a block above its threshold")
    add_executor_args(p)
    p.add_argument("--out", default="examples/out", metavar="DIR", help="folder for the CSV and PNG")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.study == "approx":
        return _approx(args)
    if args.study != "overhead":
        return _coverage(args)
    from tqdm import tqdm

    from cli.abft_overhead import OWN_MODELS, PAPER_RANGE, ZOO_MODELS, factor_ranges, overhead_rows, plot_overhead
    from cli.tasks import write_rows
    from protect import CHECKSUMS

    models = [m.strip() for m in (args.models or ",".join(OWN_MODELS + ZOO_MODELS)).split(",") if m.strip()]
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
    args.bers = [0.0, 1e-10, 1e-9, 1e-8] if args.bers is None else args.bers
    args.runs = 3 if args.runs is None else args.runs
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


def _approx(args) -> int:
    from cli.abft_approx import PAPER, comparisons, plot_approx, run_approx, summarize
    from training import load_dataset, pretrained

    models = [m.strip() for m in (args.models or "lenet5").split(",") if m.strip()]
    if not models:
        raise ValueError(f"--models must name at least one model; got {args.models!r}.")
    if args.precision not in ("int8", "fp16", "fp32", "bf16"):
        raise ValueError(f"--precision must be int8, fp16, fp32 or bf16 for approx; got {args.precision!r}.")
    bers = [1e-8, 3e-8, 1e-7, 3e-7, 1e-6] if args.bers is None else args.bers
    if any(not 0 < b <= 1 for b in bers):
        raise ValueError(f"--bers must be rates in (0, 1] for approx; got {bers}.")
    for name in ("runs", "calib_images", "calib_runs", "batch_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be an int >= 1; got {v}.")
    if args.recompute < 0:
        raise ValueError(f"--recompute must be an int >= 0; got {args.recompute}.")
    if not 0 <= args.max_drop <= 1:
        raise ValueError(f"--max-drop must be an accuracy fraction in [0, 1] (0.005 = half a point); "
                         f"got {args.max_drop}.")
    if args.calib_ber is not None and not 0 < args.calib_ber <= 1:
        raise ValueError(f"--calib-ber must be a rate in (0, 1]; got {args.calib_ber}.")
    if args.block_macs is not None and not 0 < args.block_macs < math.inf:
        raise ValueError(f"--block-macs must be a number > 0; got {args.block_macs}.")
    if args.test_images < 0:
        raise ValueError(f"--test-images must be >= 0 (0: all); got {args.test_images}.")
    spec = executor_spec(args)
    limit_threads()
    data = load_dataset(resolve_data(args.data), seed=args.seed)
    zoo = {m: pretrained(m, data, seed=args.seed) for m in models}
    rows, thresholds, path = run_approx(
        zoo, data, (args.rows, args.cols), args.precision, tuple(bers), args.runs or 3, args.calib_ber, args.max_drop,
        args.calib_images, args.calib_runs, args.block_macs, args.batch_size, args.recompute, args.seed, args.out,
        spec, n_test=args.test_images or None)
    summary = summarize(rows)
    png = path[:-4] + ".png"
    plot_approx(png, summary, f"ApproxABFT under transient flips: {', '.join(models)} on {data.name}, "
                              f"{args.precision}, {args.rows}x{args.cols} array, {args.runs or 3} runs per point")
    print(f"{'model':>8} {'ber':>8} {'scheme':>15} {'accuracy':>9} {'min':>7} {'max':>7} {'recovered':>9} "
          f"{'recovery':>9} {'overhead':>9}")
    for s in summary:
        print(f"{s['model']:>8} {s['ber']:8.1e} {s['scheme']:>15} {100 * s['accuracy']:8.2f}% "
              f"{100 * s['acc_min']:6.2f}% {100 * s['acc_max']:6.2f}% {s['recovered']:9d} {100 * s['recovery']:8.1f}% "
              f"{100 * s['overhead']:8.1f}%")
    print("ApproxABFT against classic ABFT (overhead: change of checksum + recovery cycles; accuracy: points):")
    for c in comparisons(summary):
        print(f"{c['model']:>8} {c['ber']:8.1e}  overhead {c['overhead']:+7.2f}%  accuracy {c['accuracy']:+6.2f}  "
              f"| blocking: overhead {c['blocking']:+7.2f}%  accuracy {c['blocked_accuracy']:+6.2f}")
    print(f"paper (v1): overhead {PAPER['overhead'][1]}% to {PAPER['overhead'][0]}%, accuracy +{PAPER['accuracy'][0]}% "
          f"to +{PAPER['accuracy'][1]}%; blocking a further {PAPER['blocking'][1]}% to {PAPER['blocking'][0]}%")
    layers = {}
    for t in thresholds:
        layers.setdefault((t["model"], t["blocking"]), []).append(f"{t['layer']}={t['threshold']:.4g}")
    for (m, b), items in layers.items():
        print(f"thresholds {m} ({b}): {' '.join(items)}")
    print(f"wrote {path}, {path[:-4]}_thresholds.csv and {png}")
    return 0
