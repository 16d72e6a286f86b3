"""``run_model`` speed: LeNet-5 on a faulty 128x128 chip against the float torch forward pass.

LeNet-5 on 2,000 MNIST test images (the last 2,000 of ../shared/data/mnist, the
documented test split) or, without MNIST, on the digits test split; 128x128 array, 1%
faulty PEs (all four sites). Targets: run_model time <= 5x torch; and chips evaluated per
minute for a population of 50 chips.

    .venv/bin/python bench/bench_mapping.py
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blocks, machine, write_result  # noqa: E402

from faults import FaultMap, Population  # noqa: E402
from mapping import quantize, run_model  # noqa: E402
from simulator import ArrayConfig, SystolicArray  # noqa: E402
from training.baseline import evaluate, pretrained  # noqa: E402
from training.data import load_dataset  # noqa: E402

MNIST = pathlib.Path(os.environ.get("EFAT_MNIST", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


def main():
    spec = f"mnist:{MNIST}" if MNIST.is_dir() else "digits"
    data = load_dataset(spec, seed=0)
    model = pretrained("lenet5", data, seed=0, progress=True).eval()
    x, y = data.x_test[:2000], data.y_test[:2000]
    cfg = ArrayConfig(128, 128)
    fm = FaultMap.random(cfg, 0.01, seed=0)
    t0 = time.perf_counter()
    qm = quantize(model, data.x_train[:512])
    t_quant = time.perf_counter() - t0
    chip, chip_bypass = SystolicArray(cfg, fm), SystolicArray(cfg, fm, "bypass")

    def torch_forward():
        with torch.no_grad():
            model(x)

    t = blocks({
        "torch float forward": torch_forward,
        "run_model, fault-free chip": lambda: run_model(qm, (x, y), SystolicArray(cfg), batch_size=1000),
        "run_model, 1% faulty chip": lambda: run_model(qm, (x, y), chip, batch_size=1000),
        "run_model, 1% faulty chip, bypass": lambda: run_model(qm, (x, y), chip_bypass, batch_size=1000),
    }, reps=3, rounds=3)
    base = t["torch float forward"]
    pop = Population.generate(cfg, 50, rates="uniform:0.005,0.05", seed=0)
    t0 = time.perf_counter()
    accs = [run_model(qm, (x, y), SystolicArray(cfg, c.fault_map, "bypass"), batch_size=1000).accuracy for c in pop]
    t_pop = time.perf_counter() - t0
    text = "\n".join([
        f"LeNet-5 on {len(x)} {data.name} test images, {cfg.rows}x{cfg.cols} array; {machine()}",
        f"float accuracy {evaluate(model, x, y):.4f}; int8 on the 1% chip: unmitigated "
        f"{run_model(qm, (x, y), chip).accuracy:.4f}, bypass {run_model(qm, (x, y), chip_bypass).accuracy:.4f}",
        "",
        "| run | median ms | ratio to torch float forward (lower is better) |",
        "|---|---|---|",
        *[f"| {k} | {v * 1e3:.0f} | {v / base:.2f} |" for k, v in t.items()],
        "",
        f"quantize (calibration on 512 inputs, once per model): {t_quant * 1e3:.0f} ms",
        f"population of 50 chips (rates 0.5-5%, bypass): {t_pop:.1f} s = **{50 / t_pop * 60:.0f} chips per minute** "
        f"(accuracy {min(accs):.4f} to {max(accs):.4f})",
        "",
    ])
    write_result("mapping", text)


if __name__ == "__main__":
    main()
