"""The ``cycle`` engine's split of folds, rows and columns over workers changes no bit.

With fewer folds than workers, each fold's rows are split into bands that run on different
workers as a pipeline (each band a few cycles behind the one above it); with folds that do
not divide evenly among the workers, each fold is split into column parts (each part also
passing on the acts of the columns to its left). Both forced here on small arrays
(``min_part_rows=1`` with pipeline stages of 1 to 4 cycles, ``min_part_cols=1``), for 1, 2, 3
and 5 workers, with stuck-at faults, bypass and transient flips: results and cycle counts
are those of one worker. Numba runs a
``prange`` of more workers than threads one after another, so this holds whatever the
number of threads.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import ArrayConfig
from simulator.engines.cycle import run_cycle
from simulator.engines.cycle_layout import column_cuts
from simulator.flips import by_fold, check_flips
from simulator.masks import faulty_pes, masks_of

from ..strategies import FLOAT_PRECISIONS, PRECISIONS, fault_maps, flip_lists, float_operands, operands

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_split_over_workers_gives_the_same_bits(data):
    prec = data.draw(st.sampled_from(PRECISIONS + FLOAT_PRECISIONS))
    cfg = ArrayConfig(data.draw(st.integers(1, 7)), data.draw(st.integers(1, 9)), prec)
    fm = data.draw(fault_maps(cfg, max_faults=10))
    x, w = data.draw(float_operands(cfg, max_m=9, max_k=16, max_n=20) if prec in FLOAT_PRECISIONS
                     else operands(cfg, max_m=9, max_k=16, max_n=20))
    flips = data.draw(flip_lists(cfg, *x.shape, w.shape[1]))
    M = x.shape[0]
    fk, fn = cfg.folds(x.shape[1], w.shape[1])
    ev = check_flips(flips, cfg, fk * fn * cfg.fold_cycles(M))
    events = by_fold(ev, prec.widths(), cfg.fold_cycles(M), fk * fn)
    masks = masks_of(cfg, fm)
    xp, wp = prec.patterns(x), prec.patterns(w)
    for bypass in (np.zeros(cfg.shape, np.uint8), faulty_pes(masks).astype(np.uint8)):
        one = run_cycle(xp, wp, masks, bypass, prec.kernels(), 1, events=events)
        stage = data.draw(st.integers(1, 4))
        for n_workers in (2, 3, 5):
            for rows in (1, 100):  # rows split where a fold has a row per worker; columns only
                out, cycles = run_cycle(xp, wp, masks, bypass, prec.kernels(), n_workers, events=events,
                                        min_part_cols=1, min_part_rows=rows, stage=stage)
                np.testing.assert_array_equal(out, one[0], err_msg=f"{n_workers} workers, rows {rows}, {flips}")
                np.testing.assert_array_equal(cycles, one[1])


@pytest.mark.parametrize("C, folds, workers, parts", [(128, 1, 2, 2), (128, 3, 2, 2), (128, 8, 2, 1), (128, 1, 4, 4),
                                                      (16, 1, 2, 1), (128, 2, 2, 1)])
def test_column_cuts(C, folds, workers, parts):
    cuts = column_cuts(C, folds, workers)
    assert cuts[0] == 0 and cuts[-1] == C and len(cuts) == parts + 1
    widths = np.diff(cuts)
    assert (widths >= 16).all() and (np.diff(widths) <= 0).all()  # parts further right pass more acts on
