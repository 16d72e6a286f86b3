"""Scale-out: chips verified per minute, serial against a 2-worker Dask cluster.

Verification is what a population run spends its time on: every chip, with its own fault
map, evaluated on the simulator (LeNet-5, int8, bypass, 128x128 array) on the 2,000 test
images of the documented MNIST split (``../shared/data/mnist``; digits when absent). The
same tasks (``efat.execution.train_unit`` at amount 0: the pretrained model pruned for the
chip, then verified) run on the serial executor and on a ``distributed.LocalCluster`` of
1 and 2 workers; the accuracies must be identical. Serial runs twice: as the serial
executor runs (numba's simulator kernels on both cores) and with numba on one thread, as
every Dask worker task runs, which separates Dask's overhead from the threads. The
throughput of a cluster of N workers is *projected* from the measured scaling from 1 to 2
workers (each worker one core here), not measured.

    .venv/bin/python bench/bench_scale.py [--chips 60]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numba

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_result  # noqa: E402

from efat.execution import train_unit  # noqa: E402
from efat.executors import Dask, Serial  # noqa: E402
from faults import Population  # noqa: E402
from simulator import ArrayConfig  # noqa: E402
from training import load_dataset, pretrained  # noqa: E402

MNIST = pathlib.Path(os.environ.get("EFAT_MNIST", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--chips", type=int, default=60)
    args = ap.parse_args(argv)
    spec = f"mnist:{MNIST}" if MNIST.is_dir() else "digits"
    data = load_dataset(spec, seed=0)
    model = pretrained("lenet5", data, seed=0)
    cfg = ArrayConfig(128, 128)
    pop = Population.generate(cfg, args.chips, rates="uniform:0.005,0.05", seed=0)
    shared = {"model": model, "data": data, "cfg": cfg, "seed": 0, "lr": 1e-3, "batch_size": 32}
    tasks = [{"fault_map": c.fault_map, "members": [c.fault_map], "amount": 0.0, "start": None} for c in pop]
    rows, reference = [], None
    runs = [("serial (numba on 2 threads)", Serial), ("serial, numba on 1 thread", Serial)] + [
        (f"Dask LocalCluster, {n} worker{'s' * (n > 1)}", lambda n=n: Dask(n_workers=n)) for n in (1, 2)]
    for name, make in runs:
        numba.set_num_threads(1 if "1 thread" in name else numba.config.NUMBA_NUM_THREADS)
        with make() as ex:
            ex.run(train_unit, tasks[:2], shared, progress=False)  # warm: imports, numba compilation, data
            t = time.perf_counter()
            results = ex.run(train_unit, tasks, shared, progress=False)
            seconds = time.perf_counter() - t
        accuracy = [r["accuracy"][0] for r in results]
        reference = reference or accuracy
        assert accuracy == reference, f"{name}: other accuracies than serial"
        rows.append((name, seconds, 60 * len(tasks) / seconds))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    one, two = rows[2][2], rows[3][2]
    efficiency = two / (2 * one)
    lines = [
        f"Verification of {len(tasks)} chips (LeNet-5 on {len(data.x_test)} {data.name} test images, int8, bypass, "
        f"{cfg.rows}x{cfg.cols} array; rates uniform 0.5-5%); {machine()}",
        "",
        "    .venv/bin/python bench/bench_scale.py",
        "",
        "| executor | seconds | chips per minute |",
        "|---|--:|--:|",
        *(f"| {name} | {s:.1f} | {thr:.0f} |" for name, s, thr in rows),
        "",
        f"Identical accuracies on every executor. Scaling from 1 to 2 Dask workers: {two / one:.2f}x "
        f"(efficiency {efficiency:.0%} per worker). Projected, not measured: a cluster of N such workers at "
        f"that efficiency verifies about {one * efficiency:.0f} x N chips per minute "
        f"(N = 16: {16 * one * efficiency:.0f}).",
        "",
    ]
    write_result("scale", "\n".join(lines))


if __name__ == "__main__":
    main()
