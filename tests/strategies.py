"""Hypothesis strategies for arrays, precisions, fault maps and operands."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from faults import FaultMap, StuckAt
from simulator import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, INT8, SITES, ArrayConfig, IntPrecision

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


#: Float precisions every float-engine test runs over.
FLOAT_PRECISIONS = [FP32, FP16, BF16, FP8_E4M3, FP8_E5M2]


def _special_patterns(prec):
    """Bit patterns of the values that break careless float code, in the operand format."""
    bits = prec.widths()[0]
    f = prec.format
    top = (1 << f.exp_bits) - 1
    sign = 1 << (bits - 1)
    out = {0, sign, 1, sign | 1, (1 << f.man_bits) - 1, 1 << f.man_bits}  # zeros, subnormals, smallest normal
    out |= {(top << f.man_bits), sign | (top << f.man_bits)}  # inf (or a finite E4M3 value)
    out |= {(top << f.man_bits) | (1 << (f.man_bits - 1)), (top << f.man_bits) | ((1 << f.man_bits) - 1)}  # NaNs
    out |= {((top - 1) << f.man_bits) | ((1 << f.man_bits) - 1)}  # largest finite (IEEE formats)
    bias = (1 << (f.exp_bits - 1)) - 1
    out |= {bias << f.man_bits, sign | (bias << f.man_bits)}  # +-1
    return sorted(out)


def float_arrays(prec, shape):
    """Operands in the precision's dtype: random bit patterns, ordinary numbers and special values."""
    bits = prec.widths()[0]
    uint = {8: np.uint8, 16: np.uint16, 32: np.uint32}[bits]
    special = st.sampled_from(_special_patterns(prec))
    ordinary = st.floats(-4, 4, width=32).map(lambda v: int(np.array([v], np.float32).astype(prec.operand_dtypes[0])
                                                            .view(uint)[0]))
    anything = st.integers(0, (1 << bits) - 1)
    patterns = hnp.arrays(uint, shape, elements=st.one_of(special, ordinary, anything))
    return patterns.map(lambda a: a.view(prec.operand_dtypes[0]))


@st.composite
def float_configs(draw, max_dim=6):
    return ArrayConfig(draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim)),
                       draw(st.sampled_from(FLOAT_PRECISIONS)))


@st.composite
def float_operands(draw, cfg, max_m=9, max_k=15, max_n=15):
    m, k, n = draw(st.integers(1, max_m)), draw(st.integers(1, max_k)), draw(st.integers(1, max_n))
    return draw(float_arrays(cfg.precision, (m, k))), draw(float_arrays(cfg.precision, (k, n)))


@st.composite
def flip_lists(draw, cfg, m, k, n, max_flips=8):
    """Transient flips anywhere in the GEMM's cycles, any site and bit (duplicates likely)."""
    fk, fn = cfg.folds(k, n)
    n_cycles = fk * fn * cfg.fold_cycles(m)
    out = []
    for _ in range(draw(st.integers(0, max_flips))):
        site = draw(st.sampled_from(SITES))
        out.append((draw(st.integers(0, n_cycles - 1)), draw(st.integers(0, cfg.rows - 1)),
                    draw(st.integers(0, cfg.cols - 1)), site, draw(st.integers(0, cfg.precision.site_bits(site) - 1))))
    return out
