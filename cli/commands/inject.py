"""``efat inject``: the mixed-precision fault-injection study (MPGemmFI on our array).

One trained model run on arrays of several precisions under transient bit flips of every
bit of every register site and of the GEMM outputs (``bits``), the same bits stuck at 0 or
1 (``stuck``), and flips of every bit at a sweep of bit-error rates with and without the
range check (``ber``). ``all`` runs the three and compares transient with permanent
faults. Writes a CSV and a PNG per study into ``--out`` and prints the headline numbers.
"""

from __future__ import annotations

import dataclasses
import math
import os

from cli.args import add_data_args, add_executor_args, executor_spec, floats, limit_threads, load_model_and_data

STUDY_CHOICES = ("bits", "stuck", "ber", "all")


def register(sub):
    p = sub.add_parser("inject", help="mixed-precision fault-injection study (bit flips, stuck-at, BER, range check)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("study", choices=STUDY_CHOICES, help="which study: bits, stuck, ber or all")
    add_data_args(p)
    p.add_argument("--rows", type=int, default=16, metavar="R", help="PE rows of the array")
    p.add_argument("--cols", type=int, default=16, metavar="C", help="PE columns of the array")
    p.add_argument("--precisions", default="fp32,fp16,bf16,int8", metavar="P,...",
                   help="array precisions, comma-separated, of fp32, fp16, bf16, int8")
    p.add_argument("--trials", type=int, default=2, metavar="N", help="random draws per point (>= 1)")
    p.add_argument("--flips-per-image", type=float, default=1.0, metavar="RATE",
                   help="bits study: flips of the bit under study per image and GEMM (a Poisson mean)")
    p.add_argument("--stuck-rate", type=float, default=0.01, metavar="FRACTION",
                   help="stuck study: share of PEs with the bit stuck")
    p.add_argument("--bers", type=floats, default="1e-9,1e-8,1e-7,1e-6", metavar="B1,B2,...",
                   help="ber study: bit-error rates, comma-separated")
    p.add_argument("--bits", default=None, metavar="B,...",
                   help="bits and stuck studies: only these bit positions, comma-separated (default: every bit)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="images per simulated batch")
    p.add_argument("--out", default="examples/out", metavar="DIR", help="folder for the CSVs and PNGs")
    p.add_argument("--quick", action="store_true",
                   help="a fast smoke run: 1 trial, 120 test images, fp16 and int8 unless --precisions is given")
    add_executor_args(p)
    p.set_defaults(func=run)


def _check(args):
    names = [s.strip() for s in args.precisions.split(",") if s.strip()]
    from cli.fi_study import PRECISION_NAMES

    bad = [n for n in names if n not in PRECISION_NAMES]
    if bad or not names:
        raise ValueError(f"--precisions must name some of {', '.join(PRECISION_NAMES)}; got {args.precisions!r}.")
    if not 0 < args.flips_per_image <= 100:
        raise ValueError(f"--flips-per-image must be in (0, 100]; got {args.flips_per_image}.")
    if not 0 < args.stuck_rate <= 1:
        raise ValueError(f"--stuck-rate must be in (0, 1]; got {args.stuck_rate}.")
    if any(not 0 < b <= 1 for b in args.bers):
        raise ValueError(f"--bers must be rates in (0, 1]; got {args.bers}.")
    for name, v in (("--trials", args.trials), ("--batch-size", args.batch_size), ("--rows", args.rows),
                    ("--cols", args.cols)):
        if v < 1:
            raise ValueError(f"{name} must be an int >= 1; got {v}.")
    if args.bits is not None:
        try:
            args.bits = sorted({int(b) for b in args.bits.split(",") if b.strip()})
        except ValueError:
            raise ValueError(f"--bits must be comma-separated bit positions, e.g. 0,15,30; got {args.bits!r}.") from None
        if not args.bits or min(args.bits) < 0 or max(args.bits) > 31:
            raise ValueError(f"--bits must be bit positions in [0, 31]; got {args.bits}.")
    return ["fp16", "int8"] if args.quick and args.precisions == "fp32,fp16,bf16,int8" else names


def run(args):
    from cli.fi_figures import plot_ber, plot_bits, plot_stuck, plot_transient_vs_permanent
    from cli.fi_study import run_study, summarize_ber, summarize_bits

    precisions = _check(args)
    spec = executor_spec(args)
    limit_threads()
    model, data = load_model_and_data(args)
    if args.quick:
        data = dataclasses.replace(data, x_test=data.x_test[:120], y_test=data.y_test[:120])
    trials = 1 if args.quick else args.trials
    what = f"{args.model} on {data.name} ({len(data.y_test)} test images), {args.rows}x{args.cols} array"
    studies = ("bits", "stuck", "ber") if args.study == "all" else (args.study,)
    os.makedirs(args.out, exist_ok=True)
    rows = {}
    common = dict(precisions=precisions, trials=trials, seed=args.seed, out_dir=args.out, executor=spec,
                  per_image=args.flips_per_image, stuck_rate=args.stuck_rate, bers=args.bers,
                  batch_size=args.batch_size, bits=args.bits)
    for study in studies:
        rows[study], csv_path = run_study(study, model, data, (args.rows, args.cols), **common)
        png = csv_path[:-4] + ".png"
        if study == "bits":
            plot_bits(png, rows[study], precisions,
                      f"Transient flips of one bit, {args.flips_per_image:g} per image and GEMM (registers or "
                      f"outputs)\n{what}, mean of {trials} runs")
            _print_bits(summarize_bits(rows[study], precisions))
        elif study == "stuck":
            plot_stuck(png, rows[study], precisions,
                       f"One bit stuck in {100 * args.stuck_rate:g}% of PEs; {what}, mean of {trials} chips")
        else:
            summary = summarize_ber(rows[study], precisions)
            plot_ber(png, summary, precisions, f"Flips of every register bit; {what}, mean of {trials} runs")
            _print_ber(summary)
        print(f"wrote {png} and {csv_path}")
    if "bits" in rows and "stuck" in rows:
        png = os.path.join(args.out, "fi_transient_vs_permanent.png")
        plot_transient_vs_permanent(png, rows["bits"], rows["stuck"], precisions,
                                    f"Transient ({args.flips_per_image:g} per image and GEMM) against permanent "
                                    f"({100 * args.stuck_rate:g}% of PEs) faults of one bit; {what}")
        print(f"wrote {png}")
    return 0


def _pct(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _print_bits(summary):
    print(f"{'precision':>9} {'site':>8} {'worst bit':>9} {'field':>9} {'accuracy':>9} {'baseline':>9} "
          f"{'bits costing >1pt':>17}")
    for s in summary:
        print(f"{s['precision']:>9} {s['site']:>8} {s['worst_bit']:>9} {s['field']:>9} {_pct(s['accuracy']):>9} "
              f"{_pct(s['baseline']):>9} {s['bits_costing_1pt']:>17}")


def _print_ber(summary):
    print(f"{'precision':>9} {'BER':>8} {'none':>6} {'zero':>6} {'clamp':>6} {'recovered (zero, clamp)':>24} "
          f"{'detected':>9} {'flagged':>9}")
    for s in summary:
        rec = f"{_pct(s['recovered_zero'])}%, {_pct(s['recovered_clamp'])}%"
        print(f"{s['precision']:>9} {s['ber']:>8.0e} {_pct(s['none']):>6} {_pct(s['zero']):>6} {_pct(s['clamp']):>6} "
              f"{rec:>24} {_pct(s['detection']):>9} {100 * s['flag_rate']:>8.4f}%")
