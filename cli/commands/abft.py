"""``efat abft``: ABFT on the array.

``overhead``: the time overhead of global, fold-level, replication and intensity-guided ABFT
per model on the memory-aware timing model, over batch sizes, array sizes, bandwidths and
where global ABFT sums its checksums (at the array's ports, or by the host in separate passes
over DRAM, as on a GPU); the improvement factor of the intensity-guided choice over global
ABFT everywhere, beside Kosaian & Rashmi's 1.09-5.3x (SC21). Writes ``abft_overhead.csv`` and
``abft_overhead.png`` into ``--out``.
"""

from __future__ import annotations

import math
import os

from cli.args import floats, ints


def register(sub):
    p = sub.add_parser("abft", help="ABFT on the array: time overhead per model, intensity-guided choice",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("study", choices=("overhead",), help="which study")
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
    p.add_argument("--out", default="examples/out", metavar="DIR", help="folder for the CSV and PNG")
    p.set_defaults(func=run)


def run(args) -> int:
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
