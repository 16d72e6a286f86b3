"""``cycle`` engine speed in PE-cycles per second (every register of every PE, every cycle).

128x128 array, M=2048, K=512, N=256 (8 folds), 1% faulty PEs over all sites.
Target: >= 1e9 PE-cycles/s on this 2-core machine.

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

M, K, N, R, C = 2048, 512, 256, 128, 128


def main():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (M, K), dtype=np.int8)
    w = rng.integers(-128, 128, (K, N), dtype=np.int8)
    cfg = ArrayConfig(R, C)
    arr = SystolicArray(cfg, FaultMap.random(cfg, 0.01, seed=0))
    res = arr.matmul(x, w, "cycle")  # warm (and compile)
    pe_cycles = res.n_cycles * cfg.n_pes
    rows = []
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        numba.set_num_threads(threads)
        t = float(np.median(timeit(lambda: arr.matmul(x, w, "cycle"), 5)))
        rows.append(f"| {threads} | {t:.3f} | {pe_cycles / t:.2e} |")
    text = "\n".join(
        [
            f"GEMM M={M} K={K} N={N} on a {R}x{C} array, {res.folds} folds, {res.n_cycles:,} cycles "
            f"= {pe_cycles:,} PE-cycles; {machine()}",
            "",
            "| threads | median s | PE-cycles/s |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )
    write_result("cycle", text)


if __name__ == "__main__":
    main()
