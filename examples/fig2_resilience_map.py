"""Fig. 2 of eFAT: the resilience map, and the retraining amount each fault rate needs.

Reproduces the resilience map of Hanif & Shafique, eFAT (2023): for every fault rate on a
grid and every retraining amount (epochs of fault-aware retraining, 0 = bypass only), the
accuracy drop of the model on random faulty chips, measured on the simulator (int8, with
bypass): the mean over the chips, and how many of them meet the constraint. Chips are
added where the decision is uncertain (adaptive sampling). For the constraint
(``--max-drop`` met by ``--pass-target`` of chips at ``--confidence``) the map gives
``E*(rate)``: the least amount certified to suffice (boxed), non-decreasing in the rate;
hatched rows have none on the grid.

The map is the shared one (computed once per data/model/array/grid/seed into ``--out`` and
reused by fig1 and fig3 ... fig5). Writes ``fig2_resilience_map.png`` and ``.csv`` (per rate:
chips measured, ``E*``, and at every amount the mean accuracy and the share of chips that
meet the drop)::

    python examples/fig2_resilience_map.py [--data digits|mnist|mnist:PATH] [--model lenet5]
        [--rows 32 --cols 32] [--max-drop 0.02] [--pass-target 0.9] [--confidence 0.9]
        [--map-rates ...] [--map-epochs ...] [--out DIR] [--quick]
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
    return (["fault_rate", "chips", "required_epochs"] + [f"mean_accuracy_{e:g}ep" for e in rmap.epochs]
            + [f"pass_share_{e:g}ep" for e in rmap.epochs])


def main(argv=None):
    t0 = time.perf_counter()
    args = C.parser(__doc__).parse_args(argv)
    s = C.setup(args)
    rmap = C.shared_map(s)
    c = s.constraint
    need = rmap.required_epochs_grid(c)
    mean, _, _ = rmap.mean_accuracy()
    share = rmap.pass_counts(c) / rmap.n_trials[:, None]
    rows = [[f"{r:g}", int(n), C.fmt_epochs(e)] + [f"{a:.4f}" for a in mean[i]] + [f"{p:.4f}" for p in share[i]]
            for i, (r, n, e) in enumerate(zip(rmap.fault_rates.tolist(), rmap.n_trials, need.tolist()))]
    C.write_csv(s.path(NAME + ".csv"), header(rmap), rows)
    rmap.plot(s.path(NAME + ".png"), c, title=f"Resilience map: {s.tag()}\nfault-free int8 accuracy "
                                             f"{100 * rmap.baseline:.1f}%; {int(rmap.n_trials.sum())} chips")
    C.log(f"E* (epochs) for {c.text()} (fault-free {100 * rmap.baseline:.1f}%):")
    for r, n, e, p in zip(rmap.fault_rates.tolist(), rmap.n_trials, need.tolist(), share):
        reach = "none on the grid" if math.isinf(e) else ("0 (bypass alone)" if e == 0 else f"{e:g}")
        C.log(f"  {100 * r:5.1f}% ({n:3d} chips)  E* = {reach:<17} chips within the drop: "
              + " ".join(f"{100 * x:5.1f}%" for x in p))
    C.log(f"  (at amounts {', '.join(f'{e:g}' for e in rmap.epochs)} epochs)")
    C.done(s, [NAME + ".png", NAME + ".csv"], t0)
    return rmap, np.asarray(need)


if __name__ == "__main__":
    main()
