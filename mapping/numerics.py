"""How torch computes here: on one thread, and on the CPU's baseline code paths.

Float results depend on more than the seed. Sums split over threads depend on their
number (:func:`one_thread`), and torch's CPU libraries pick kernels by instruction set
at run time: ATen's vectorised kernels (AVX2, AVX-512), MKL's GEMM and oneDNN's
convolutions round differently on a CPU with AVX-512 than on one without. Measured on
this project's CI machine (AVX2): three epochs of LeNet-5 on digits give other weights
with each of ``ATEN_CPU_CAPABILITY=default``, ``MKL_CBWR=COMPATIBLE`` and
``ONEDNN_MAX_CPU_ISA=SSE41`` set alone, and a pretrained model from another machine
needed other retraining amounts, which moved every eFAT number of the demo.

So before torch runs its first operation this module asks ATen and MKL for their
baseline code paths and turns torch's oneDNN (mkldnn) backend off (unless the user set
those variables already, or set ``EFAT_NATIVE_CPU=1`` to keep torch's own choice).
oneDNN is off rather than pinned: with ``ONEDNN_MAX_CPU_ISA=SSE41`` an AMD EPYC (AVX2)
and an Intel Xeon (AVX-512) still trained other LeNet-5 weights from the same seed,
and oneDNN's JIT kernels size their blocks, and so the order of their sums, from the
CPU's cache sizes, which no variable pins. Without it convolutions run as ATen's
im2col and MKL GEMMs, and under ``MKL_CBWR=COMPATIBLE`` MKL gives the same bits
whatever instructions it may use (measured here: ``MKL_ENABLE_INSTRUCTIONS=SSE4_2``,
``AVX2`` or unset train identical weights; ``ONEDNN_MAX_CPU_ISA`` no longer matters).
Training is no slower for this project's models (LeNet-5 on digits, pretraining plus
four 1-epoch FAT runs: 7.5 s against 8.0 s with oneDNN). :func:`check_cpu_numerics`
warns when torch runs other paths than these.
"""

from __future__ import annotations

import contextlib
import os
import warnings

BASELINE = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}
"""Environment set before torch loads; ``ONEDNN_MAX_CPU_ISA`` only matters if a user turns
oneDNN back on."""

_PINNED = os.environ.get("EFAT_NATIVE_CPU", "") in ("", "0")
if _PINNED:
    for _key, _value in BASELINE.items():
        os.environ.setdefault(_key, _value)

import torch  # noqa: E402  (after the environment above)

if _PINNED:
    torch.backends.mkldnn.enabled = False

__all__ = ["one_thread", "check_cpu_numerics", "BASELINE"]

_warned = False


def check_cpu_numerics() -> bool:
    """True when torch runs its baseline CPU kernels; warns once (and returns False) when not.

    Called before training: weights trained on another code path differ from the ones
    this project's numbers were measured with.
    """
    global _warned
    vectorised = torch.backends.cpu.get_cpu_capability() != "DEFAULT"
    onednn = torch.backends.mkldnn.enabled
    if (vectorised or onednn) and not _warned and _PINNED:
        _warned = True
        what = []
        if vectorised:
            what.append(f"its vectorised CPU kernels ({torch.backends.cpu.get_cpu_capability()}): import mapping "
                        "(or training, efat) before torch runs its first operation, or set "
                        "ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE")
        if onednn:
            what.append("oneDNN (torch.backends.mkldnn.enabled is True; set it to False)")
        warnings.warn(
            f"torch runs {'; and '.join(what)}; weights trained so differ from other machines' "
            "(EFAT_NATIVE_CPU=1 silences this).",
            RuntimeWarning,
            stacklevel=2,
        )
    return not (vectorised or onednn)


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
