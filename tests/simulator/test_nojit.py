"""The kernels in plain Python (NUMBA_DISABLE_JIT=1): bounds are checked there, not in JIT code."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = """
import warnings
import numpy as np
from faults import FaultMap
from simulator import BF16, FP8_E4M3, FP16, FP32, SITES, ArrayConfig, LutPrecision, SystolicArray, multiplier
from tests.naive import bits, naive_matmul
warnings.simplefilter("ignore")

rng = np.random.default_rng(0)
for case in range(150):
    r, c = (int(v) for v in rng.integers(1, 5, 2))
    m, k, n = (int(v) for v in rng.integers(1, 7, 3))
    cfg = ArrayConfig(r, c)
    fm = FaultMap.random(cfg, float(rng.choice([0.25, 0.5, 1.0])), seed=case)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8) * (case % 3 != 0)   # all-zero operands too
    w = rng.integers(-128, 128, (k, n), dtype=np.int8) * (case % 4 != 0)
    x, w = x.astype(np.int8), w.astype(np.int8)
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        want = naive_matmul(x, w, fm.masks, mitigation == "bypass", cfg.precision)
        for engine in ("fast", "cycle"):
            got = arr.matmul(x, w, engine).out
            assert np.array_equal(got, want), (case, engine, mitigation)
for case in range(60):  # float precisions, transient flips
    prec = (FP32, FP16, BF16, FP8_E4M3)[case % 4]
    r, c = (int(v) for v in rng.integers(1, 5, 2))
    m, k, n = (int(v) for v in rng.integers(1, 7, 3))
    cfg = ArrayConfig(r, c, prec)
    fm = FaultMap.random(cfg, float(rng.choice([0.25, 0.5, 1.0])), seed=case)
    nb = prec.widths()[0]
    u = {8: np.uint8, 16: np.uint16, 32: np.uint32}[nb]
    x = rng.integers(0, 1 << nb, (m, k)).astype(u).view(prec.operand_dtypes[0])
    w = rng.integers(0, 1 << nb, (k, n)).astype(u).view(prec.operand_dtypes[0])
    n_cycles = cfg.fold_cycles(m) * cfg.folds(k, n)[0] * cfg.folds(k, n)[1]
    flips = [(int(rng.integers(0, n_cycles)), int(rng.integers(0, r)), int(rng.integers(0, c)), s,
              int(rng.integers(0, prec.site_bits(s)))) for s in rng.choice(SITES, 5)]
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        want = bits(naive_matmul(x, w, fm.masks, mitigation == "bypass", prec, flips))
        for engine in ("fast", "cycle"):
            got = bits(arr.matmul(x, w, engine, flips=flips).out)
            assert np.array_equal(got, want), (case, prec.name, engine, mitigation)
luts = [multiplier("drum:4"), LutPrecision(rng.integers(-2 ** 31, 2 ** 31, (256, 256)).astype(np.int32), acc_bits=32),
        LutPrecision(rng.integers(-2 ** 15, 2 ** 15, (256, 256)).astype(np.int16), acc_bits=20)]
for case in range(30):  # table products (the gather-add path, stuck psum chains included)
    prec = luts[case % 3]
    r, c = (int(v) for v in rng.integers(1, 5, 2))
    m, k, n = (int(v) for v in rng.integers(1, 10, 3))
    cfg = ArrayConfig(r, c, prec)
    fm = FaultMap.random(cfg, float(rng.choice([0.25, 0.5, 1.0])), seed=case)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    for mitigation in (None, "bypass"):
        want = naive_matmul(x, w, fm.masks, mitigation == "bypass", prec)
        got = SystolicArray(cfg, fm, mitigation).matmul(x, w, "fast").out
        assert np.array_equal(got, want), (case, prec.name, mitigation)
print("ok")
"""


def test_engines_without_jit_read_only_inside_their_arrays():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
