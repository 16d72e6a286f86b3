"""Transient flips as exact deltas (simulator/engines/flip_deltas.py): the fast engine's path for
precisions whose sums are modular integers, against the reference.

The flips are aimed at one chain: several weight flips on one PE (in load cycles and mid-stream)
and on others of its column, act flips to its left in its row, product and psum flips above and
below it for one input vector; beside them, flips anywhere. Chips: fault-free, stuck bits that
keep the chains linear (act, weight, product), stuck psum bits above or below the flipped PEs,
any faults; with and without bypass. Narrow accumulators wrap.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faults import FaultMap, StuckAt
from simulator import INT8, ArrayConfig, IntPrecision, LutPrecision, SystolicArray, multiplier
from simulator.engines.flip_deltas import plan
from simulator.engines.ordered import Prepared
from simulator.flips import check_flips, xor_patterns

from ..naive import naive_matmul
from ..strategies import fault_maps, flip_lists, operands

ROOT = pathlib.Path(__file__).resolve().parents[2]
_DRUM = multiplier("drum:4")

#: Integer precisions, narrow accumulators that wrap with small operands among them.
INTS = [INT8, IntPrecision(8, 8, 16, 17), IntPrecision(4, 4, 8, 8), IntPrecision(4, 4, 8, 11)]


def _luts():
    rng = np.random.default_rng(13)
    return [_DRUM, LutPrecision(_DRUM.table, signed=False, acc_bits=17),
            LutPrecision(rng.integers(-2 ** 15, 2 ** 15, (256, 256)).astype(np.int16), acc_bits=16),
            LutPrecision(rng.integers(-2 ** 31, 2 ** 31, (256, 256)).astype(np.int32), acc_bits=32)]


LUTS = _luts()


@st.composite
def chain_flips(draw, cfg, M, K, N, r0, c0, max_extra=4):
    """Flips aimed at the chain of PE ``(r0, c0)`` in one fold for one input vector ``m0``."""
    R, C = cfg.shape
    fk, fn = cfg.folds(K, N)
    L = cfg.fold_cycles(M)
    base = draw(st.integers(0, fk * fn - 1)) * L
    m0 = draw(st.integers(0, M - 1))

    def mac(r, c, m):
        return base + R + r + c + m

    def bit(site):
        return draw(st.integers(0, cfg.precision.site_bits(site) - 1))

    out = []
    for _ in range(draw(st.integers(1, 4))):  # weight flips on the PE: load cycles, mid-stream, after its last MAC
        out.append((base + draw(st.integers(0, min(R + r0 + c0 + M, L - 1))), r0, c0, "weight", bit("weight")))
    for _ in range(draw(st.integers(0, 2))):  # on other PEs of the column and the row
        r, c = draw(st.sampled_from([(r, c0) for r in range(R)] + [(r0, c) for c in range(C)]))
        out.append((base + draw(st.integers(0, R + r + c + M - 1)), r, c, "weight", bit("weight")))
    for _ in range(draw(st.integers(0, 2))):  # act flips to the left in the row, at m0 or another vector
        c = draw(st.integers(0, c0))
        m = draw(st.sampled_from([m0, draw(st.integers(0, M - 1))]))
        out.append((mac(r0, c, m), r0, c, "act", bit("act")))
    for site in ("product", "psum"):  # on the chain of (m0, c0), above, at and below r0
        for _ in range(draw(st.integers(0, 2))):
            r = draw(st.integers(0, R - 1))
            out.append((mac(r, c0, m0), r, c0, site, bit(site)))
    if draw(st.booleans()):
        out.append(draw(st.sampled_from(out)))  # a duplicate: two flips of one bit in one cycle cancel
    out += draw(flip_lists(cfg, M, K, N, max_flips=max_extra))
    return draw(st.permutations(out))


_SITES = {"linear": ("act", "weight", "product"), "psum": ("psum",), "any": ("act", "weight", "product", "psum")}


@st.composite
def chips(draw, cfg, r0, c0):
    """Fault maps of four kinds: none; act, weight and product faults only (every chain linear);
    psum faults only; any. Faults anywhere, and some aimed at PE ``(r0, c0)``: on it, an act
    fault to its left, a psum fault above, on or below it in its column."""
    kind = draw(st.sampled_from(["none", "linear", "psum", "any"]))
    if kind == "none":
        return FaultMap.empty(cfg)
    fm = draw(fault_maps(cfg, max_faults=4, sites=_SITES[kind]))
    for _ in range(draw(st.integers(0, 3))):
        site = draw(st.sampled_from(_SITES[kind]))
        r = draw(st.integers(0, cfg.rows - 1)) if site == "psum" else r0
        c = draw(st.integers(0, c0)) if site == "act" else c0
        bits = cfg.precision.site_bits(site)
        fm = fm.with_fault(r, c, StuckAt(site, draw(st.integers(0, bits - 1)), draw(st.integers(0, 1))))
    return fm


@st.composite
def scenarios(draw, cfg, M, K, N, max_extra=4):
    """``(fault map, flips)`` aimed at one PE."""
    r0, c0 = draw(st.integers(0, cfg.rows - 1)), draw(st.integers(0, cfg.cols - 1))
    return draw(chips(cfg, r0, c0)), draw(chain_flips(cfg, M, K, N, r0, c0, max_extra))


def _check(cfg, x, w, fm, flips):
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        want = naive_matmul(x, w, fm.masks, mitigation == "bypass", cfg.precision, flips)
        got = arr.matmul(x, w, "fast", flips=flips).out
        np.testing.assert_array_equal(got, want, err_msg=f"{cfg.precision.name} {mitigation} {flips}")


@settings(max_examples=200)
@given(data=st.data())
def test_flips_on_one_chain_int(data):
    cfg = ArrayConfig(data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)), data.draw(st.sampled_from(INTS)))
    x, w = data.draw(operands(cfg, max_m=12, max_k=11, max_n=11))
    _check(cfg, x, w, *data.draw(scenarios(cfg, *x.shape, w.shape[1])))


@settings(max_examples=120)
@given(data=st.data())
def test_flips_on_one_chain_lut(data):
    cfg = ArrayConfig(data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)), data.draw(st.sampled_from(LUTS)))
    x, w = data.draw(operands(cfg, max_m=10, max_k=9, max_n=9))
    _check(cfg, x, w, *data.draw(scenarios(cfg, *x.shape, w.shape[1])))


@settings(max_examples=25)
@given(data=st.data())
def test_many_flips_on_taller_gemms(data):
    """Weight flips that reach many vectors, many act flips per column (the exact recomputation
    then takes whole columns), against the cycle engine."""
    prec = data.draw(st.sampled_from(INTS + LUTS))
    cfg = ArrayConfig(data.draw(st.integers(2, 6)), data.draw(st.integers(2, 6)), prec)
    x, w = data.draw(operands(cfg, max_m=90, max_k=20, max_n=14))
    fm, flips = data.draw(scenarios(cfg, *x.shape, w.shape[1], max_extra=80))
    for mitigation in (None, "bypass"):
        arr = SystolicArray(cfg, fm, mitigation)
        np.testing.assert_array_equal(arr.matmul(x, w, "fast", flips=flips).out,
                                      arr.matmul(x, w, "cycle", flips=flips).out)


def _plan(cfg, fm, x, w, flips, bypass=False):
    ev = check_flips(flips, cfg, 10 ** 9)
    ops = Prepared(x, w, fm.masks, bypass)
    return plan(ev, xor_patterns(ev, cfg.precision.widths()), ops)


def _mac(cfg, M, fold, r, c, m):
    return fold * cfg.fold_cycles(M) + cfg.rows + r + c + m


@pytest.mark.parametrize("prec", [INT8, LUTS[2]])
def test_linear_chains_take_deltas_only(prec):
    """Without a stuck psum bit below them, weight, act, product and psum flips are all deltas:
    nothing is recomputed from scratch. A stuck psum bit below a flipped PE sends its column (a
    weight flip) or its outputs (the others) to the exact recomputation; one above does not."""
    cfg = ArrayConfig(4, 3, prec)
    rng = np.random.default_rng(1)
    x, w = rng.integers(-128, 128, (40, 8), dtype=np.int8), rng.integers(-128, 128, (8, 3), dtype=np.int8)
    flips = [(_mac(cfg, 40, 0, 2, 1, 5), 2, 1, "weight", 3), (_mac(cfg, 40, 0, 2, 1, 9), 2, 1, "weight", 6),
             (_mac(cfg, 40, 1, 2, 0, 7), 2, 0, "act", 2), (_mac(cfg, 40, 0, 1, 1, 9), 1, 1, "product", 4),
             *[(_mac(cfg, 40, 0, 2, 1, m), 2, 1, "psum", 12) for m in range(9, 15)]]  # chains below a stuck psum
    linear = FaultMap.empty(cfg).with_fault(2, 1, StuckAt("product", 3, 1)).with_fault(0, 1, StuckAt("psum", 2, 1))
    p = _plan(cfg, linear, x, w, flips)
    assert len(p.pieces) == 2 and len(p.points) == 1 + 3 and len(p.chains) == 6
    assert len(p.cols) == 0 and len(p.outs) == 0
    below = linear.with_fault(3, 1, StuckAt("psum", 5, 1))
    p = _plan(cfg, below, x, w, flips)
    assert len(p.pieces) == 0 and p.cols.tolist() == [[1, 5, 40]]  # whole column 1 from vector 5 on
    assert len(p.points) == 2 and len(p.chains) == 0  # act flip's columns 0 and 2 stay deltas
    assert p.outs.tolist() == []  # (7, 1) and (9..14, 1) lie in the recomputed column
    for fm in (linear, below):
        for bypass in (False, True):
            want = naive_matmul(x, w, fm.masks, bypass, prec, flips)
            np.testing.assert_array_equal(SystolicArray(cfg, fm, "bypass" if bypass else None)
                                          .matmul(x, w, flips=flips).out, want)


def test_weight_flips_on_one_pe_compose_piecewise():
    """Five flips of one weight register in one fold, two of them of one bit and one of a stuck
    bit: each input vector sees the XOR of the flips made up to its MAC, through the register's
    masks (a piece where only the stuck bit is flipped changes nothing); a narrow accumulator
    wraps. The next fold reloads the register."""
    prec = IntPrecision(4, 4, 8, 8)
    cfg = ArrayConfig(3, 2, prec)
    x = np.array([[7, 0, -1], [-8, -8, -8], [7, -8, -8], [-7, 6, 6], [-7, 0, -1], [6, 0, -1]], np.int8)
    w = np.array([[-8, -8, 0], [7, -8, 7], [7, 7, 7]], np.int8)  # the flips take two sums past 127: they wrap
    fm = FaultMap.empty(cfg).with_fault(1, 0, StuckAt("weight", 0, 1))
    flips = [(_mac(cfg, 6, 0, 1, 0, 1), 1, 0, "weight", 0), (_mac(cfg, 6, 0, 1, 0, 2), 1, 0, "weight", 3),
             (_mac(cfg, 6, 0, 1, 0, 4), 1, 0, "weight", 3), (_mac(cfg, 6, 0, 1, 0, 5), 1, 0, "weight", 1),
             (_mac(cfg, 6, 0, 1, 0, 5) + 1, 1, 0, "weight", 2),  # after its last MAC: reaches nothing
             (_mac(cfg, 6, 1, 1, 0, 0), 1, 0, "weight", 2)]  # fold 1 (column 2), from vector 0 on
    p = _plan(cfg, fm, x, w, flips)
    assert p.pieces[:, 2:4].tolist() == [[2, 4], [5, 6], [0, 6]]  # vectors 1 and 4: only bit 0 flipped
    for mitigation in (None, "bypass"):
        want = naive_matmul(x, w, fm.masks, mitigation == "bypass", prec, flips)
        np.testing.assert_array_equal(SystolicArray(cfg, fm, mitigation).matmul(x, w, flips=flips).out, want)


_NOJIT = """
import warnings
import numpy as np
from faults import FaultMap
from simulator import SITES, ArrayConfig, IntPrecision, LutPrecision, SystolicArray, multiplier
from tests.naive import naive_matmul
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
precs = [IntPrecision(8, 8, 16, 17), IntPrecision(4, 4, 8, 8), multiplier("drum:4"),
         LutPrecision(rng.integers(-2 ** 15, 2 ** 15, (256, 256)).astype(np.int16), acc_bits=16)]
for case in range(40):
    prec = precs[case % 4]
    r, c = (int(v) for v in rng.integers(1, 5, 2))
    m, k, n = (int(v) for v in rng.integers(1, 9, 3))
    cfg = ArrayConfig(r, c, prec)
    fm = FaultMap.random(cfg, float(rng.choice([0.0, 0.25, 0.5])), seed=case)
    lo, hi = -(1 << (prec.act_bits - 1)), 1 << (prec.act_bits - 1)
    x, w = rng.integers(lo, hi, (m, k)).astype(np.int8), rng.integers(lo, hi, (k, n)).astype(np.int8)
    fk, fn = cfg.folds(k, n)
    n_cycles = cfg.fold_cycles(m) * fk * fn
    flips = [(int(rng.integers(0, n_cycles)), int(rng.integers(0, r)), int(rng.integers(0, c)), s,
              int(rng.integers(0, prec.site_bits(s)))) for s in rng.choice(SITES, 12)]
    for mitigation in (None, "bypass"):
        want = naive_matmul(x, w, fm.masks, mitigation == "bypass", prec, flips)
        got = SystolicArray(cfg, fm, mitigation).matmul(x, w, "fast", flips=flips).out
        assert np.array_equal(got, want), (case, prec.name, mitigation)
print("ok")
"""


def test_delta_kernels_without_jit_read_only_inside_their_arrays():
    """NUMBA_DISABLE_JIT=1: the kernels run as Python, where an index outside an array raises."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", _NOJIT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
