"""Our memory-aware timing against SCALE-Sim v3's stall cycles in its USER bandwidth mode.

For a few layers on a 32x32 weight-stationary array with 64 KiB buffers, at several DRAM
bandwidths, this runs SCALE-Sim (``InterfaceBandwidth: USER``, the same number of words per
cycle for its ifmap, filter and ofmap backing interfaces; 1-byte words) and reports its total
and stall cycles beside ours (:func:`simulator.memory_timing`: total cycles and the cycles
beyond compute, ``total - compute``). A measured comparison, not an equality: the two models
differ (see the notes it writes). SCALE-Sim runs in ``.bench_venv`` (see bench_scalesim.py).

    .venv/bin/python bench/bench_scalesim_bw.py      # writes bench/results/scalesim_bw.md
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scalesim import CONV_HEADER, GEMM_HEADER, SCALESIM_CFG, ensure_venv, run_scalesim  # noqa: E402
from common import machine, write_result  # noqa: E402

from simulator import ArrayConfig, MemoryConfig, layer_timings, memory_timing, read_topology  # noqa: E402

LAYERS = {
    "conv": ["conv1, 32, 32, 3, 3, 3, 16, 1,", "conv3, 15, 15, 3, 3, 32, 64, 1,", "fc, 1, 1, 1, 1, 2304, 10, 1,"],
    "gemm": ["mlp_784x128_b64, 64, 128, 784,", "tall_2048x32x64, 2048, 64, 32,", "fc_b1_1024x256, 1, 256, 1024,"],
}
BANDWIDTHS = (1, 4, 16)
ARRAY = 32
BUFFER_KB = 64


def _user_cfg(bw: int) -> str:
    text = SCALESIM_CFG.format(rows=ARRAY, cols=ARRAY)
    for key in ("IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB"):
        text = text.replace(f"{key}: 65536", f"{key}: {BUFFER_KB}")
    text = text.replace("Bandwidth: 1000", f"Bandwidth: {bw}")
    text = text.replace("IfmapSRAMBankBandwidth: 10", f"IfmapSRAMBankBandwidth: {bw}")
    text = text.replace("FilterSRAMBankBandwidth: 10", f"FilterSRAMBankBandwidth: {bw}")
    text = text.replace("IfmapSRAMBankNum: 10", "IfmapSRAMBankNum: 1").replace("FilterSRAMBankNum: 10",
                                                                              "FilterSRAMBankNum: 1")
    return text.replace("InterfaceBandwidth: CALC", "InterfaceBandwidth: USER")


def main() -> None:
    ensure_venv()
    lines = [f"Memory-aware timing against SCALE-Sim v3 USER bandwidth mode; {machine()}", "",
             "    .venv/bin/python bench/bench_scalesim_bw.py", "",
             f"{ARRAY}x{ARRAY} WS array, {BUFFER_KB} KiB per buffer. SCALE-Sim: USER mode, B words per cycle on each "
             "of its three backing interfaces (ifmap, filter, ofmap; 1-byte words). Ours: B bytes per cycle shared "
             "by all three, 4-byte outputs. *stall* = SCALE-Sim's stall cycles; *ours beyond compute* = "
             "total - compute cycles.", "",
             "| layer | M | K | N | B | SCALE-Sim total | SCALE-Sim stall | ours compute | ours total "
             "| ours beyond compute | bound (ours) | ours / SCALE-Sim |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|"]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_ssbw_") as tmp:
        work = Path(tmp)
        for form, rows in LAYERS.items():
            topo = work / f"all_{form}.csv"
            topo.write_text((CONV_HEADER if form == "conv" else GEMM_HEADER) + "\n".join(rows) + "\n")
            for bw in BANDWIDTHS:
                cfg = ArrayConfig(ARRAY, ARRAY, memory=MemoryConfig(bw, BUFFER_KB, BUFFER_KB, BUFFER_KB))
                ours = layer_timings(read_topology(topo), cfg)
                theirs = run_scalesim(work, ARRAY, ARRAY, form, rows, _user_cfg(bw), tag=f"_bw{bw}")
                for (layer, t), ss in zip(ours, theirs):
                    col = dict(zip(ss["header"], ss["row"]))
                    total = int(col.get("Total Cycles (incl. prefetch)", col["Total Cycles"]))
                    stall = int(col["Stall Cycles"])
                    mt = memory_timing(cfg, layer.m, layer.k, layer.n)
                    lines.append(f"| {layer.name} | {layer.m} | {layer.k} | {layer.n} | {bw} | {total} | {stall} | "
                                 f"{mt.compute_cycles} | {mt.total_cycles} | {mt.total_cycles - mt.compute_cycles} | "
                                 f"{'memory' if mt.memory_bound else 'compute'} | {mt.total_cycles / total:.2f} |")
                    print(lines[-1], file=sys.stderr)
    lines += ["", f"SCALE-Sim runs and ours: {time.perf_counter() - t0:.0f} s.", ""]
    write_result("scalesim_bw", "\n".join(lines))


if __name__ == "__main__":
    main()
