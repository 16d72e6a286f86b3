"""A faulty GEMM on a simulated chip: outputs, cycles, and pictures of what went wrong.

Runs one int8 GEMM (the im2col form of a 3x3x32 -> 64 convolution over a 16x16 map)
on a 32x32 weight-stationary array with 2% faulty PEs, without mitigation and with
bypass, on both engines, and writes

* ``simulator_demo.png``: the chip's fault map by site, the output error without
  mitigation and with bypass, and the PE activity per cycle of a small traced run;
* ``simulator_demo.csv``: per output column: faulty PEs in its array column, wrong
  outputs and mean absolute error, unmitigated and with bypass.

    python examples/simulator_demo.py --out demo_out [--rows 32 --cols 32 --rate 0.02 --seed 0]
"""

from __future__ import annotations

import argparse
import csv
import os
import time

import numpy as np

from faults import SITES, FaultMap
from fileio import atomic_write
from simulator import ArrayConfig, SystolicArray


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--cols", type=int, default=32)
    p.add_argument("--rate", type=float, default=0.02, help="fraction of faulty PEs (default 0.02)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="demo_out", help="output folder")
    return p.parse_args(argv)


def timed(fn):
    t = time.perf_counter()
    res = fn()
    return res, time.perf_counter() - t


def main(argv=None):
    args = parse_args(argv)
    cfg = ArrayConfig(args.rows, args.cols)
    fm = FaultMap.random(cfg, args.rate, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    M, K, N = 16 * 16, 3 * 3 * 32, 64
    x = rng.integers(-128, 128, (M, K), dtype=np.int8)
    w = np.clip(np.rint(rng.normal(0, 30, (K, N))), -128, 127).astype(np.int8)
    exact = x.astype(np.int64) @ w

    print(f"GEMM ({M} x {K}) @ ({K} x {N}) on a {cfg.rows}x{cfg.cols} array with {fm.n_faulty} faulty PEs "
          f"({fm.rate:.1%}); sites: " + ", ".join(f"{s} {sum(f.site == s for *_, f in fm.faults())}" for s in SITES))
    runs = {}
    print(f"{'mitigation':<11} {'engine':<6} {'cycles':>8} {'time ms':>8} {'wrong outputs':>14} {'mean |err|':>11}")
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        for engine in ("fast", "cycle"):
            res, dt = timed(lambda: arr.matmul(x, w, engine))
            runs[mitigation, engine] = res
            err = np.abs(res.out - exact)
            print(f"{str(mitigation):<11} {engine:<6} {res.n_cycles:>8} {dt * 1e3:>8.1f} "
                  f"{(err > 0).mean():>13.1%} {err.mean():>11.3g}")
    for mitigation in (None, "bypass"):
        assert np.array_equal(runs[mitigation, "fast"].out, runs[mitigation, "cycle"].out), "engines disagree"
    print("fast and cycle engines agree bit for bit; "
          f"{runs[None, 'cycle'].folds} folds, PE utilisation {runs[None, 'cycle'].pe_utilisation:.0%}")

    small = SystolicArray(ArrayConfig(8, 8), FaultMap.random(ArrayConfig(8, 8), args.rate, seed=args.seed))
    traced = small.matmul(x[:24, :20], w[:20, :12], "cycle", trace=True)

    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "simulator_demo.csv"), fm, exact, runs, N)
    png = os.path.join(args.out, "simulator_demo.png")
    plot(png, fm, exact, runs, traced)
    print(f"wrote {png} and simulator_demo.csv")


def write_csv(path, fm, exact, runs, N):
    C = fm.cfg.cols
    with atomic_write(path, newline="") as f:
        out = csv.writer(f)
        out.writerow(["output_col", "array_col", "faulty_pes_in_col", "wrong_unmitigated", "mae_unmitigated",
                      "wrong_bypass", "mae_bypass"])
        for n in range(N):
            e0 = np.abs(runs[None, "fast"].out[:, n] - exact[:, n])
            e1 = np.abs(runs["bypass", "fast"].out[:, n] - exact[:, n])
            out.writerow([n, n % C, int(fm.faulty[:, n % C].sum()), int((e0 > 0).sum()), f"{e0.mean():.4g}",
                          int((e1 > 0).sum()), f"{e1.mean():.4g}"])


def plot(path, fm, exact, runs, traced):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    fig, ax = plt.subplots(2, 2, figsize=(12, 9.5), constrained_layout=True)
    # fault map, coloured by the site of the PE's first fault
    site_of = np.zeros(fm.cfg.shape, int)
    for r, c, f in reversed(fm.faults()):
        site_of[r, c] = SITES.index(f.site) + 1
    cmap = ListedColormap(["#f4f4f4", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"])
    im = ax[0, 0].imshow(site_of, cmap=cmap, vmin=-0.5, vmax=4.5, interpolation="nearest")
    cb = fig.colorbar(im, ax=ax[0, 0], ticks=range(5))
    cb.ax.set_yticklabels(["ok", *SITES])
    ax[0, 0].set(title=f"Fault map: {fm.n_faulty} faulty PEs ({fm.rate:.1%})", xlabel="PE column", ylabel="PE row")

    vmax = max(1.0, float(np.log10(1 + np.abs(runs[None, "fast"].out - exact)).max()))
    for a, mitigation, title in ((ax[0, 1], None, "no mitigation"), (ax[1, 0], "bypass", "bypass (FAP)")):
        err = np.log10(1 + np.abs(runs[mitigation, "fast"].out - exact))
        im = a.imshow(err, aspect="auto", cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        fig.colorbar(im, ax=a, label="log10(1 + |error|)")
        a.set(title=f"Output error, {title}: {(err > 0).mean():.1%} of outputs wrong",
              xlabel="output column n (array column n mod C)", ylabel="input vector m")

    busy = traced.trace.reshape(traced.n_cycles, -1).sum(axis=1)
    ax[1, 1].plot(np.arange(traced.n_cycles), busy, lw=1.2)
    for f, start in enumerate(np.cumsum(np.r_[0, traced.fold_cycles[:-1]])):
        ax[1, 1].axvline(start, color="grey", lw=0.6, ls=":")
    ax[1, 1].set(title=f"PE activity of a traced run on 8x8: {traced.folds} folds, {traced.n_cycles} cycles",
                 xlabel="cycle (dotted: fold starts with R weight-load cycles)", ylabel="PEs doing a valid MAC")
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
