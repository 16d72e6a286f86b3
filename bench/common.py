"""Small helpers shared by the benchmarks: timing and result files."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import numpy as np
from numba import njit, prange

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def timeit(fn, reps: int) -> list[float]:
    """Wall times of ``reps`` calls of ``fn`` (seconds)."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def blocks(fns: dict, reps: int = 5, rounds: int = 3) -> dict:
    """Median time of each function, measured in alternating blocks of ``reps`` calls.

    Blocks (not single calls) alternate so one library's spinning worker threads do not
    slow the next library's first call; rounds alternate so drift hits both alike.
    """
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            fn()  # warm
            times[k] += timeit(fn, reps)
    return {k: float(np.median(v)) for k, v in times.items()}


def machine() -> str:
    try:
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name"))
    except Exception:
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, numpy {np.__version__}"


def write_result(name: str, text: str) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)
    return path


@njit(parallel=True, cache=True)
def ordered_limit(x, w, y):
    """``y[m, :] += x[m, k] * w[k, :]`` for k in order: the order-preserving limit (the fastest
    way to add in a fixed order this machine offers without hand-written SIMD)."""
    for m in prange(x.shape[0]):
        y[m, :] = 0
        for k in range(x.shape[1]):
            xv = x[m, k]
            for n in range(w.shape[1]):
                y[m, n] += xv * w[k, n]
