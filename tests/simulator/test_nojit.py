"""The kernels in plain Python (NUMBA_DISABLE_JIT=1): bounds are checked there, not in JIT code."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = """
import numpy as np
from faults import FaultMap
from simulator import ArrayConfig, SystolicArray
from tests.naive import naive_matmul

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
print("ok")
"""


def test_engines_without_jit_read_only_inside_their_arrays():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
