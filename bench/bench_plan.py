"""``plan`` speed: eFAT grouping of 1,000 and 10,000 chips of a 128x128 array. Target: < 10 s.

Populations: ``Population.generate(cfg, n, rates="uniform:0.002,0.03", seed=0)``
with uniform and with clustered (center-satellite) placement.

Synthetic resilience map (no training involved; only its shape matters here): rates
0 .. 10% in steps of 0.25%, epochs {0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8}, 30
chips per rate, baseline 0.98 and

    accuracy(f, e, t) = baseline - 2 * f * exp(-e / 2) * (1 + 0.05 * t / 29)

so with ``max_accuracy_drop = 0.01`` a chip needs no retraining up to about 0.5%
faulty PEs, ``E*`` grows like ``2 ln(200 f)`` (about 3.5 epochs at 3%), and ``E*``
is sub-additive, so fusing chips pays off until the fused rate leaves the grid.

    .venv/bin/python bench/bench_plan.py
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_result  # noqa: E402

from faults import Population  # noqa: E402
from simulator import ArrayConfig  # noqa: E402
from efat import ResilienceMap, plan  # noqa: E402

SIZES, SHAPE, RATES, DROP, REPS = (1000, 10000), (128, 128), "uniform:0.002,0.03", 0.01, 3


def synthetic_map(shape) -> ResilienceMap:
    """The map described in the module docstring."""
    rates = np.round(np.arange(0, 0.1001, 0.0025), 6)
    epochs = np.array([0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8])
    trials = np.arange(30)  # enough chips to certify 90% of chips at 90% confidence
    drop = 2 * rates[:, None, None] * np.exp(-epochs[None, :, None] / 2) * (1 + 0.05 * trials[None, None, :] / 29)
    return ResilienceMap(rates, epochs, np.clip(0.98 - drop, 0, 1), 0.98, {"array": list(shape)})


def run(n: int, spatial: str, rmap: ResilienceMap) -> dict:
    pop = Population.generate(ArrayConfig(*SHAPE), n, rates=RATES, seed=0, spatial=spatial)
    times = []
    for _ in range(REPS):
        t = time.perf_counter()
        p = plan(pop, rmap, DROP)
        times.append(time.perf_counter() - t)
    counts = p.status_counts()
    sizes = [len(g.members) for g in p.groups]
    return dict(n=n, spatial=spatial, seconds=float(np.median(times)), plan=p, counts=counts,
                max_size=max(sizes), mean_size=float(np.mean(sizes)))


def main():
    rmap = synthetic_map(SHAPE)
    rows = [run(n, s, rmap) for n in SIZES for s in ("uniform", "clustered")]
    lines = [
        f"`plan` on {' and '.join(f'{n:,}' for n in SIZES)} chips of a {SHAPE[0]}x{SHAPE[1]} array, rates {RATES}, "
        f"max_accuracy_drop {DROP} (90% of chips, 90% confidence), strategy reward; synthetic resilience map "
        f"(see bench/bench_plan.py); median of {REPS} runs; {machine()}",
        "",
        "    .venv/bin/python bench/bench_plan.py",
        "",
        "| chips | placement | seconds (target < 10) | retrain / none / infeasible | groups (mean, max size) "
        "| eFAT epochs expected [interval] | Reduce expected | fixed expected | eFAT / Reduce | eFAT / fixed |",
        "|--:|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c, n = r["plan"].costs, r["counts"]
        lines.append(
            f"| {r['n']:,} | {r['spatial']} | {r['seconds']:.2f} | {n['retrain']} / {n['no_retraining']} / "
            f"{n['infeasible']} | {len(r['plan'].groups)} ({r['mean_size']:.1f}, {r['max_size']}) "
            f"| {c.efat.expected:.6g} [{c.efat.lower:.6g}, {c.efat.upper:.6g}] | {c.reduce.expected:.6g} "
            f"| {c.fixed.expected:.6g} ({c.fixed_amount:g} x {c.fixed.runs}) "
            f"| {c.efat.expected / c.reduce.expected:.3f} | {c.efat.expected / c.fixed.expected:.3f} |"
        )
    write_result("plan", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
