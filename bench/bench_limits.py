"""Every engine x precision x fault kind against the limit of this machine (issue 13).

One table, each row's throughput as a ratio to the limit that applies to it, measured in
the same run (alternating blocks, medians):

* **BLAS**: NumPy float32 ``x @ w`` (reassociates, FMA, all cores) -- the limit of the
  integer ``fast`` paths, which are exact on float BLAS; target >= 0.5 with 1% faulty PEs;
* **ordered**: a parallel Numba loop ``y[m, :] += x[m, k] * w[k, :]`` over ``k`` in order
  (one sum per output, never reassociated) -- the limit of the float and LUT ``fast``
  paths, which must keep each column's order of additions; target >= 0.5;
* **registers**: a parallel Numba loop that moves the ``cycle`` engine's register traffic
  (read act, psum and weight, write act and psum, int32, per PE and cycle) and adds, with
  no fault logic -- the bound for stepping every register; target >= 2e9 PE-cycles/s.

``fast`` rows run the GEMM M=4096 K=1152 N=256 on a 128x128 array; ``cycle`` rows the
8-fold GEMM M=2048 K=512 N=256 and the one-fold M=8192 K=128 N=128. 1% = 164 faulty PEs
(stuck-at, one random bit each, at the sites named); flips are random over all sites.

    .venv/bin/python bench/bench_limits.py
"""

from __future__ import annotations

import os
import sys

import numba
import numpy as np
from numba import njit, prange

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blocks, machine, ordered_limit, write_result  # noqa: E402

from faults import FaultMap, random_flips  # noqa: E402
from simulator import BF16, FP8_E4M3, FP16, FP32, INT8, ArrayConfig, SystolicArray, multiplier  # noqa: E402

R = C = 128
FAST = (4096, 1152, 256)
CYCLE = ((2048, 512, 256), (8192, 128, 128))


@njit(parallel=True, cache=True)
def register_limit(n_cycles, a, p, wv):
    """``n_cycles`` cycles of an RxC array's register traffic, split over the threads by
    row blocks: each PE reads its act, psum and weight and writes act and psum (int32)."""
    n_threads = a.shape[0]
    for t in prange(n_threads):
        ap, an, pp, pn = a[t, 0], a[t, 1], p[t, 0], p[t, 1]
        for _ in range(n_cycles // n_threads):
            for r in range(wv.shape[0]):
                for c in range(wv.shape[1]):
                    an[r, c + 1] = ap[r, c]
                    pn[r + 1, c] = pp[r, c] + wv[r, c] * ap[r, c]
            ap, an = an, ap
            pp, pn = pn, pp


def _fast_rows(rng):
    M, K, N = FAST
    xf = rng.standard_normal((M, K)).astype(np.float32)
    wf = rng.standard_normal((K, N)).astype(np.float32)
    xi = rng.integers(-128, 128, (M, K), dtype=np.int8)
    wi = rng.integers(-128, 128, (K, N), dtype=np.int8)
    y = np.zeros((M, N), np.float32)
    ordered_limit(xf[:8], wf, y[:8])  # compile
    limits = {"BLAS": lambda: xf @ wf, "ordered": lambda: ordered_limit(xf, wf, y)}
    rows = {}  # name -> (limit, fn)

    def add(prec, label, limit, faults=None, mitigation=None, flips=0):
        cfg = ArrayConfig(R, C, prec)
        if prec.operand_dtypes[0] == np.int8:  # integer and LUT precisions
            x, w = xi, wi
        else:
            x, w = xf.astype(prec.operand_dtypes[0]), wf.astype(prec.operand_dtypes[1])
        fm = None if faults is None else FaultMap.random(cfg, 0.01, seed=0, sites=faults)
        arr = SystolicArray(cfg, fm, mitigation)
        ev = random_flips(cfg, M, K, N, None, seed=flips, count=flips) if flips else None
        rows[f"fast | {prec.name} | {label}"] = (limit, lambda: arr.matmul(x, w, flips=ev))

    for label, sites, mit, flips in (("fault-free", None, None, 0), ("1% act", ("act",), None, 0),
                                     ("1% weight", ("weight",), None, 0), ("1% product", ("product",), None, 0),
                                     ("1% psum", ("psum",), None, 0), ("1% all sites", _ALL, None, 0),
                                     ("1% all sites, bypass", _ALL, "bypass", 0), ("10 flips", None, None, 10),
                                     ("1,000 flips", None, None, 1000)):
        add(INT8, label, "BLAS", sites, mit, flips)
    for label, sites, mit, flips in (("fault-free", None, None, 0), ("1% all sites", _ALL, None, 0),
                                     ("1% all sites, bypass", _ALL, "bypass", 0), ("10 flips", None, None, 10),
                                     ("1,000 flips", None, None, 1000)):
        add(FP16, label, "ordered", sites, mit, flips)
    for prec in (BF16, FP32, FP8_E4M3):
        add(prec, "1% all sites", "ordered", _ALL)
    lut = multiplier("drum:4")
    add(lut, "fault-free", "ordered")
    add(lut, "1% all sites", "ordered", _ALL)
    return limits, rows


_ALL = ("act", "weight", "product", "psum")


def _cycle_rows(rng):
    n_threads = numba.get_num_threads()
    a = np.zeros((n_threads, 2, R, C + 1), np.int32)
    p = np.zeros((n_threads, 2, R + 1, C), np.int32)
    wv = rng.integers(-128, 128, (R, C)).astype(np.int32)
    n_lim = 4000
    register_limit(n_threads, a, p, wv)  # compile
    limits = {"registers": lambda: register_limit(n_lim, a, p, wv)}
    rows, pe_cycles = {}, {"registers": n_lim * R * C}
    for M, K, N in CYCLE:
        x = rng.integers(-128, 128, (M, K), dtype=np.int8)
        w = rng.integers(-128, 128, (K, N), dtype=np.int8)
        cfg = ArrayConfig(R, C)
        fm = FaultMap.random(cfg, 0.01, seed=0)
        kinds = [("fault-free", SystolicArray(cfg), None), ("1% all sites", SystolicArray(cfg, fm), None)]
        if (M, K, N) == CYCLE[0]:
            kinds += [("1% all sites, bypass", SystolicArray(cfg, fm, "bypass"), None),
                      ("1,000 flips", SystolicArray(cfg), random_flips(cfg, M, K, N, None, seed=1, count=1000))]
        for label, arr, ev in kinds:
            name = f"cycle | int8 | {label}, {M}x{K}x{N} ({cfg.folds(K, N)[0] * cfg.folds(K, N)[1]} folds)"
            rows[name] = ("registers", lambda arr=arr, x=x, w=w, ev=ev: arr.matmul(x, w, "cycle", flips=ev))
            pe_cycles[name] = arr.matmul(x, w, "cycle").n_cycles * cfg.n_pes
    return limits, rows, pe_cycles


TARGETS = {"BLAS": ">= 0.5 with faults", "ordered": ">= 0.5", "registers": ">= 2e9 PE-cycles/s"}


def main():
    rng = np.random.default_rng(0)
    fl, fast = _fast_rows(rng)
    tf = blocks({**fl, **{k: v[1] for k, v in fast.items()}}, reps=3, rounds=3)
    cl, cyc, pe_cycles = _cycle_rows(rng)
    tc = blocks({**cl, **{k: v[1] for k, v in cyc.items()}}, reps=2, rounds=3)
    M, K, N = FAST
    lines = [f"{machine()}; {numba.get_num_threads()} Numba threads", "", "    .venv/bin/python bench/bench_limits.py", "",
             "| engine | precision | run | median ms | limit | ratio to limit | ratio to BLAS | throughput |",
             "|---|---|---|--:|---|--:|--:|--:|"]
    for lim in ("BLAS", "ordered"):
        lines.append(f"| - | float32 | **{lim} limit** | {tf[lim] * 1e3:.1f} | {lim} | 1.00 | "
                     f"{tf['BLAS'] / tf[lim]:.3f} | {M * K * N / tf[lim]:.2e} MAC/s |")
    for name, (lim, _) in fast.items():
        t = tf[name]
        lines.append(f"| {name} | {t * 1e3:.1f} | {lim} | {tf[lim] / t:.3f} | {tf['BLAS'] / t:.3f} | "
                     f"{M * K * N / t:.2e} MAC/s |")
    lim_rate = pe_cycles["registers"] / tc["registers"]
    lines.append(f"| - | int32 | **register-traffic limit** | {tc['registers'] * 1e3:.1f} | registers | 1.00 | - | "
                 f"{lim_rate:.2e} PE-cycles/s |")
    for name in cyc:
        rate = pe_cycles[name] / tc[name]
        lines.append(f"| {name} | {tc[name] * 1e3:.1f} | registers | {rate / lim_rate:.3f} | - | {rate:.2e} PE-cycles/s |")
    lines += ["", "Targets (issue 13): " + "; ".join(f"{k}: {v}" for k, v in TARGETS.items()) + ".", ""]
    write_result("limits", "\n".join(lines))


if __name__ == "__main__":
    main()
