"""Resilience maps: measuring (resumable), E* and its properties, files, the heatmap."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scipy import stats as scipy_stats

from efat import Constraint, ResilienceError, ResilienceMap, resilience_map
from efat import measure as measure_module
from simulator import ArrayConfig
from training.baseline import pretrained
from training.data import load_dataset


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("digits", seed=0)
    model = pretrained("lenet5", data, seed=0)
    yield model, data


def test_resilience_map_resumes_after_interrupt(setup, tmp_path, monkeypatch):
    model, data = setup
    args = (model, data, ArrayConfig(16, 16), [0.05, 0.2], [0.25])
    full = resilience_map(*args, trials=2, out=tmp_path / "full.json", progress=False)
    calls = {"n": 0}
    real = measure_module.fat_retrain

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed in the middle of the third chip
        return real(*a, **k)

    monkeypatch.setattr(measure_module, "fat_retrain", flaky)
    with pytest.raises(KeyboardInterrupt):
        resilience_map(*args, trials=2, out=tmp_path / "part.json", progress=False)
    part = ResilienceMap.load(tmp_path / "part.json")
    assert np.isnan(part.accuracy).any() and not np.isnan(part.accuracy).all()
    monkeypatch.setattr(measure_module, "fat_retrain", real)
    resumed = resilience_map(*args, trials=2, out=tmp_path / "part.json", progress=False)
    assert resumed.complete
    assert json.dumps(resumed.to_json()) == json.dumps(full.to_json())
    with pytest.raises(ResilienceError, match="another grid"):
        resilience_map(model, data, ArrayConfig(16, 16), [0.05], [0.25], trials=2, out=tmp_path / "part.json")


@st.composite
def maps(draw):
    n_rates = draw(st.integers(1, 5))
    n_epochs = draw(st.integers(1, 5))
    trials = draw(st.integers(1, 8))
    rates = sorted(draw(st.sets(st.floats(0.001, 0.5), min_size=n_rates, max_size=n_rates)))
    epochs = [0.0] + sorted(draw(st.sets(st.floats(0.1, 10), min_size=n_epochs - 1, max_size=n_epochs - 1)))
    acc = draw(st.lists(st.floats(0, 1), min_size=n_rates * n_epochs * trials, max_size=n_rates * n_epochs * trials))
    return ResilienceMap(rates, epochs, np.reshape(acc, (n_rates, n_epochs, trials)), draw(st.floats(0.5, 1)),
                         {"array": [8, 8]})


@settings(max_examples=150)
@given(rmap=maps(), drop=st.floats(0, 0.3), q=st.floats(0.3, 0.95), conf=st.floats(0.3, 0.95),
       rate=st.floats(0, 1))
def test_required_epochs_properties(rmap, drop, q, conf, rate):
    c = Constraint(drop, q, conf)
    need = rmap.required_epochs_grid(c)
    assert (need[1:] >= need[:-1]).all()  # non-decreasing in the rate
    n = rmap.n_trials
    unresolved = rmap.unresolved(c)
    for i in range(len(rmap.fault_rates)):
        # by hand: k of n chips meet the drop; certified where the one-sided Clopper-Pearson
        # lower bound reaches q; E* the least certified amount, unless an easier rate needs more
        k = (rmap.accuracy[i] >= rmap.baseline - drop - 1e-12).sum(axis=1)
        lower = [0.0 if kk == 0 else scipy_stats.beta.ppf(1 - conf, kk, n[i] - kk + 1) for kk in k]
        ok = np.array(lower) >= q
        own = rmap.epochs[ok.argmax()] if ok.any() else np.inf
        assert need[i] == max([own] + [need[j] for j in range(i)])
        # unresolved: the least certified amount is the grid's smallest retraining amount
        assert unresolved[i] == (len(rmap.epochs) > 1 and own == rmap.epochs[1])
    got = rmap.required_epochs(rate, c)
    above = rmap.fault_rates >= rate - 1e-12
    assert got == (need[above.argmax()] if above.any() else np.inf)  # rounds up to the grid
    est, lo, hi = rmap.pass_probability(c)
    assert ((lo <= est + 1e-12) & (est <= hi + 1e-12)).all()


def test_resilience_map_validation_and_files(tmp_path):
    acc = np.full((2, 2, 1), 0.9)
    with pytest.raises(ResilienceError, match="start with 0"):
        ResilienceMap([0.1, 0.2], [1, 2], acc, 0.9)
    with pytest.raises(ResilienceError, match="strictly increasing"):
        ResilienceMap([0.2, 0.1], [0, 2], acc, 0.9)
    with pytest.raises(ResilienceError, match=r"shape \(2, 2, trials\)"):
        ResilienceMap([0.1, 0.2], [0, 2], np.zeros((2, 3, 1)), 0.9)
    rmap = ResilienceMap([0.1, 0.2], [0, 2], acc, 0.9, {"array": [8, 8]})
    with pytest.raises(ResilienceError, match="max_accuracy_drop must be a number in"):
        rmap.required_epochs(0.1, -0.5)
    with pytest.raises(ResilienceError, match=r"confidence must be a number in \(0, 1\); got 1"):
        rmap.required_epochs(0.1, Constraint(0.01, confidence=1))
    rmap.save(tmp_path / "m.json")
    assert ResilienceMap.load(tmp_path / "m.json").to_json() == rmap.to_json()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResilienceError, match="not valid JSON"):
        ResilienceMap.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "something"}')
    with pytest.raises(ResilienceError, match="not a resilience map"):
        ResilienceMap.load(tmp_path / "other.json")
    with pytest.raises(ResilienceError, match="no such file"):
        ResilienceMap.load(tmp_path / "missing.json")
    rmap.plot(tmp_path / "m.png", 0.01)
    assert (tmp_path / "m.png").stat().st_size > 5000


def test_heatmap_numbers_keep_their_side_of_the_limit():
    from efat.resilience_plot import format_drop

    assert format_drop(2.037, 2.0) == "2.04"  # not "2.0" beside a 2-point limit
    assert format_drop(1.96, 2.0) == "2.0"  # meets it, and "2.0" meets it too
    assert format_drop(2.0, 2.0) == "2.0" and format_drop(3.7, 2.0) == "3.7"
    assert format_drop(2.00004, 2.0) == "2.00004"


@settings(max_examples=300)
@given(value=st.floats(-5, 50), limit=st.floats(0, 20))
def test_heatmap_numbers_never_cross_the_limit(value, limit):
    from efat.resilience_plot import format_drop

    text = format_drop(value, limit)
    assert (float(text) <= limit + 1e-10) == (value <= limit + 1e-10)
    assert len(text.split(".")[-1]) >= 1


def test_heatmap_states_the_constraint(tmp_path, monkeypatch):
    import matplotlib.figure

    texts = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: (
        texts.extend(t.get_text() for ax in fig.axes for t in [*ax.texts, *(ax.get_legend().get_texts()
                                                                              if ax.get_legend() else [])]),
        real(fig, *a, **k)))
    acc = np.concatenate([np.full((2, 2, 20), 0.98), np.array([[[0.97], [0.98]], [[0.9], [0.96]]])], axis=2)
    rmap = ResilienceMap([0.1, 0.2], [0, 1], acc, 0.99, {"array": [8, 8]})
    c = Constraint(0.015, 0.8, 0.75)
    rmap.plot(tmp_path / "m.png", c)
    assert (tmp_path / "m.png").stat().st_size > 5000
    assert any(c.text() in t for t in texts), texts  # the constraint the boxes use, in words
    assert "1.0\n20/21" in texts  # mean drop (points) and the chips within it at (10%, 0 epochs)
