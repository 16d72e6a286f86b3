"""How torch computes here: on one thread, and on the CPU's baseline code paths.

Float results depend on more than the seed. Sums split over threads depend on their
number (:func:`one_thread`), and torch's CPU libraries pick kernels by instruction set
at run time: ATen's vectorised kernels (AVX2, AVX-512), MKL's GEMM and oneDNN's
convolutions round differently on a CPU with AVX-512 than on one without. Measured on
this project's CI machine (AVX2): three epochs of LeNet-5 on digits give other weights
with each of ``ATEN_CPU_CAPABILITY=default``, ``MKL_CBWR=COMPATIBLE`` and
``ONEDNN_MAX_CPU_ISA=SSE41`` set alone, and a pretrained model from another machine
needed other retraining amounts, which moved every eFAT number of the demo.

So before torch runs its first operation this module asks all three libraries for
their baseline code paths (unless the user set those variables already, or set
``EFAT_NATIVE_CPU=1`` to keep torch's own choice): the same seed then trains the same
weights on every x86-64 CPU with the same torch build. The models of this project are
small; the cost measured here is within noise (1.5 s against 1.4-1.8 s for those three
epochs). :func:`check_cpu_numerics` warns when torch had already chosen a faster path
before this module was imported (it cannot change it then).
"""

from __future__ import annotations

import contextlib
import os
import warnings

BASELINE = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}

if os.environ.get("EFAT_NATIVE_CPU", "") in ("", "0"):
    for _key, _value in BASELINE.items():
        os.environ.setdefault(_key, _value)

import torch  # noqa: E402  (after the environment above)

__all__ = ["one_thread", "check_cpu_numerics", "BASELINE"]

_warned = False


def check_cpu_numerics() -> bool:
    """True when torch runs its baseline CPU kernels; warns once (and returns False) when not.

    Called before training: weights trained on another code path differ from the ones
    this project's numbers were measured with.
    """
    global _warned
    pinned = torch.backends.cpu.get_cpu_capability() == "DEFAULT"
    if not pinned and not _warned and os.environ.get("EFAT_NATIVE_CPU", "") in ("", "0"):
        _warned = True
        warnings.warn(
            "torch already runs its vectorised CPU kernels "
            f"({torch.backends.cpu.get_cpu_capability()}): import mapping (or training, efat) before torch "
            "runs its first operation, or set ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE "
            "ONEDNN_MAX_CPU_ISA=SSE41, to train the same weights as on other machines "
            "(EFAT_NATIVE_CPU=1 silences this).",
            RuntimeWarning,
            stacklevel=2,
        )
    return pinned


@contextlib.contextmanager
def one_thread():
    """Run torch on one intra-op thread inside the block (restored after it).

    Float sums split over threads depend on their number: calibration (and training) run
    on one thread so their results are the same on 1 or 64 cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def numpy_blas_one_thread():
    """Run NumPy's OpenBLAS on one thread inside the block (restored after it).

    OpenBLAS's worker threads spin for a while after each call; torch operations that run
    next to them (a model's host layers between the simulated GEMMs) slowed down several
    times (measured: ``torch.relu`` on 3.5 M floats 0.5 ms alone, 7 ms right after a NumPy
    GEMM; LeNet-5 ``run_model`` 0.49 s -> 0.34 s under one BLAS thread, though its GEMMs
    took longer). One thread has no workers to spin. Other BLAS libraries (torch's MKL)
    are left as they are.
    """
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    openblas = _blas_controller.select(internal_api="openblas")
    if not openblas:
        yield
        return
    with openblas.limit(limits=1):
        yield


_blas_controller = None
