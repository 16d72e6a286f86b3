"""``fast`` engine throughput against NumPy float32 ``x @ w`` of the same shape.

128x128 array, M=4096, K=1152, N=256, 1% faulty PEs (psum stuck-at faults), int8.
Target: ratio (numpy time / fast time) >= 0.25.

    .venv/bin/python bench/bench_fast.py
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blocks, machine, write_result  # noqa: E402

from faults import FaultMap  # noqa: E402
from simulator import ArrayConfig, SystolicArray  # noqa: E402

M, K, N, R, C = 4096, 1152, 256, 128, 128


def main():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (M, K), dtype=np.int8)
    w = rng.integers(-128, 128, (K, N), dtype=np.int8)
    xf, wf = x.astype(np.float32), w.astype(np.float32)
    cfg = ArrayConfig(R, C)
    fm = FaultMap.random(cfg, 0.01, seed=0, sites=("psum",))
    mixed = FaultMap.random(cfg, 0.01, seed=0)
    faulty = SystolicArray(cfg, fm)
    fns = {
        "numpy float32 x @ w": lambda: xf @ wf,
        "fast, 1% psum faults": lambda: faulty.matmul(x, w),
        "fast, 1% faults, all sites": lambda: SystolicArray(cfg, mixed).matmul(x, w),
        "fast, 1% psum faults, bypass": lambda: SystolicArray(cfg, fm, "bypass").matmul(x, w),
        "fast, fault-free": lambda: SystolicArray(cfg).matmul(x, w),
    }
    t = blocks(fns, reps=5, rounds=3)
    base = t["numpy float32 x @ w"]
    rows = [f"| {k} | {v * 1e3:.1f} | {base / v:.2f} |" for k, v in t.items()]
    text = "\n".join(
        [
            f"GEMM M={M} K={K} N={N} on a {R}x{C} array ({fm.n_faulty} faulty PEs); {machine()}",
            "",
            "| run | median ms | ratio to numpy float32 (higher is better) |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )
    write_result("fast", text)


if __name__ == "__main__":
    main()
