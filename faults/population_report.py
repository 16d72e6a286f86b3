"""What a population looks like: statistics, a text table, and a picture."""

from __future__ import annotations

import numpy as np

from .fault_map import describe

__all__ = ["summary", "summary_text", "plot"]


def summary(pop, bins: int = 10) -> dict:
    """Statistics of a :class:`faults.Population` as plain Python types; see
    :meth:`faults.Population.summary`."""
    cfg = pop.cfg
    rates, counts = pop.rates, pop.n_faulty
    lo, hi = float(rates.min()), float(rates.max())
    if lo == hi:
        lo, hi = max(0.0, lo - 0.5 / cfg.n_pes), min(1.0, hi + 0.5 / cfg.n_pes)
    hist, edges = np.histogram(rates, bins=bins, range=(lo, hi))
    return dict(
        n=len(pop),
        shape=list(cfg.shape),
        precision=cfg.precision.name,
        rate=_stats(rates),
        faulty_pes=_stats(counts),
        histogram=dict(counts=hist.tolist(), edges=edges.tolist()),
    )


def summary_text(pop, bins: int = 10, width: int = 40) -> str:
    """A short human-readable table with a text histogram of the fault rates."""
    s = summary(pop, bins)
    r, f = s["rate"], s["faulty_pes"]
    keys = ("min", "mean", "median", "max")
    lines = [
        f"Population: {s['n']} chips on a {describe(pop.cfg)} array",
        f"{'':12}" + "".join(f"{k:>10}" for k in keys),
        f"{'fault rate':12}" + "".join(f"{r[k]:>10.2%}" for k in keys),
        f"{'faulty PEs':12}" + "".join(f"{f[k]:>10.1f}" for k in keys),
        "Fault-rate histogram (chips):",
    ]
    counts, edges = s["histogram"]["counts"], s["histogram"]["edges"]
    top = max(counts) or 1
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        lines.append(f"  {a:7.2%} - {b:7.2%} |{'#' * round(width * c / top):<{width}} {c}")
    return "\n".join(lines)


def plot(pop, path, example=None) -> None:
    """Save a PNG: rate histogram, per-PE count of faulty chips, and one example chip
    (index or id; default the chip with the median fault rate)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cfg = pop.cfg
    if example is None:
        example = int(np.argsort(pop.rates, kind="stable")[(len(pop) - 1) // 2])
    chip = pop[example]
    rc = pop.pe_rc.astype(np.int64)
    heat = np.bincount(rc[:, 0] * cfg.cols + rc[:, 1], minlength=cfg.n_pes).reshape(cfg.shape)
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ax1.hist(pop.rates * 100, bins=min(30, max(5, len(pop) // 5)), color="tab:blue", edgecolor="white")
    ax1.yaxis.get_major_locator().set_params(integer=True)
    ax1.set(title=f"Fault rate of {len(pop)} chips", xlabel="fault rate (% of PEs)", ylabel="chips")
    im = ax2.imshow(heat, cmap="viridis", interpolation="nearest")
    ax2.set(title="Chips with this PE faulty", xlabel="PE column", ylabel="PE row")
    fig.colorbar(im, ax=ax2, label="chips")
    ax3.imshow(chip.fault_map.faulty, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    ax3.set(title=f"Example chip {chip.id}: {chip.fault_map.n_faulty} faulty PEs ({chip.rate:.2%})",
            xlabel="PE column", ylabel="PE row")
    fig.suptitle(f"Population on a {describe(cfg)} array")
    fig.savefig(path, dpi=100)


def _stats(x: np.ndarray) -> dict:
    return dict(min=float(x.min()), mean=float(x.mean()), median=float(np.median(x)),
                max=float(x.max()), std=float(x.std()))
