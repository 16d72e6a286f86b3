"""``run_model`` speed for the ViT (attention on the array) against the float torch forward pass.

The zoo's ViT on 2,000 MNIST test images (the last 2,000 of ../shared/data/mnist) or, without
MNIST, on the digits test split; fault-free 32x32 and 128x128 arrays, and a 32x32 one with 1%
faulty PEs with and without bypass; batches of 256 for both. Target (issue 12): run_model time
<= 5x the float forward on the fault-free chips.

    .venv/bin/python bench/bench_vit.py
"""

from __future__ import annotations

import os
import pathlib
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blocks, machine, write_result  # noqa: E402

from faults import FaultMap  # noqa: E402
from mapping import quantize, run_model  # noqa: E402
from simulator import ArrayConfig, SystolicArray  # noqa: E402
from training.baseline import evaluate, pretrained  # noqa: E402
from training.data import load_dataset  # noqa: E402

MNIST = pathlib.Path(os.environ.get("EFAT_MNIST", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


def main():
    spec = f"mnist:{MNIST}" if MNIST.is_dir() else "digits"
    data = load_dataset(spec, seed=0)
    model = pretrained("vit", data, seed=0, progress=True).eval()
    x, y = data.x_test[:2000], data.y_test[:2000]
    qm = quantize(model, data.x_train[:512])
    small, big = ArrayConfig(32, 32), ArrayConfig(128, 128)
    fm = FaultMap.random(small, 0.01, seed=0)

    def torch_forward():
        with torch.no_grad():
            for i in range(0, len(x), 256):
                model(x[i : i + 256])

    runs = {
        "torch float forward": torch_forward,
        "run_model, fault-free 32x32": lambda: run_model(qm, (x, y), SystolicArray(small)),
        "run_model, fault-free 128x128": lambda: run_model(qm, (x, y), SystolicArray(big)),
        "run_model, 32x32 with 1% faulty PEs": lambda: run_model(qm, (x, y), SystolicArray(small, fm)),
        "run_model, 32x32 with 1% faulty PEs, bypass": lambda: run_model(qm, (x, y), SystolicArray(small, fm, "bypass")),
    }
    t = blocks(runs, reps=3, rounds=3)
    base = t["torch float forward"]
    acc = {k: run_model(qm, (x, y), a).accuracy for k, a in (("fault-free", SystolicArray(small)),
                                                              ("1% faulty", SystolicArray(small, fm)),
                                                              ("bypass", SystolicArray(small, fm, "bypass")))}
    text = "\n".join([
        f"ViT on {len(x)} {data.name} test images; {machine()}",
        f"float accuracy {evaluate(model, x, y):.4f}; int8 on the chip: fault-free {acc['fault-free']:.4f}, "
        f"1% faulty {acc['1% faulty']:.4f}, bypass {acc['bypass']:.4f}",
        "",
        "    .venv/bin/python bench/bench_vit.py",
        "",
        "| run | median ms | ratio to torch float forward (target <= 5 fault-free) |",
        "|---|---|---|",
        *[f"| {k} | {v * 1e3:.0f} | {v / base:.2f} |" for k, v in t.items()],
        "",
    ])
    write_result("vit", text)


if __name__ == "__main__":
    main()
