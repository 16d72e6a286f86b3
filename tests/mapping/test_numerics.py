"""Thread limits that ``run_model`` and calibration rely on are set inside their block and
restored after it."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import ThreadpoolController

from mapping.numerics import numpy_blas_one_thread, one_thread


def _openblas_threads():
    return [m["num_threads"] for m in ThreadpoolController().select(internal_api="openblas").info()]


def test_numpy_blas_one_thread_inside_restored_after():
    before = _openblas_threads()
    if not before:
        pytest.skip("this NumPy does not use OpenBLAS")
    with numpy_blas_one_thread():
        assert all(n == 1 for n in _openblas_threads())
    assert _openblas_threads() == before


def test_one_thread_restores_torch_threads():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_torch_runs_without_onednn_and_check_passes():
    import os

    from mapping.numerics import check_cpu_numerics

    if os.environ.get("EFAT_NATIVE_CPU", "") not in ("", "0"):
        pytest.skip("EFAT_NATIVE_CPU keeps torch's own choice")
    assert torch.backends.mkldnn.enabled is False
    assert check_cpu_numerics()


_TRAIN = """
import mapping, torch
from training import load_dataset, train, model_digest
from training.baseline import _fresh_model
data = load_dataset("digits")
m = _fresh_model("lenet5", data, 0)
train(m, data, epochs=0.5, seed=0)
print(model_digest(m))
"""


@pytest.mark.parametrize("variables", [{"MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
                                       {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}])
def test_training_does_not_depend_on_the_instructions_libraries_may_use(variables):
    """The same weights whatever instruction set MKL or oneDNN is allowed (each run in its own process).

    The variables only narrow or widen what the libraries may use; with oneDNN off and MKL
    in its conditional-numerical-reproducibility mode the sums must not change. With oneDNN
    on, ``ONEDNN_MAX_CPU_ISA`` alone changed these weights on an AVX-512 machine.
    """
    import os
    import subprocess
    import sys

    def digest(extra):
        env = {k: v for k, v in os.environ.items() if k not in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")}
        env.update(extra)
        out = subprocess.run([sys.executable, "-c", _TRAIN], env=env, capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    assert digest(variables) == digest({})
