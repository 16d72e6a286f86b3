"""eFAT against Reduce and fixed FAT, all three executed, over several populations.

Runs the whole pipeline of ``efat demo`` (DemoConfig defaults: LeNet-5, 32x32 array, an
adaptively sampled resilience map for a 2-point drop met by 90% of chips at 90%
confidence, 5 populations of 60 chips with log-normal fault rates around 2%) on digits
and, when the MNIST files are present, on MNIST, and on MNIST at fault rates around 20%
(``CASES``); every policy is executed and every chip verified on the simulator. Targets: eFAT <= 60% of Reduce and <= 1/3 of fixed FAT, 100%
of chips verified (chips the map calls infeasible and no FAT brings within the
constraint are listed as beyond repair), on both data sets.

    .venv/bin/python bench/bench_efat.py [--out DIR] [--resume] [--cases digits,mnist,mnist-high]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_result  # noqa: E402

from cli.pipeline import DemoConfig, run_demo  # noqa: E402

#: Cases: DemoConfig with these changes. On MNIST, LeNet-5 meets a 2-point drop with bypass
#: alone at every rate of the demo's grid but 15% (measured: E* = 0 up to 12%), so nothing
#: is retrained there; "mnist-high" moves the rates to where bypass alone fails (from ~20%).
#: There the demo's grid put E* on its smallest amount, 0.5 epochs, at every rate from 15% on
#: (unresolved: ResilienceMap.unresolved), so the case adds 1/8 and 1/4 epoch below it.
CASES = {
    "digits": {},
    "mnist": {},
    "mnist-high": {"chip_rates": "lognormal:0.2,0.3", "fault_rates": (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5),
                   "epochs": (0.125, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)},
}

MNIST = pathlib.Path(os.environ.get("EFAT_MNIST", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join("bench", "results", "efat_demo"))
    ap.add_argument("--resume", action="store_true",
                    help="keep what --out holds (the wall time then counts only the missing work)")
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"cases, comma-separated, of {', '.join(CASES)} (the mnist ones only when present)")
    args = ap.parse_args(argv)
    sets = [d for d in args.cases.split(",") if not d.startswith("mnist") or MNIST.is_dir()]
    lines = [f"eFAT, Reduce and fixed FAT, each executed; DemoConfig defaults with the CASES changes, 2 local processes; {machine()}", "",
             "    .venv/bin/python bench/bench_efat.py", "",
             "| case | map chips | eFAT / Reduce | eFAT / fixed | eFAT epochs | Reduce epochs | fixed epochs "
             "| verified (eFAT, Reduce, fixed) | beyond repair | on paper: eFAT / Reduce, floor / Reduce | wall |",
             "|---|--:|---|---|---|---|---|---|---|---|--:|"]
    for name in sets:
        out = os.path.join(args.out, name)
        if not args.resume and os.path.isdir(out):
            shutil.rmtree(out)  # the wall time is of the whole pipeline, not of a resumed run
        spec = f"mnist:{MNIST}" if name.startswith("mnist") else name
        cfg = DemoConfig(data=spec, executor="processes:2", **CASES[name])
        t = time.perf_counter()
        s = run_demo(out, cfg, log=lambda *a: None)
        wall = time.perf_counter() - t
        lines.append(f"| {name} | {sum(s['map']['chips'])} | {_ratio(s['efat_of_reduce'])} "
                     f"| {_ratio(s['efat_of_fixed'])} | {_mean(s['efat'])} | {_mean(s['reduce'])} | {_mean(s['fixed'])} "
                     f"| {s['efat_verified']}, {s['reduce_verified']}, {s['fixed_verified']} of {s['chips']} "
                     f"| {_beyond(s)} | {_paper(s)} | {wall / 60:.1f} min |")
    lines += ["", "Ratios: mean over the 5 populations, 90% Student-t interval in brackets, then min-max; "
              "epochs: mean (min-max) per population of 60 chips; on paper: the planned amounts, "
              "and the floor no grouping can beat with the case's map (means).", ""]
    write_result("efat", "\n".join(lines))


def _ratio(x) -> str:
    if x is None:
        return "undefined (nothing retrained)"
    if x["lower"] is None:  # one population retrained anything: no interval
        return f"{100 * x['mean']:.1f}% (one population)"
    return (f"{100 * x['mean']:.1f}% [{100 * x['lower']:.1f}, {100 * x['upper']:.1f}] "
            f"({100 * x['min']:.1f}-{100 * x['max']:.1f})")


def _paper(s) -> str:
    """eFAT's plans and the floor of any grouping (Plan.grouping_floor), on paper, as shares of Reduce."""
    p = s.get("paper") or {}
    if not p.get("floor_of_reduce"):
        return "-"
    return f"{100 * p['efat_of_reduce']['mean']:.1f}%, {100 * p['floor_of_reduce']['mean']:.1f}%"


def _beyond(s) -> str:
    """Chips that failed: those the map calls infeasible (beyond repair), and any other."""
    text = ", ".join(f"{b['id']} ({100 * b['rate']:.1f}%)" for b in s["beyond_repair"]) or "none"
    feasible = max(s[f"{p}_feasible_failed"] for p in ("efat", "reduce", "fixed"))
    return text + (f"; {feasible} feasible chips FAILED" if feasible else "")


def _mean(x) -> str:
    return f"{x['mean']:.4g} ({x['min']:.4g}-{x['max']:.4g})"


if __name__ == "__main__":
    main()
