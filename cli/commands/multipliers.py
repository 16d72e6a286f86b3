"""``efat multipliers``: the approximate multipliers of the library (or your tables) and their errors.

Prints, for each multiplier, the error metrics EvoApprox reports, computed over all 65,536
int8 x int8 pairs as the array forms the products (sign-magnitude use of unsigned
tables): mean absolute error (MAE, and % of the 2**16 output range), worst-case error
(WCE), mean relative error (MRE), error probability (EP), bias (mean signed error, and of
the magnitude), the product register's width, and a rough energy proxy (share of the
exact array's partial-product cells).
"""

from __future__ import annotations

import csv
import os


def register(sub):
    p = sub.add_parser("multipliers", help="approximate multipliers and their error metrics",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="library multipliers: exact, mitchell, trunc:K, bam:V,H, drum:K, ilm:I "
                        "(default: the library's set)")
    p.add_argument("--table", action="append", default=[], metavar="FILE",
                   help="also a table of yours: .bin (TFApprox/EvoApprox, 65,536 little-endian uint16), .npy or "
                        ".csv (256x256); repeatable (default: none)")
    p.add_argument("--signed", action="store_true",
                   help="--table files hold signed products indexed by value + 128 (default: unsigned, sign-magnitude)")
    p.add_argument("--csv", default=None, metavar="FILE.csv", help="also write the table as CSV (default: none)")
    p.set_defaults(func=run)


def run(args):
    from fileio import atomic_write
    from simulator import MULTIPLIERS, LutPrecision, cell_share, error_metrics, load_table, multiplier

    rows = []
    for name in args.names or MULTIPLIERS:
        m = error_metrics(multiplier(name))
        rows.append(dict(m, product_bits=multiplier(name).product_bits, cells=cell_share(name)))
    for path in args.table:
        p = LutPrecision(load_table(path, signed=True if args.signed else False), signed=args.signed,
                         name=os.path.basename(path))
        rows.append(dict(error_metrics(p), product_bits=p.product_bits, cells=float("nan")))
    head = f"{'multiplier':>14} {'MAE':>9} {'MAE%':>7} {'WCE':>6} {'WCE%':>6} {'MRE%':>6} {'EP%':>6} " \
           f"{'bias':>6} {'bias|p|':>8} {'p bits':>6} {'cells':>6}"
    print(head)
    for r in rows:
        cells = "-" if r["cells"] != r["cells"] else f"{r['cells']:.2f}"
        print(f"{r['name']:>14} {r['mae']:9.2f} {r['mae_pct']:7.3f} {r['wce']:6d} {r['wce_pct']:6.2f} "
              f"{r['mre_pct']:6.2f} {r['ep_pct']:6.1f} {r['bias']:6.2f} {r['bias_magnitude']:8.2f} "
              f"{r['product_bits']:6d} {cells:>6}")
    if args.csv:
        with atomic_write(args.csv, newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {args.csv}")
    return 0
