"""Per-thread work buffers that the ``fast`` engine reuses from call to call.

A GEMM of the benchmark's size needs tens of MiB of temporaries (operands converted to
float32, partial results). Fresh from the allocator, each page is faulted in and zeroed by
the kernel on first touch; measured on the 4096x1152x256 GEMM with 1% faulty PEs, that
doubled the time of the BLAS calls. The buffers here keep their pages: a buffer grows to
the largest request seen under its name and is then viewed at the shape asked for.

Buffers are per thread, so threads running GEMMs side by side never share one. A view
stays valid until the next request under the same name in the same thread: never return
one to a caller.
"""

from __future__ import annotations

import math
import threading

import numpy as np

__all__ = ["scratch", "release"]


class _Buffers(threading.local):
    def __init__(self):
        self.by_name: dict[str, np.ndarray] = {}


_local = _Buffers()


def scratch(name: str, shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array ``shape`` of ``dtype`` backed by buffer ``name``."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    buf = _local.by_name.get(name)
    if buf is None or buf.size < nbytes:
        buf = np.empty(max(nbytes, 64), np.uint8)
        _local.by_name[name] = buf
    return buf[:nbytes].view(dtype).reshape(shape)


def release() -> None:
    """Drop this thread's buffers (their memory returns to the allocator)."""
    _local.by_name.clear()
