"""Hypothesis strategies for arrays, precisions, fault maps and operands."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from faults import FaultMap, StuckAt
from simulator import INT8, SITES, ArrayConfig, IntPrecision

#: Precisions every engine test runs over test runs over: the default, and narrow accumulators that
#: overflow (and wrap) with small operands.
PRECISIONS = [INT8, IntPrecision(8, 8, 16, 17), IntPrecision(4, 4, 8, 12), IntPrecision(8, 6, 16, 24)]


@st.composite
def configs(draw, max_dim=6):
    rows = draw(st.integers(1, max_dim))
    cols = draw(st.integers(1, max_dim))
    return ArrayConfig(rows, cols, draw(st.sampled_from(PRECISIONS)))


@st.composite
def fault_maps(draw, cfg, max_faults=12, sites=SITES):
    """Random stuck-at faults anywhere (several per PE and per column are likely)."""
    fm = FaultMap.empty(cfg)
    for _ in range(draw(st.integers(0, max_faults))):
        site = draw(st.sampled_from(sites))
        bits = cfg.precision.site_bits(site)
        fm = fm.with_fault(
            draw(st.integers(0, cfg.rows - 1)),
            draw(st.integers(0, cfg.cols - 1)),
            StuckAt(site, draw(st.integers(0, bits - 1)), draw(st.integers(0, 1))),
        )
    return fm


def int_arrays(shape, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return hnp.arrays(np.int8, shape, elements=st.integers(lo, hi))


@st.composite
def operands(draw, cfg, max_m=9, max_k=15, max_n=15):
    """(x, w) of a random GEMM shape (not multiples of R or C, in general)."""
    m = draw(st.integers(1, max_m))
    k = draw(st.integers(1, max_k))
    n = draw(st.integers(1, max_n))
    x = draw(int_arrays((m, k), cfg.precision.act_bits))
    w = draw(int_arrays((k, n), cfg.precision.weight_bits))
    return x, w
