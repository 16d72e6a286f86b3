"""Peak memory of evaluating a model on every chip of a population, against the number of chips.

The zoo MLP (int8) on the first 64 digits test images, every chip with bypass, on two
arrays: 16x16 at 1% faulty PEs (3 per chip) and 128x128 at 1-5% (about 490 per chip).
Three ways to run the same chips (chip ``i`` is the same in each; the accuracies are
checked equal):

* ``loop``: ``Population.generate`` then ``run_model`` per chip, what a user wrote
  before :func:`training.population_accuracy` (the test of determinism does this);
* ``population``: ``population_accuracy(qm, data, Population.generate(...))``;
* ``stream``: ``population_accuracy(qm, data, Population.stream(...))``, chips drawn one
  at a time and never kept.

Every (config, way, size) runs in a fresh interpreter, so peaks do not carry over: peak
RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end, "setup" the same just
before the chips (after imports, model, quantization and a 2-chip warm-up). A second run
per size under ``tracemalloc`` gives the peak of Python-visible allocations (numpy
included, torch's not) during the chips alone; it is ~3x slower, so only for 100 and
1,000 chips unless ``--trace-all``. (The stream's small traced growth from 100 to 1,000
chips on 16x16 is CPython's free lists of small tuples filling up to their caps: bounded,
and gone from the RSS slope over 10,000 chips.)

    .venv/bin/python bench/bench_memory.py            # about 10 minutes on this machine
    .venv/bin/python bench/bench_memory.py --quick    # 100 and 1,000 chips only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_result  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = (100, 1_000, 10_000)
#: name -> (rows, cols, per-chip fault rates of Population.generate)
CONFIGS = {"16x16, 1%": (16, 16, 0.01), "128x128, 1-5%": (128, 128, "uniform:0.01,0.05")}
WAYS = ("loop", "population", "stream")
N_IMAGES = 64
SEED = 0


def child(config: str, way: str, n: int, trace: bool) -> dict:
    """One measurement, in this (fresh) process."""
    import resource
    import time
    import tracemalloc

    import mapping  # noqa: F401  (first: pins torch's CPU code paths)
    import numpy as np
    import torch

    from faults import Population
    from mapping import quantize, run_model
    from simulator import ArrayConfig, SystolicArray
    from training import load_dataset, population_accuracy, pretrained

    def maxrss() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB

    torch.set_num_threads(1)
    rows, cols, rates = CONFIGS[config]
    cfg = ArrayConfig(rows, cols)
    ds = load_dataset("digits", seed=0)
    qm = quantize(pretrained("mlp", ds, seed=0), ds.x_train[:512])
    data = (ds.x_test[:N_IMAGES], ds.y_test[:N_IMAGES])
    for chip in Population.stream(cfg, 2, rates=rates, seed=SEED + 1):  # warm-up: compiled kernels, first-call caches
        run_model(qm, data, SystolicArray(cfg, chip.fault_map, "bypass"), progress=False)
    setup = maxrss()
    if trace:
        tracemalloc.start()
    t = time.perf_counter()
    if way == "loop":
        pop = Population.generate(cfg, n, rates=rates, seed=SEED)
        acc = np.array([run_model(qm, data, SystolicArray(cfg, c.fault_map, "bypass"), progress=False).accuracy
                        for c in pop])
    elif way == "population":
        acc = population_accuracy(qm, data, Population.generate(cfg, n, rates=rates, seed=SEED), progress=False)
    else:
        acc = population_accuracy(qm, data, Population.stream(cfg, n, rates=rates, seed=SEED), progress=False)
    seconds = time.perf_counter() - t
    out = {"setup": setup, "peak": maxrss(), "seconds": seconds, "mean": float(acc.mean()),
           "digest": hashlib.sha256(np.asarray(acc, np.float64).tobytes()).hexdigest()[:16]}
    if trace:
        out["traced_peak"] = tracemalloc.get_traced_memory()[1] / 2**20
    return out


def measure(config: str, way: str, n: int, trace: bool) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps([config, way, n, trace])]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{config} {way} {n}: {res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="100 and 1,000 chips only")
    p.add_argument("--trace-all", action="store_true", help="tracemalloc runs at every size (slow)")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    sizes = SIZES[:2] if args.quick else SIZES
    lines = [
        f"Peak RSS of `population_accuracy` and of the loop it replaces, against the number of chips: the zoo MLP "
        f"(int8, bypass) on {N_IMAGES} digits test images per chip, one fresh process per cell, serial "
        f"(torch on one thread); {machine()}.",
        "",
        "Peak and setup: `ru_maxrss` at the end and just before the chips (after imports, model, quantization, a "
        "2-chip warm-up). Growth per 1,000 chips: the slope of the peak between the smallest and largest size. "
        "Traced peak: `tracemalloc` peak of Python-visible allocations (numpy included, torch not) during the "
        "chips, in a separate run (3x slower).",
        "",
        "| array, fault rate | way | chips | setup MiB | peak MiB | peak - setup MiB | traced peak MiB | s | chips/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    summary = ["", "| array, fault rate | way | peak growth per 1,000 chips (MiB) | traced growth per 1,000 chips (MiB) |",
               "|---|---|---|---|"]
    for config in CONFIGS:
        digests = {}
        for way in WAYS:
            rows = {}
            for n in sizes:
                r = measure(config, way, n, trace=False)
                if n in SIZES[:2] or args.trace_all:
                    r["traced_peak"] = measure(config, way, n, trace=True)["traced_peak"]
                rows[n] = r
                if digests.setdefault(n, r["digest"]) != r["digest"]:
                    raise AssertionError(f"{config}, {n} chips: '{way}' gave other accuracies than '{WAYS[0]}'")
                traced = f"{r['traced_peak']:.2f}" if "traced_peak" in r else "-"
                lines.append(f"| {config} | {way} | {n:,} | {r['setup']:.1f} | {r['peak']:.1f} | "
                             f"{r['peak'] - r['setup']:.1f} | {traced} | {r['seconds']:.1f} | "
                             f"{n / r['seconds']:.0f} |")
                print(lines[-1], file=sys.stderr, flush=True)
            lo, hi = sizes[0], sizes[-1]
            slope = (rows[hi]["peak"] - rows[lo]["peak"]) / (hi - lo) * 1000
            traced = [n for n in sizes if "traced_peak" in rows[n]]
            tslope = ((rows[traced[-1]]["traced_peak"] - rows[traced[0]]["traced_peak"]) / (traced[-1] - traced[0])
                      * 1000)
            summary.append(f"| {config} | {way} | {slope:+.2f} ({lo:,} to {hi:,}) | "
                           f"{tslope:+.3f} ({traced[0]:,} to {traced[-1]:,}) |")
    write_result("memory", "\n".join(lines + summary + [
        "", "The three ways gave the same accuracies, chip for chip, at every size (checked).", ""]))


if __name__ == "__main__":
    main()
