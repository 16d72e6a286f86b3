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
