"""Parity and speed against the real SCALE-Sim v3 (``scalesim`` 3.0.0 on PyPI).

For a few stall-free weight-stationary layers (a small conv net and some GEMMs, on a 32x32
and a 128x128 array) this runs SCALE-Sim and our simulator and reports

(a) SCALE-Sim's "Total Cycles" against our ``gemm_timing`` count and against the cycles
    our ``cycle`` engine actually runs (expected: ours = SCALE-Sim's + 1 per layer), plus
    whether :func:`simulator.scalesim_report` reproduces every other COMPUTE_REPORT column;
(b) wall time of our ``cycle`` engine computing every output value of the layer, against
    the time SCALE-Sim needs to build its operand, demand and trace matrices (addresses and
    cycles only; it computes no values, and with ``save_disk_space=True`` writes no traces).

SCALE-Sim runs in its own virtualenv, ``.bench_venv`` at the repository root, in a
subprocess; it is never imported into the project's environment. The venv is created on
first use with::

    python3 -m venv .bench_venv && .bench_venv/bin/pip install scalesim==3.0.0 "numpy<2.4"

(scalesim 3.0.0 breaks on numpy 2.4). Run::

    .venv/bin/python bench/bench_scalesim.py            # writes bench/results/scalesim.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from simulator import ArrayConfig, SystolicArray, layer_timings, read_topology, scalesim_report

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench_venv"
VENV_PY = VENV / "bin" / "python"
SETUP_CMD = 'python3 -m venv .bench_venv && .bench_venv/bin/pip install scalesim==3.0.0 "numpy<2.4"'
OUT = ROOT / "bench" / "results" / "scalesim.md"

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
#: A small VGG-style conv net on 32x32x3 images; conv2's (30 - 3) / 2 exercises SCALE-Sim's ceil.
CONV_NET = [
    "conv1, 32, 32, 3, 3, 3, 16, 1,",
    "conv2, 30, 30, 3, 3, 16, 32, 2,",
    "conv3, 15, 15, 3, 3, 32, 64, 1,",
    "conv4, 13, 13, 3, 3, 64, 64, 2,",
    "fc, 1, 1, 1, 1, 2304, 10, 1,",
]
GEMM_HEADER = "Layer, M, N, K,\n"
#: name, M, N, K (SCALE-Sim's GEMM column order).
GEMMS = [
    "mlp_784x128_b64, 64, 128, 784,",
    "square_256, 256, 256, 256,",
    "tall_2048x32x64, 2048, 64, 32,",
]
ARRAYS = [(32, 32), (128, 128)]

#: SCALE-Sim config: big SRAMs and CALC (bandwidth-estimating) mode, so no stalls.
SCALESIM_CFG = """[general]
run_name = bench

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 65536
FilterSramSzkB: 65536
OfmapSramSzkB: 65536
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 1000
Dataflow: ws
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

#: Runs inside .bench_venv: one SCALE-Sim run per single-layer topology, timed.
RUNNER = r"""
import contextlib, csv, io, json, os, sys, time
from scalesim.scale_sim import scalesim
cfg, layout, gemm, jobs = sys.argv[1], sys.argv[2], sys.argv[3] == "gemm", sys.argv[4:]
for topo in jobs:
    out = topo + ".out"
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                     input_type_gemm=gemm)
        s.run_scale(top_path=out)
        dt = time.perf_counter() - t0
    with open(os.path.join(out, "bench", "COMPUTE_REPORT.csv")) as f:
        rows = [[c.strip() for c in r if c.strip()] for r in csv.reader(f)]
    print(json.dumps({"topology": topo, "seconds": dt, "header": rows[0], "row": rows[1]}), flush=True)
"""


def ensure_venv() -> None:
    """Create ``.bench_venv`` with scalesim 3.0.0 unless it already has it."""
    probe = [str(VENV_PY), "-c", "import scalesim, importlib.metadata as m; print(m.version('scalesim'))"]
    if VENV_PY.exists() and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "3.0.0":
        return
    print(f"creating {VENV} (scalesim 3.0.0, numpy<2.4) ...", file=sys.stderr)
    try:
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "scalesim==3.0.0", "numpy<2.4"], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"could not create {VENV} ({e}); create it yourself from {ROOT} with:\n    {SETUP_CMD}")


def run_scalesim(work: Path, rows: int, cols: int, form: str, layer_rows: list[str], cfg_text: str | None = None,
                 tag: str = "") -> list[dict]:
    """One SCALE-Sim run per layer in the bench venv; returns its report and wall time per layer.
    ``cfg_text``: a config instead of :data:`SCALESIM_CFG` (already formatted)."""
    cfg = work / f"ws_{rows}x{cols}{tag}.cfg"
    cfg.write_text(cfg_text if cfg_text is not None else SCALESIM_CFG.format(rows=rows, cols=cols))
    layout = work / "layout.csv"
    layout.write_text("Layer name,\n")  # required by scalesim even without custom layouts
    header = GEMM_HEADER if form == "gemm" else CONV_HEADER
    topos = []
    for row in layer_rows:
        p = work / f"{form}_{rows}x{cols}{tag}_{row.split(',')[0]}.csv"
        p.write_text(header + row + "\n")
        topos.append(str(p))
    runner = work / "runner.py"
    runner.write_text(RUNNER)
    proc = subprocess.run(
        [str(VENV_PY), str(runner), str(cfg), str(layout), form, *topos],
        capture_output=True, text=True, cwd=work,
    )
    if proc.returncode != 0:
        sys.exit(f"SCALE-Sim failed:\n{proc.stderr[-3000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def time_cycle_engine(cfg: ArrayConfig, m: int, k: int, n: int, reps: int, seed: int = 0):
    """Best-of-``reps`` wall time of the cycle engine on random int8 operands; checks the values."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    arr = SystolicArray(cfg)
    best, res = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        res = arr.matmul(x, w, engine="cycle")
        best = min(best, time.perf_counter() - t0)
    exact = np.array_equal(res.out, x.astype(np.int32) @ w.astype(np.int32))
    return best, res.n_cycles, exact


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="repetitions of our engine (best is kept)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    ensure_venv()
    ss_version = subprocess.run([str(VENV_PY), "-c", "import importlib.metadata as m; print(m.version('scalesim'), m.version('numpy'))"],
                                capture_output=True, text=True).stdout.split()
    SystolicArray(ArrayConfig(4, 4)).matmul(np.ones((2, 3), np.int8), np.ones((3, 2), np.int8), engine="cycle")  # JIT warm-up

    results, t_start = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_scalesim_") as tmp:
        work = Path(tmp)
        for rows, cols in ARRAYS:
            cfg = ArrayConfig(rows, cols)
            for form, layer_rows in (("conv", CONV_NET), ("gemm", GEMMS)):
                topo = work / f"all_{form}.csv"
                topo.write_text((CONV_HEADER if form == "conv" else GEMM_HEADER) + "\n".join(layer_rows) + "\n")
                ours = layer_timings(read_topology(topo), cfg)
                theirs = run_scalesim(work, rows, cols, form, layer_rows)
                for (layer, t), ss in zip(ours, theirs):
                    head, row = ss["header"], ss["row"]
                    col = {h: row[i] for i, h in enumerate(head)}
                    ss_total, ss_stall = int(col["Total Cycles"]), int(col["Stall Cycles"])
                    rep = scalesim_report(t, cfg)
                    report_match = (
                        rep.total_cycles == ss_total
                        and np.isclose(rep.overall_util_pct, float(col["Overall Util %"]), rtol=1e-9)
                        and np.isclose(rep.mapping_efficiency_pct, float(col["Mapping Efficiency %"]), rtol=1e-9)
                        and np.isclose(rep.compute_util_pct, float(col["Compute Util %"]), rtol=1e-9)
                    )
                    sec, engine_cycles, exact = time_cycle_engine(cfg, layer.m, layer.k, layer.n, args.reps)
                    results.append(dict(
                        array=f"{rows}x{cols}", layer=layer.name, m=layer.m, k=layer.k, n=layer.n, folds=t.folds,
                        ss_total=ss_total, ss_stall=ss_stall, ours=t.n_cycles, engine=engine_cycles,
                        diff=t.n_cycles - ss_total, report_match=bool(report_match), exact=exact,
                        ours_s=sec, ss_s=ss["seconds"],
                    ))
                    r = results[-1]
                    print(f"{r['array']:>8} {r['layer']:<16} ss={ss_total:>7} stall={ss_stall} ours={t.n_cycles:>7} "
                          f"engine={engine_cycles:>7} ours {sec * 1e3:8.2f} ms  ss {ss['seconds'] * 1e3:9.1f} ms",
                          file=sys.stderr)
    total_s = time.perf_counter() - t_start
    write_markdown(args.out, results, ss_version, total_s, args.reps)
    print(f"wrote {args.out} ({total_s:.0f} s)", file=sys.stderr)
    ok = all(r["diff"] == 1 and r["engine"] == r["ours"] and r["ss_stall"] == 0 and r["report_match"] and r["exact"]
             for r in results)
    return 0 if ok else 1


def write_markdown(path: Path, results: list[dict], ss_version, total_s: float, reps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ss_ver, ss_np = (ss_version + ["?", "?"])[:2]
    lines = [
        "# Parity and speed against SCALE-Sim v3",
        "",
        "Written by `bench/bench_scalesim.py`. Command (from the repository root):",
        "",
        "```",
        ".venv/bin/python bench/bench_scalesim.py",
        "```",
        "",
        f"- SCALE-Sim `scalesim=={ss_ver}` (numpy {ss_np}) in `.bench_venv`, run through its Python API "
        "(`scalesim(save_disk_space=True, verbose=False, ...).run_scale()`), one single-layer topology per run, "
        "WS dataflow, 64 MiB SRAMs, `InterfaceBandwidth: CALC` (no stalls: column *stall*).",
        f"- Ours: numpy {np.__version__}, numba {numba.__version__}, {numba.get_num_threads()} numba threads, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs ({platform.machine()}).",
        "- *ours* = `gemm_timing(cfg, M, K, N).n_cycles` = folds * (2R + C + M - 2); *cycle eng.* = cycles the "
        "`cycle` engine ran (`SystolicArray(cfg).matmul(x, w, engine=\"cycle\").n_cycles`, random int8 operands, "
        "output checked against `x @ w`: column *exact*).",
        "- *SS report* = `simulator.scalesim_report` reproduces every COMPUTE_REPORT column (Total Cycles, "
        "Overall Util %, Mapping Efficiency %, Compute Util %).",
        f"- Times: ours = best of {reps} runs of the cycle engine computing every output value; SCALE-Sim = one "
        "run building its operand/demand matrices and serving them through its memory model (addresses and cycles "
        "only, no values), excluding interpreter start-up and import.",
        "",
        "| array | layer | M | K | N | folds | SCALE-Sim cycles | stall | ours | cycle eng. | ours - SS "
        "| SS report | exact | cycle engine (ms) | SCALE-Sim (ms) | speed-up |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|:-:|--:|--:|--:|",
    ]
    for r in results:
        lines.append(
            f"| {r['array']} | {r['layer']} | {r['m']} | {r['k']} | {r['n']} | {r['folds']} | {r['ss_total']} "
            f"| {r['ss_stall']} | {r['ours']} | {r['engine']} | {r['diff']:+d} | {'yes' if r['report_match'] else 'NO'} "
            f"| {'yes' if r['exact'] else 'NO'} | {r['ours_s'] * 1e3:.2f} | {r['ss_s'] * 1e3:.1f} "
            f"| {r['ss_s'] / r['ours_s']:.0f}x |"
        )
    ours_sum, ss_sum = sum(r["ours_s"] for r in results), sum(r["ss_s"] for r in results)
    diffs = sorted({r["diff"] for r in results})
    lines += [
        "",
        f"Total: cycle engine {ours_sum * 1e3:.1f} ms, SCALE-Sim {ss_sum:.2f} s ({ss_sum / ours_sum:.0f}x). "
        f"ours - SCALE-Sim over all layers: {diffs} (one per layer, whatever the number of folds). "
        f"Bench wall time {total_s:.0f} s.",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
