"""``cycle`` engine speed in PE-cycles per second (every register of every PE, every cycle).

128x128 array, 1% faulty PEs over all sites: M=2048, K=512, N=256 (8 folds, split over
the workers), and M=8192, K=128, N=128 (one fold: its columns are split over the workers).
Target (issue 13): >= 2e9 PE-cycles/s on 2 threads, also for the single fold.

    .venv/bin/python bench/bench_cycle.py
"""

from __future__ import annotations

import os
import sys

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, timeit, write_result  # noqa: E402

from faults import FaultMap  # noqa: E402
from simulator import ArrayConfig, SystolicArray  # noqa: E402

R, C = 128, 128
GEMMS = ((2048, 512, 256), (8192, 128, 128))


def main():
    rng = np.random.default_rng(0)
    cfg = ArrayConfig(R, C)
    arr = SystolicArray(cfg, FaultMap.random(cfg, 0.01, seed=0))
    rows = []
    for M, K, N in GEMMS:
        x = rng.integers(-128, 128, (M, K), dtype=np.int8)
        w = rng.integers(-128, 128, (K, N), dtype=np.int8)
        res = arr.matmul(x, w, "cycle")  # warm (and compile)
        pe_cycles = res.n_cycles * cfg.n_pes
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            t = float(np.median(timeit(lambda: arr.matmul(x, w, "cycle"), 5)))
            rows.append(f"| {M}x{K}x{N} | {res.folds} | {res.n_cycles:,} | {threads} | {t:.3f} | {pe_cycles / t:.2e} |")
    text = "\n".join(
        [
            f"{R}x{C} array, 1% faulty PEs (all sites); {machine()}",
            "",
            "| GEMM MxKxN | folds | cycles | threads | median s | PE-cycles/s |",
            "|---|--:|--:|--:|--:|--:|",
            *rows,
            "",
        ]
    )
    write_result("cycle", text)


if __name__ == "__main__":
    main()
