"""Fig. 1 of eFAT: accuracy against fault rate without mitigation, with bypass, and with FAT.

Reproduces the motivating figure of Hanif & Shafique, eFAT (2023): the accuracy of a DNN on
a faulty weight-stationary systolic array against the share of faulty PEs, for

* stuck-at faults without mitigation,
* bypassing the faulty PEs (fault-aware pruning, FAP), and
* bypass plus fault-aware retraining (FAP+T) for several amounts (0.5, 1 and 2 epochs),

on several random chips per rate (dots: chips, lines: their mean). All accuracies are
measured on the simulator (int8). The FAP and FAP+T numbers are the cells of the shared
resilience map (same chips, same runs; computed once and reused by fig2 ... fig5); the
unmitigated accuracy is measured on exactly those chips, plus a few lower rates
(``--extra-rates``) where only the unmitigated and bypass accuracies are measured.
As on the map, "bypass" runs the pruned model (weights on faulty PEs zeroed in float, then
quantized: FAT after 0 epochs) on the chip with bypass; "no mitigation" runs the original
int8 model on the chip as it is.

Writes ``fig1_accuracy_vs_fault_rate.png`` and ``.csv`` (one row per chip, method and amount)
into ``--out`` (default ``examples/out``)::

    python examples/fig1_accuracy_vs_fault_rate.py [--data digits|mnist|mnist:PATH] [--model lenet5]
        [--rows 32 --cols 32] [--amounts 0.5,1,2] [--extra-rates 0.002,0.005] [--out DIR] [--quick]
"""

from __future__ import annotations

import time

import numpy as np

try:
    from . import _common as C
except ImportError:  # run as a script
    import _common as C

NAME = "fig1_accuracy_vs_fault_rate"
HEADER = ["fault_rate", "trial", "n_faulty", "method", "epochs", "accuracy"]
METHODS = {"none": "stuck-at faults, no mitigation", "bypass": "bypass faulty PEs (FAP)", "fat": "FAP+T"}


def parse_args(argv=None):
    p = C.parser(__doc__)
    p.add_argument("--amounts", type=C.floats, default=None,
                   help="FAP+T amounts in epochs; each must be on the map's epoch grid (default 0.5,1,2)")
    p.add_argument("--extra-rates", type=C.floats, default=None,
                   help="lower fault rates measured without retraining (default 0.002,0.005; none with --quick)")
    return p.parse_args(argv)


def main(argv=None):
    t0 = time.perf_counter()
    args = parse_args(argv)
    s = C.setup(args)
    rmap = C.shared_map(s)
    amounts = args.amounts if args.amounts is not None else [e for e in (0.5, 1.0, 2.0) if e in rmap.epochs]
    missing = [a for a in amounts if not np.isclose(rmap.epochs, a).any()]
    if missing:
        raise SystemExit(f"error: --amounts {missing} not on the map's epoch grid {rmap.epochs.tolist()} "
                         "(add them with --map-epochs).")
    extra = args.extra_rates if args.extra_rates is not None else ([] if args.quick else [0.002, 0.005])

    from training import chip_accuracy, fat_retrain

    rows = []
    for i, rate in enumerate(rmap.fault_rates.tolist()):
        for t in np.flatnonzero(rmap.measured[i]).tolist():  # the chips the map measured at this rate
            fm = C.map_chip(s, rate, t)
            bypass = chip_accuracy(fat_retrain(s.model, fm, s.data, 0.0), s.data, s.cfg, fm, "bypass")
            if abs(bypass - rmap.accuracy[i, 0, t]) > 1e-9:  # the rebuilt chip must be the map's chip
                raise RuntimeError(f"chip (rate {rate}, trial {t}) differs from the resilience map's: bypass accuracy "
                                   f"{bypass} here, {rmap.accuracy[i, 0, t]} on the map (has efat.map_chip changed?)")
            rows.append([rate, t, fm.n_faulty, "none", 0, chip_accuracy(s.model, s.data, s.cfg, fm, None)])
            rows.append([rate, t, fm.n_faulty, "bypass", 0, bypass])
            for a in amounts:
                j = int(np.argmin(np.abs(rmap.epochs - a)))
                rows.append([rate, t, fm.n_faulty, "fat", float(rmap.epochs[j]), float(rmap.accuracy[i, j, t])])
    from faults import FaultMap

    for k, rate in enumerate(sorted(extra)):
        for t in range(int(rmap.n_trials.min())):
            fm = FaultMap.random(s.cfg, rate, seed=C.rng_for(s, 1, k, t))
            rows.append([rate, t, fm.n_faulty, "none", 0, chip_accuracy(s.model, s.data, s.cfg, fm, None)])
            rows.append([rate, t, fm.n_faulty, "bypass", 0,
                         chip_accuracy(fat_retrain(s.model, fm, s.data, 0.0), s.data, s.cfg, fm, "bypass")])
    rows.sort(key=lambda r: (r[0], r[1], list(METHODS).index(r[3]), r[4]))

    C.write_csv(s.path(NAME + ".csv"), HEADER, [[f"{r[0]:g}", r[1], r[2], r[3], f"{r[4]:g}", f"{r[5]:.4f}"]
                                                for r in rows])
    plot(s.path(NAME + ".png"), rows, rmap.baseline, args.max_drop, amounts, s)
    summary(rows, rmap.baseline, amounts)
    C.done(s, [NAME + ".png", NAME + ".csv"], t0)
    return rows


def summary(rows, baseline, amounts):
    rates = sorted({r[0] for r in rows})
    series = [("none", 0), ("bypass", 0)] + [("fat", a) for a in amounts]
    C.log(f"mean accuracy (%) per fault rate; fault-free int8 {100 * baseline:.1f}%")
    C.log("  rate    " + " ".join(f"{(m if m != 'fat' else f'FAT {a:g}ep'):>9}" for m, a in series))
    for rate in rates:
        cells = []
        for m, a in series:
            acc = [r[5] for r in rows if r[0] == rate and r[3] == m and np.isclose(r[4], a)]
            cells.append(f"{100 * np.mean(acc):9.1f}" if acc else f"{'-':>9}")
        C.log(f"  {100 * rate:5.1f}%  " + " ".join(cells))


def plot(path, rows, baseline, drop, amounts, s):
    """Left: the whole accuracy range; right: zoomed on bypass and FAP+T near the constraint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True, width_ratios=(1, 1))
    greens = plt.cm.Greens(np.linspace(0.45, 0.95, max(len(amounts), 1)))
    series = [("none", 0, METHODS["none"], "#d62728", "o"), ("bypass", 0, METHODS["bypass"], "#1f77b4", "s")]
    series += [("fat", a, f"FAP+T, {a:g} epoch{'s' if a != 1 else ''}", greens[k], "^")
               for k, a in enumerate(amounts)]
    n = len(series)
    means_of = {}
    for ax in axes:
        for k, (method, amount, label, color, marker) in enumerate(series):
            sel = [r for r in rows if r[3] == method and np.isclose(r[4], amount)]
            rates = sorted({r[0] for r in sel})
            jitter = 1 + 0.03 * (k - (n - 1) / 2)  # spread the series' dots a little (log axis)
            ax.scatter([100 * r[0] * jitter for r in sel], [100 * r[5] for r in sel], s=14, alpha=0.45,
                       color=color, marker=marker, lw=0)
            means = [100 * np.mean([r[5] for r in sel if r[0] == rate]) for rate in rates]
            means_of[method, amount] = means
            ax.plot([100 * r * jitter for r in rates], means, "-", marker=marker, ms=5, color=color, label=label)
        ax.axhline(100 * baseline, ls="--", lw=1, color="grey", label=f"fault-free int8: {100 * baseline:.1f}%")
        ax.axhline(100 * (baseline - drop), ls=":", lw=1.2, color="black",
                   label=f"constraint: at most {100 * drop:g} points below")
        ax.set_xscale("log")
        ticks = sorted({100 * r[0] for r in rows})
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}%"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="x", labelsize=8)
        ax.set(xlabel="fault rate (share of faulty PEs, log scale)", ylabel="test accuracy on the simulator (%)")
        ax.grid(alpha=0.3)
    chips = max(r[1] for r in rows) + 1
    axes[0].set(ylim=(0, 102), title=f"All methods (dots: single chips, {chips} per rate; lines: mean)")
    axes[1].legend(loc="lower center", fontsize=8)
    mitigated = [m for (method, _), ms in means_of.items() if method != "none" for m in ms]
    low = min(mitigated + [100 * (baseline - drop)])
    axes[1].set(ylim=(max(0.0, np.floor(low - 3)), min(100.5, 100 * baseline + 2.5)),
                title="Zoom: bypass (FAP) and bypass + retraining (FAP+T)")
    fig.suptitle(f"Accuracy against fault rate: {s.tag()}")
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
