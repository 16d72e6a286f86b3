"""eFAT on the demo population: total retraining against fixed-amount FAT and Reduce.

Runs the whole pipeline of ``efat demo`` (DemoConfig defaults: LeNet-5 on digits, 32x32
array, 60 chips with log-normal fault rates around 2%, max drop 2 points verified on
every chip, amounts planned with a 1-point margin) and reports the retraining totals as
executed, with every chip verified on the simulator. Target: eFAT <= 1/3 of fixed FAT,
below Reduce, 100% of chips meeting the constraint.

    .venv/bin/python bench/bench_efat.py [--out DIR] [--resume]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_result  # noqa: E402

from cli.pipeline import DemoConfig, run_demo  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join("bench", "results", "efat_demo"))
    ap.add_argument("--resume", action="store_true",
                    help="keep what --out holds (the wall time then counts only the missing work)")
    args = ap.parse_args(argv)
    if not args.resume and os.path.isdir(args.out):
        shutil.rmtree(args.out)  # the wall time is of the whole pipeline, not of a resumed run
    cfg = DemoConfig()
    t = time.perf_counter()
    plan, report = run_demo(args.out, cfg, log=lambda *a: None)
    wall = time.perf_counter() - t
    tot = report.totals
    passed = sum(c.passed for c in report.chips)
    rows = [f"| {name} | {tot[k]['runs']} | {tot[k]['epochs']:g} | {tot[k]['seconds']:.1f}{' (est.)' if tot[k].get('estimated') else ''} |"
            for k, name in (("fixed", "fixed-amount FAT"), ("reduce", "Reduce (per-chip E*)"),
                            ("efat", "eFAT as executed"))]
    text = "\n".join([
        f"{cfg.model} on {cfg.data}, {cfg.rows}x{cfg.cols} array, {cfg.chips} chips (rates {cfg.chip_rates}), "
        f"max drop {100 * cfg.max_accuracy_drop:g} points (planned with a {100 * cfg.margin:g}-point margin); {machine()}",
        "",
        "| policy | retraining runs | epochs | seconds |",
        "|---|---|---|---|",
        *rows,
        "",
        f"eFAT = **{tot['efat']['epochs'] / tot['fixed']['epochs']:.1%} of fixed FAT** and "
        f"**{tot['efat']['epochs'] / tot['reduce']['epochs']:.1%} of Reduce** (planned: {plan.costs.efat.epochs:g} epochs "
        f"in {len(plan.groups)} groups; {tot['chips_failing_group_model']} chips retrained on their own after a failed check).",
        f"Chips meeting the constraint on the simulator: **{passed}/{len(report.chips)}**. "
        f"Whole pipeline (map, plan, retraining, verification, figures): {wall:.0f} s.",
        "",
    ])
    write_result("efat", text)


if __name__ == "__main__":
    main()
