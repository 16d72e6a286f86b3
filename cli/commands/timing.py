"""``efat timing``: per-layer weight-stationary cycles of a SCALE-Sim topology.

    efat timing {TOPOLOGY.csv | --network NAME [--batch B]} [--config FILE.cfg | --rows R --cols C]
                [--csv OUT.csv] [--scalesim]
                [--bandwidth BYTES --buffers-kb I,W,O --precision int8 --roofline OUT.png]

Prints one row per layer (GEMM shape, folds, our cycle count, the count SCALE-Sim v3
reports for the same stall-free run, PE and MAC utilisation) and a total row (sums; PE
utilisation weighted by cycles, MAC utilisation over the whole run). With
``--scalesim`` it adds the other columns of SCALE-Sim's ``COMPUTE_REPORT.csv`` (overall,
mapping and compute utilisation as SCALE-Sim computes them), for side-by-side checks.
With ``--bandwidth`` it adds the memory side (docs/semantics.md, "Memory and timing"):
bytes moved, arithmetic intensity, memory cycles, total cycles with double buffering and
whether the layer is compute- or memory-bound; ``--roofline`` plots them. ``--network``
takes the layers of a reference network instead of a file (:mod:`simulator.zoo`: alexnet,
vgg16, resnet50 at 224x224, ``--batch`` inputs).
"""

from __future__ import annotations

import csv
import os
import sys

from fileio import atomic_write
from simulator import ArrayConfig, layer_timings, memory_timing, read_config, read_topology, scalesim_report

DEFAULT_DIM = 32


def register(sub):
    """Add the ``timing`` sub-command to an argparse sub-parser collection."""
    p = sub.add_parser(
        "timing",
        help="per-layer WS cycles of a SCALE-Sim topology CSV",
        description="Per-layer weight-stationary cycles of a SCALE-Sim topology CSV (conv or GEMM form).",
    )
    p.add_argument("topology", metavar="TOPOLOGY.csv", nargs="?", default=None,
                   help="SCALE-Sim topology CSV, conv or GEMM (Layer, M, N, K) form (or --network)")
    p.add_argument("--network", default=None, metavar="NAME",
                   help="instead of a CSV, a reference network's layers: alexnet, vgg16, resnet50 (224x224; default: none)")
    p.add_argument("--batch", type=int, default=1, metavar="B", help="with --network: inputs per run")
    p.add_argument("--config", metavar="FILE.cfg",
                   help="SCALE-Sim .cfg giving ArrayHeight/ArrayWidth (Dataflow must be ws; default: none)")
    p.add_argument("--rows", type=int, metavar="R", help=f"array rows (default: {DEFAULT_DIM}; not with --config)")
    p.add_argument("--cols", type=int, metavar="C", help=f"array columns (default: {DEFAULT_DIM}; not with --config)")
    p.add_argument("--form", choices=("conv", "gemm"), help="topology form (default: detected from the header)")
    p.add_argument("--csv", metavar="OUT.csv", help="also write the table as CSV (default: none)")
    p.add_argument("--scalesim", action="store_true", help="add SCALE-Sim's COMPUTE_REPORT utilisation columns")
    p.add_argument("--bandwidth", type=float, default=None, metavar="BYTES",
                   help="DRAM bytes per cycle: adds memory cycles, total cycles (double-buffered) and whether each "
                        "layer is compute- or memory-bound (default: none, compute only)")
    p.add_argument("--buffers-kb", default="64,64,64", metavar="I,W,O",
                   help="input, weight and output buffer sizes in KiB, with --bandwidth")
    p.add_argument("--precision", default="int8", metavar="NAME",
                   help="operand precision for the bytes moved: int8, fp32, fp16, bf16, fp8_e4m3, fp8_e5m2")
    p.add_argument("--roofline", default=None, metavar="OUT.png",
                   help="with --bandwidth: a roofline plot placing each layer (default: none)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Execute ``efat timing``; returns the exit code."""
    if args.config and (args.rows is not None or args.cols is not None):
        raise ValueError("give either --config or --rows/--cols, not both.")
    if args.config:
        cfg = read_config(args.config)
    else:
        cfg = ArrayConfig(
            rows=DEFAULT_DIM if args.rows is None else args.rows,
            cols=DEFAULT_DIM if args.cols is None else args.cols,
        )
    cfg = _with_memory(args, cfg)
    layers, source = _layers(args)
    rows = _table(layer_timings(layers, cfg), cfg, args.scalesim)
    if args.roofline:
        from cli.roofline import plot_roofline

        plot_roofline(args.roofline, [(layer.name, memory_timing(cfg, t.m, t.k, t.n)) for layer, t in
                                      layer_timings(layers, cfg)], cfg, source)
        print(f"# wrote {args.roofline}", file=sys.stderr)
    print(f"# {source}: {len(layers)} layers on a {cfg.rows}x{cfg.cols} weight-stationary array")
    _print(rows)
    if args.csv:
        with atomic_write(args.csv, newline="") as f:
            writer = csv.writer(f)
            writer.writerow(rows[0].keys())
            writer.writerows(r.values() for r in rows)
        print(f"# wrote {args.csv}", file=sys.stderr)
    return 0


def _layers(args):
    """The layers to time and a name for them: a topology file, or a reference network."""
    from simulator import Layer, zoo

    if (args.topology is None) == (args.network is None):
        raise ValueError("give a topology CSV or --network NAME (one of them).")
    if args.network is None:
        return read_topology(args.topology, form=args.form), os.path.basename(args.topology)
    if args.batch < 1:
        raise ValueError(f"--batch must be a positive int; got {args.batch}.")
    rows = zoo.gemms(args.network, args.batch)
    return [Layer(name, m, k, n) for name, m, k, n in rows], f"{args.network}, batch {args.batch}"


def _with_memory(args, cfg):
    from dataclasses import replace

    from simulator import MemoryConfig, precision_by_name

    cfg = replace(cfg, precision=precision_by_name(args.precision))
    if args.bandwidth is None:
        if args.roofline:
            raise ValueError("--roofline needs --bandwidth (the roof is the memory's).")
        return cfg
    try:
        kb = [float(v) for v in args.buffers_kb.split(",")]
    except ValueError:
        kb = []
    if len(kb) != 3:
        raise ValueError(f"--buffers-kb must be three sizes in KiB, e.g. 64,64,64; got {args.buffers_kb!r}.")
    return replace(cfg, memory=MemoryConfig(args.bandwidth, *kb))


def _table(timings, cfg: ArrayConfig, with_scalesim: bool) -> list[dict]:
    rows = []
    for layer, t in timings:
        row = {
            "layer": layer.name,
            "M": t.m,
            "K": t.k,
            "N": t.n,
            "folds": t.folds,
            "cycles": t.n_cycles,
            "scalesim_cycles": t.scalesim_cycles,
            "pe_util": f"{t.pe_utilisation:.4f}",
            "mac_util": f"{t.mac_utilisation:.4f}",
        }
        if cfg.memory is not None:
            mt = memory_timing(cfg, t.m, t.k, t.n)
            row.update({"bytes": mt.bytes_moved, "MAC/byte": f"{mt.intensity:.2f}", "mem_cycles": mt.memory_cycles,
                        "total": mt.total_cycles, "bound": "memory" if mt.memory_bound else "compute"})
        if with_scalesim:
            rep = scalesim_report(t, cfg)
            row["ss_overall_util_%"] = f"{rep.overall_util_pct:.4f}"
            row["ss_mapping_eff_%"] = f"{rep.mapping_efficiency_pct:.4f}"
            row["ss_compute_util_%"] = f"{rep.compute_util_pct:.4f}"
        rows.append(row)
    ts = [t for _, t in timings]
    cycles = sum(t.n_cycles for t in ts)
    pe_cycles = sum(t.pe_utilisation * t.n_cycles for t in ts)  # utilisation weighted by time
    total = {
        "layer": "TOTAL",
        "M": "",
        "K": "",
        "N": "",
        "folds": sum(t.folds for t in ts),
        "cycles": cycles,
        "scalesim_cycles": sum(t.scalesim_cycles for t in ts),
        "pe_util": f"{pe_cycles / cycles:.4f}",
        "mac_util": f"{sum(t.macs for t in ts) / (cycles * cfg.n_pes):.4f}",
    }
    if cfg.memory is not None:
        mts = [memory_timing(cfg, t.m, t.k, t.n) for t in ts]
        total.update({"bytes": sum(m.bytes_moved for m in mts),
                      "MAC/byte": f"{sum(t.macs for t in ts) / sum(m.bytes_moved for m in mts):.2f}",
                      "mem_cycles": sum(m.memory_cycles for m in mts), "total": sum(m.total_cycles for m in mts),
                      "bound": f"{sum(m.memory_bound for m in mts)} of {len(mts)} memory"})
    if with_scalesim:
        total.update({"ss_overall_util_%": "", "ss_mapping_eff_%": "", "ss_compute_util_%": ""})
    rows.append(total)
    return rows


def _print(rows: list[dict]) -> None:
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    line = lambda r: "  ".join(  # noqa: E731
        str(r[k]).ljust(widths[k]) if k == "layer" else str(r[k]).rjust(widths[k]) for k in keys
    ).rstrip()
    print(line({k: k for k in keys}))
    for r in rows[:-1]:
        print(line(r))
    print("  ".join("-" * widths[k] for k in keys))
    print(line(rows[-1]))
