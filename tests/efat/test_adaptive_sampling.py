"""The adaptive sampling of efat.resilience_map, without any training.

``efat.measure.measure_chip`` (the per-chip task the sampling loop hands to the executor)
is replaced by a synthetic chip of KNOWN pass probability: chip ``trial`` at ``rate``
draws one uniform ``u`` from a generator seeded by ``(rate, trial)`` and meets the
constraint after amount ``j`` iff ``u < P[rate][j]`` (accuracy ``BASELINE``, else
``BASELINE - 0.1``). The same chip gives the same result whenever it is asked; ``P``
increases with the amount (a chip that passes keeps passing: monotone paths) and
decreases with the rate. ``efat.measure.chip_accuracy`` returns the fixed baseline, so
no model is evaluated; the model and data are stand-ins for the map's metadata.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from efat import Constraint, ResilienceMap, resilience_map
from efat import measure as measure_module
from efat import stats
from efat.executors import Executor
from simulator import ArrayConfig

BASELINE = 0.97
CONSTRAINT = Constraint(0.05, 0.8, 0.8)  # certifies from 8 chips (all passing)
FIRST = CONSTRAINT.min_trials  # first-round size (resilience_map's default)
BATCH = max(2, FIRST // 4)  # chips per unsettled rate and round (resilience_map's default)
MAX_TRIALS = 24
AMOUNTS = [0.5, 1.0]  # the map's grid is [0, 0.5, 1]
CFG = ArrayConfig(8, 8)

#: Pass probabilities near the target 0.8 in places: some rates settle at once, some
#: after more rounds, some run into the budget.
NEAR = {
    0.01: [0.95, 0.99, 0.999],
    0.02: [0.75, 0.9, 0.99],
    0.05: [0.5, 0.85, 0.97],
    0.10: [0.2, 0.6, 0.8],
}
#: Far from the target everywhere: E* is known, [0, 0.5, 1, inf].
FAR = {
    0.01: [0.999, 0.999, 0.999],
    0.02: [0.3, 0.999, 0.999],
    0.05: [0.1, 0.3, 0.999],
    0.10: [0.05, 0.1, 0.3],
}


class Data:
    """What resilience_map reads of a dataset: a name and a fingerprint."""

    name = "synthetic"

    def fingerprint(self) -> str:
        return "synthetic-data-v1"


class Chips:
    """The synthetic measure_chip; ``calls`` records the tasks asked for, in order."""

    def __init__(self, truth: dict, seed: int = 0, interrupt_at: int | None = None):
        self.truth, self.seed, self.interrupt_at = truth, seed, interrupt_at
        self.calls: list[tuple[float, int]] = []

    def u(self, rate: float, trial: int) -> float:
        return float(np.random.default_rng([self.seed, round(rate * 1_000_000), trial]).random())

    def __call__(self, shared, task):
        rate, trial = task
        self.calls.append((rate, trial))
        if len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt  # killed while measuring this chip
        p = np.asarray(self.truth[rate])
        assert shared["epochs"] == [0.0] + AMOUNTS and len(p) == len(shared["epochs"])
        return np.where(self.u(rate, trial) < p, BASELINE, BASELINE - 0.1)


def fake_chip_accuracy(model, data, cfg, fm):
    assert fm is None, "only the fault-free baseline should be evaluated outside measure_chip"
    assert cfg == CFG and isinstance(data, Data)
    return BASELINE


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


@pytest.fixture
def measure(monkeypatch, model):
    """``measure(truth, **kw) -> (map, chips)`` with the synthetic chips patched in."""
    monkeypatch.setattr(measure_module, "chip_accuracy", fake_chip_accuracy)

    def run(truth, seed=0, interrupt_at=None, **kw):
        chips = Chips(truth, seed, interrupt_at)
        monkeypatch.setattr(measure_module, "measure_chip", chips)
        kw = {"constraint": CONSTRAINT, "max_trials": MAX_TRIALS, "progress": False, **kw}
        rmap = resilience_map(model, Data(), CFG, list(truth), AMOUNTS, **kw)
        return rmap, chips

    return run


def truncated(rmap: ResilienceMap, n) -> ResilienceMap:
    """The map restricted to the first ``n[i]`` chips of rate ``i`` (the rest NaN)."""
    keep = np.arange(rmap.trials)[None, :] < np.asarray(n)[:, None]
    acc = np.where(keep[:, None, :], rmap.accuracy, np.nan)
    return ResilienceMap(rmap.fault_rates, rmap.epochs, acc, rmap.baseline, rmap.meta)


def true_e_star(truth: dict, target: float) -> np.ndarray:
    """The least amount whose true pass probability reaches ``target`` (inf: none)."""
    epochs = np.array([0.0] + AMOUNTS)
    return np.array([epochs[np.argmax(np.array(p) >= target)] if max(p) >= target else np.inf
                     for p in truth.values()])


# -- the stopping rule ------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_rate_ends_settled_or_at_the_budget(measure, seed):
    rmap, chips = measure(NEAR, seed=seed)
    n = rmap.n_trials
    settled = rmap.settled(CONSTRAINT)
    assert ((n == MAX_TRIALS) | settled).all(), f"n={n}, settled={settled}"
    # settled, by hand from the decisions: below the first certified amount, all certified to fail
    d = rmap.decisions(CONSTRAINT)
    for i in np.nonzero(n < MAX_TRIALS)[0]:
        first = int(np.argmax(d[i] == stats.PASS)) if (d[i] == stats.PASS).any() else d.shape[1]
        assert (d[i, :first] == stats.FAIL).all(), f"rate {i} stopped at {n[i]} chips with decisions {d[i]}"
    assert ((n >= FIRST) & (n <= MAX_TRIALS)).all()
    # chips 0..n-1 of each rate, each measured exactly once, nothing else
    assert rmap.complete and rmap.trials == n.max()
    for i, rate in enumerate(NEAR):
        assert rmap.measured[i, :n[i]].all() and not rmap.measured[i, n[i]:].any()
        assert sorted(t for r, t in chips.calls if r == rate) == list(range(n[i]))
    # the synthetic accuracies went in unchanged: k/n per cell is the truth's empirical rate
    u = np.array([[chips.u(r, t) for t in range(rmap.trials)] for r in NEAR])
    p = np.array(list(NEAR.values()))
    expected = np.where(u[:, None, :] < p[:, :, None], BASELINE, BASELINE - 0.1)
    np.testing.assert_array_equal(np.where(rmap.measured[:, None, :], rmap.accuracy, -1.0),
                                  np.where(rmap.measured[:, None, :], expected, -1.0))


def test_the_near_case_exercises_every_kind_of_stop(measure):
    """The scenario of the stopping tests is not vacuous: with seed 0 one rate settles
    after the first round, one after more rounds, and one runs into the budget unsettled."""
    rmap, _ = measure(NEAR, seed=0)
    n, settled = rmap.n_trials, rmap.settled(CONSTRAINT)
    assert (settled & (n == FIRST)).any()
    assert (settled & (n > FIRST) & (n < MAX_TRIALS)).any()
    assert (~settled & (n == MAX_TRIALS)).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_stops_where_the_decision_is_certain(measure, seed):
    rmap, _ = measure(NEAR, seed=seed)
    n = rmap.n_trials
    for i in range(len(NEAR)):
        # every round before the last one left the rate unsettled: no chip more than needed ...
        for m in range(FIRST, n[i], BATCH):
            prefix = truncated(rmap, np.where(np.arange(len(NEAR)) == i, m, n))
            assert not prefix.settled(CONSTRAINT)[i], f"rate {i} was settled with {m} chips but got {n[i]}"
        # ... and rounds add BATCH chips: n is the first round plus whole batches (or the budget)
        assert n[i] == MAX_TRIALS or (n[i] - FIRST) % BATCH == 0
    first_round = truncated(rmap, np.full(len(NEAR), FIRST)).settled(CONSTRAINT)
    assert (n[first_round] == FIRST).all()  # settled after the first round: no more chips
    settled = rmap.settled(CONSTRAINT)
    more = settled & (n > FIRST)
    prev = truncated(rmap, np.where(more, n - BATCH, n)).settled(CONSTRAINT)
    assert not prev[more].any()


def test_far_from_the_target_it_certifies_and_finds_the_true_e_star(measure):
    rmap, _ = measure(FAR)
    d = rmap.decisions(CONSTRAINT)
    p = np.array(list(FAR.values()))
    assert (d[p >= 0.999] == stats.PASS).all()
    assert (d[p <= 0.3] == stats.FAIL).all()
    assert rmap.settled(CONSTRAINT).all()
    assert (rmap.n_trials < MAX_TRIALS).all()
    np.testing.assert_array_equal(rmap.required_epochs_grid(CONSTRAINT), true_e_star(FAR, CONSTRAINT.pass_target))
    np.testing.assert_array_equal(true_e_star(FAR, 0.8), [0.0, 0.5, 1.0, np.inf])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_certified_error_where_the_truth_is_far_from_the_target(measure, seed):
    """Near the target a decision may go either way (p = 0.75 certified to pass with 8 of
    8 chips happens, 10% of the time) or stay undecided, but far from it it may not."""
    rmap, _ = measure(NEAR, seed=seed)
    need = rmap.required_epochs_grid(CONSTRAINT)
    d = rmap.decisions(CONSTRAINT)
    p = np.array(list(NEAR.values()))
    assert (d[p <= 0.5] != stats.PASS).all()
    assert (d[p >= 0.999] != stats.FAIL).all()
    assert need[0] <= 0.5  # p = 0.99 at 0.5 for the lowest rate: certified by its 8 chips or more
    assert (need[2:] >= 0.5).all()  # true p <= 0.5 at amount 0 there


# -- the same map whatever happens ------------------------------------------------------

# (seed, call that is interrupted): in the first round (32 chips), in the third; and with
# seed 5 at call 38, the last chip of the second round, which leaves the rate 0.1 with 9
# chips: 9 happen to settle it, but the rule decides on the 8 of the first round and asks
# for 10 (a resume that decided on every chip the file holds would stop at 9).
@pytest.mark.parametrize(("seed", "interrupt_at"), [(0, 30), (0, 41), (5, 38)])
def test_an_interrupted_run_resumes_to_the_same_map(measure, tmp_path, seed, interrupt_at):
    full, full_chips = measure(NEAR, seed=seed, out=tmp_path / "full.json")
    assert len(full_chips.calls) > interrupt_at
    out = tmp_path / "part.json"
    with pytest.raises(KeyboardInterrupt):
        measure(NEAR, seed=seed, out=out, interrupt_at=interrupt_at)
    part = ResilienceMap.load(out)
    assert part.n_trials.sum() == interrupt_at - 1  # saved after every chip
    resumed, chips = measure(NEAR, seed=seed, out=out)
    np.testing.assert_array_equal(resumed.accuracy, full.accuracy)  # NaN where NaN
    np.testing.assert_array_equal(resumed.n_trials, full.n_trials)
    assert json.dumps(resumed.to_json()) == json.dumps(full.to_json())
    assert json.dumps(ResilienceMap.load(out).to_json()) == json.dumps(full.to_json())
    # only the missing chips ran again
    assert len(chips.calls) == len(full_chips.calls) - (interrupt_at - 1)
    done = {(r, t) for i, r in enumerate(NEAR) for t in np.nonzero(part.measured[i])[0]}
    assert not done & set(chips.calls)


class Reordered(Executor):
    """Runs the tasks in reversed (or a seeded shuffled) order, reporting each result
    under its own index, as a parallel executor whose results arrive out of order."""

    n_workers = 1

    def __init__(self, shuffle_seed: int | None = None):
        self.shuffle_seed = shuffle_seed
        self.name = "reversed" if shuffle_seed is None else f"shuffled ({shuffle_seed})"
        self.orders: list[list[int]] = []

    def _run(self, fn, tasks, shared, arrived):
        order = list(range(len(tasks)))[::-1]
        if self.shuffle_seed is not None:
            order = list(np.random.default_rng(self.shuffle_seed + len(self.orders)).permutation(len(tasks)))
        self.orders.append(order)
        for i in order:
            arrived(int(i), fn(shared, tasks[i]))


@pytest.mark.parametrize("shuffle_seed", [None, 5])
def test_the_same_map_whatever_order_results_arrive_in(measure, tmp_path, shuffle_seed):
    serial, _ = measure(NEAR)
    ex = Reordered(shuffle_seed)
    other, chips = measure(NEAR, executor=ex, out=tmp_path / "map.json")
    assert len(ex.orders) > 1 and ex.orders[0] != sorted(ex.orders[0])  # several rounds, out of order
    assert chips.calls[0] != (list(NEAR)[0], 0)
    np.testing.assert_array_equal(other.accuracy, serial.accuracy)
    np.testing.assert_array_equal(other.n_trials, serial.n_trials)
    assert json.dumps(other.to_json()) == json.dumps(serial.to_json())
