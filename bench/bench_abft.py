"""ABFT: overhead in cycles on the memory-aware model, and the cost of protection in simulator time.

(a) For every model of ``efat abft overhead`` (our MLP, LeNet-5 and VGG on 28x28 inputs;
    AlexNet, VGG-16 and ResNet-50 layer shapes at 224x224), batch 1 and 16, arrays 16x16,
    32x32 and 128x128, DRAM 4, 16 and 64 bytes per cycle, 64 KiB buffers, int8: the time
    overhead of global, fold-level, replication and intensity-guided ABFT, and the improvement
    factor of the intensity-guided choice against global ABFT (min, median, max per model),
    with global ABFT's checksums summed at the array's ports and by the host.
(b) Wall time of ``run_model`` protected by each scheme against the same run unprotected
    (LeNet-5, 1,000 MNIST test images, or digits without the MNIST files, 16x16 array, int8 and FP16, fast
    engine), in alternating blocks.

    .venv/bin/python bench/bench_abft.py
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blocks, machine, write_result  # noqa: E402

from cli.abft_overhead import OWN_MODELS, PAPER_RANGE, ZOO_MODELS, overhead_rows  # noqa: E402
from mapping import numerics  # noqa: E402,F401  (pins torch's CPU paths, as the app does)


def _overhead_table() -> list[str]:
    rows = overhead_rows(OWN_MODELS + ZOO_MODELS, [1, 16], [16, 32, 128], [4.0, 16.0, 64.0])
    lines = ["| model | checksums | global | fold | replication | intensity-guided | factor: min | median | max |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    pct = lambda vals: f"{100 * min(vals):.1f}-{100 * max(vals):.1f}%"  # noqa: E731
    for model in OWN_MODELS + ZOO_MODELS:
        for where in ("array", "host"):
            sel = [r for r in rows if r["model"] == model and r["checksums"] == where]
            f = np.array([r["factor"] for r in sel])
            lines.append(f"| {model} | {where} | {pct([r['ov_global'] for r in sel])} | "
                         f"{pct([r['ov_fold'] for r in sel])} | {pct([r['ov_replication'] for r in sel])} | "
                         f"{pct([r['ov_intensity'] for r in sel])} | {f.min():.2f} | {np.median(f):.2f} | "
                         f"{f.max():.2f} |")
    for where in ("array", "host"):
        f = np.array([r["factor"] for r in rows if r["checksums"] == where])
        finite = f[np.isfinite(f)]
        lines.append("")
        lines.append(f"Checksums at the {where}: factor {f.min():.2f}-{'inf' if np.isinf(f.max()) else f'{f.max():.2f}'} "
                     f"(median {np.median(f):.2f}; {int((~np.isfinite(f)).sum())} of {len(f)} cases free under the "
                     f"intensity-guided choice; largest finite {finite.max():.2f}); SC21: {PAPER_RANGE[0]}-{PAPER_RANGE[1]}x.")
    return lines


def _wall_table() -> list[str]:
    from cli.args import DEFAULT_MNIST
    from mapping import quantize, run_model
    from protect import Abft
    from simulator import FP16, INT8, ArrayConfig, MemoryConfig, SystolicArray
    from training import load_dataset, pretrained

    spec = f"mnist:{DEFAULT_MNIST}" if DEFAULT_MNIST.is_dir() else "digits"
    data = load_dataset(spec, seed=0)
    model = pretrained("lenet5", data, seed=0)
    x, y = data.x_test[:1000], data.y_test[:1000]
    lines = [f"LeNet-5 on {data.name}, {len(y)} test images, batches of 256, 16x16 array with 16 B/cycle and 64 KiB "
             "buffers, fast engine; median of alternating blocks", "",
             "| precision | scheme | seconds | against unprotected | cycle overhead (model) |", "|---|---|--:|--:|--:|"]
    for prec in (INT8, FP16):
        cfg = ArrayConfig(16, 16, prec, memory=MemoryConfig(16))
        qm = quantize(model, data.x_train[:512], prec)
        arr = SystolicArray(cfg)
        schemes = ("none", "global", "fold", "replication", "intensity")
        fns = {s: (lambda s=s: run_model(qm, (x, y), arr, batch_size=256, progress=False,
                                         protect=None if s == "none" else Abft(s))) for s in schemes}
        times = blocks(fns, reps=1, rounds=3)
        for s in schemes:
            ov = "" if s == "none" else f"{100 * fns[s]().protection.total_overhead():.1f}%"
            lines.append(f"| {prec.name} | {s} | {times[s]:.2f} | {times[s] / times['none']:.2f}x | {ov} |")
    return lines


def main():
    text = "\n".join([f"ABFT, {machine()}", "", "    .venv/bin/python bench/bench_abft.py", "",
                      "(a) time overhead on the memory-aware model, int8, batch 1 and 16, arrays 16/32/128, "
                      "4/16/64 B/cycle, 64 KiB buffers (18 configurations per model and placement)", "",
                      *_overhead_table(), "", "(b) cost of protection in simulator time", "", *_wall_table(), ""])
    write_result("abft", text)


if __name__ == "__main__":
    main()
