"""Fig. 2 of eFAT: the resilience map, and the retraining amount each fault rate needs.

Reproduces the resilience map of Hanif & Shafique, eFAT (2023): for every fault rate on a
grid and every retraining amount (epochs of fault-aware retraining, 0 = bypass only), the
accuracy drop of the model on random faulty chips, measured on the simulator (int8, with
bypass); worst of the chips per cell. For the accuracy constraint ``--max-drop`` the map
gives ``E*(rate)``: the least amount that keeps every chip within the constraint (boxed),
non-decreasing in the rate; hatched rows have none on the grid.

The map is the shared one (computed once per data/model/array/grid/seed into ``--out`` and
reused by fig1 and fig3 ... fig5). Writes ``fig2_resilience_map.png`` and ``.csv`` (per rate:
``E*`` and the worst-chip accuracy at every amount)::

    python examples/fig2_resilience_map.py [--data digits|mnist|mnist:PATH] [--model lenet5]
        [--rows 32 --cols 32] [--max-drop 0.02] [--map-rates ...] [--map-epochs ...] [--trials 3]
        [--out DIR] [--quick]
"""

from __future__ import annotations

import math
import time

import numpy as np

try:
    from . import _common as C
except ImportError:  # run as a script
    import _common as C

NAME = "fig2_resilience_map"


def header(rmap) -> list[str]:
    return (["fault_rate", "required_epochs"] + [f"worst_accuracy_{e:g}ep" for e in rmap.epochs]
            + [f"mean_accuracy_{e:g}ep" for e in rmap.epochs])


def main(argv=None):
    t0 = time.perf_counter()
    args = C.parser(__doc__).parse_args(argv)
    s = C.setup(args)
    rmap = C.shared_map(s)
    need = rmap.required_epochs_grid(args.max_drop)
    worst, mean = rmap.accuracy.min(axis=2), rmap.accuracy.mean(axis=2)
    rows = [[f"{r:g}", C.fmt_epochs(e)] + [f"{a:.4f}" for a in worst[i]] + [f"{a:.4f}" for a in mean[i]]
            for i, (r, e) in enumerate(zip(rmap.fault_rates.tolist(), need.tolist()))]
    C.write_csv(s.path(NAME + ".csv"), header(rmap), rows)
    rmap.plot(s.path(NAME + ".png"), args.max_drop,
              title=f"Resilience map: {s.tag()}\nworst of {rmap.trials} chips per cell; "
                    f"fault-free int8 accuracy {100 * rmap.baseline:.1f}%")
    C.log(f"E* (epochs) for a drop of at most {100 * args.max_drop:g} points "
          f"(fault-free {100 * rmap.baseline:.1f}%):")
    for r, e, acc in zip(rmap.fault_rates.tolist(), need.tolist(), worst):
        reach = "none on the grid" if math.isinf(e) else ("0 (bypass alone)" if e == 0 else f"{e:g}")
        C.log(f"  {100 * r:5.1f}%  E* = {reach:<17} worst-chip drop: "
              + " ".join(f"{100 * (rmap.baseline - a):5.1f}" for a in acc))
    C.log(f"  (drops in points at amounts {', '.join(f'{e:g}' for e in rmap.epochs)} epochs)")
    C.done(s, [NAME + ".png", NAME + ".csv"], t0)
    return rmap, np.asarray(need)


if __name__ == "__main__":
    main()
