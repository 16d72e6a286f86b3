"""eFAT planning (efat/planner.py): invariants over random maps and populations, costs,
persistence, fingerprints and bad input."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from efat import EXACT_MAX_CHIPS, Constraint, Plan, PlanError, ResilienceMap, bitsets, grouping, plan, stats
from efat.costs import CostModel
from efat.grouping import Cost
from faults import Population
from simulator import ArrayConfig

# -- synthetic resilience maps and populations ---------------------------------------------


def smooth_map(shape=(32, 32), strength=2.0, tau=3.0, max_rate=0.3, epochs=(0, 0.5, 1, 2, 3, 4, 6, 8, 10, 12),
               step=0.01, chips=24):
    """accuracy = 0.98 - strength * f * exp(-e / tau) * (1 + 2% spread over the chips): E* ~
    tau * ln(strength * f / 0.01), sub-additive; 24 chips, enough to certify 90% at 90%."""
    rates = np.round(np.arange(0, max_rate + 1e-9, step), 6)
    e = np.asarray(epochs, float)
    spread = 1 + 0.02 * np.linspace(0, 1, chips)
    acc = 0.98 - strength * rates[:, None, None] * np.exp(-e[None, :, None] / tau) * spread
    return ResilienceMap(rates, e, np.clip(acc, 0, 1), 0.98, {"array": list(shape)})


@st.composite
def resilience_maps(draw, shape):
    """Random grids (always reaching ``top``); accuracy falls with the rate and recovers with
    epochs, with per-cell noise so E* is only monotone after the map's own correction."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    top = draw(st.sampled_from([0.08, 0.15, 0.3, 0.6]))
    rates = np.unique(np.append(np.round(rng.uniform(0, top, draw(st.integers(0, 8))), 4), top))
    if draw(st.booleans()):
        rates = np.unique(np.append(rates, 0.0))
    epochs = np.concatenate([[0.0], np.cumsum(rng.choice([0.1, 0.25, 0.5, 1.0, 2.0], draw(st.integers(1, 7))))])
    trials = draw(st.integers(1, 12))
    strength, tau = draw(st.floats(0.05, 2)), draw(st.floats(0.5, 5))
    drop = strength * rates[:, None, None] * np.exp(-epochs[None, :, None] / tau)
    acc = 0.97 - drop * rng.uniform(1, 1.3, (rates.size, epochs.size, trials))
    return ResilienceMap(rates, epochs, np.clip(acc, 0, 1), 0.97, {"array": list(shape)})


DROPS = st.integers(0, 9).flatmap(lambda i: st.just(0.0) if i == 0 else st.floats(0.002, 0.1))  # 0 now and then
#: Constraints small maps can certify: a pass target and confidence of 0.5-0.8 need 1-8 chips.
CONSTRAINTS = st.builds(Constraint, DROPS, st.floats(0.5, 0.8), st.floats(0.5, 0.8))


@st.composite
def populations(draw, shape):
    cfg = ArrayConfig(*shape)
    rates = draw(st.sampled_from(["uniform:0.0,0.1", "uniform:0.01,0.05", "0.03", "negbin:0.03,2", "lognormal:0.02,0.8"]))
    return Population.generate(cfg, draw(st.integers(1, 25)), rates=rates, seed=draw(st.integers(0, 1000)),
                               spatial=draw(st.sampled_from(["uniform", "clustered"])), sites=("weight",))


def faulty_union(pop, ids):
    return np.logical_or.reduce([pop[i].fault_map.faulty for i in ids])


def check_invariants(p: Plan, pop, rmap, c: Constraint):
    n_pes = pop.cfg.n_pes
    assert [ch.id for ch in p.chips] == list(pop.ids) and p.constraint == c
    expected = rmap.required_epochs(pop.rates, c)
    for ch, e in zip(p.chips, np.atleast_1d(expected)):
        assert ch.epochs == e
        assert ch.status == ("infeasible" if math.isinf(e) else "no_retraining" if e == 0 else "retrain")
    members = [m for g in p.groups for m in g.members]
    assert sorted(members) == sorted(ch.id for ch in p.chips if ch.status == "retrain")  # each exactly once
    by_id = {ch.id: ch for ch in p.chips}
    counts, n = rmap.pass_counts(c), rmap.n_trials
    for k, g in enumerate(p.groups):
        assert g.index == k and all(by_id[m].group == k for m in g.members)
        fused = faulty_union(pop, g.members)
        assert sorted(g.fused_pes) == [tuple(map(int, rc)) for rc in zip(*np.nonzero(fused))]
        assert g.fused_rate == fused.sum() / n_pes
        assert math.isfinite(g.epochs) and g.epochs == rmap.required_epochs(g.fused_rate, c)
        assert g.epochs >= max(by_id[m].epochs for m in g.members)
        # never planned below the pass target: the one-sided bound at the confidence reaches it
        row, col = rmap.rate_index(g.fused_rate), int(np.searchsorted(rmap.epochs, g.epochs))
        assert stats.lower_bound(counts[row, col], n[row], c.confidence) >= c.pass_target
        assert g.pass_probability[1] <= g.pass_probability[0] <= g.pass_probability[2]
    costs = p.costs
    assert costs.reduce.epochs <= costs.fixed.epochs + 1e-9  # on paper (eFAT may plan more epochs than
    # Reduce where that lowers its expected cost: members alone would often fail at their low amounts)
    assert costs.efat.expected <= costs.reduce.expected + 1e-9 <= costs.fixed.expected + 2e-9
    assert costs.efat.runs <= costs.reduce.runs <= costs.fixed.runs
    assert costs.reduce.epochs == pytest.approx(sum(ch.epochs for ch in p.chips if ch.status == "retrain"))
    assert costs.efat.epochs == pytest.approx(sum(g.epochs for g in p.groups))
    assert costs.efat.expected >= costs.efat.epochs - 1e-9  # escalations only ever add


def plan_or_impossible(pop, rmap, drop, **kw):
    """The plan, or None after checking that PlanError is right (no chip can meet the drop)."""
    try:
        return plan(pop, rmap, drop, **kw)
    except PlanError as e:
        assert "no chip can meet" in str(e)
        assert np.isinf(rmap.required_epochs(pop.rates, drop)).all()
        return None


def run_counted(prop, max_examples):
    """Run the hypothesis property ``prop(counts, ...)`` on ``max_examples`` plannable cases.

    Examples where no chip can meet the constraint are ``assume``d away (hypothesis
    counts only the others) and counted here: at least a third of what the strategies
    draw must be plannable, so the properties are never tested on a trickle of cases.
    """
    counts = Counter()
    cases = st.tuples(st.integers(8, 16), st.integers(8, 16)).flatmap(
        lambda shape: st.tuples(populations(shape), resilience_maps(shape)))
    settings(max_examples=max_examples)(given(case=cases, c=CONSTRAINTS, strategy=st.sampled_from(["reward", "none"]))(
        lambda case, c, strategy: prop(counts, *case, c, strategy)))()
    assert counts["planned"] >= max_examples and counts["planned"] >= counts["impossible"] / 2, counts


def planned(counts, pop, rmap, drop, **kw):
    p = plan_or_impossible(pop, rmap, drop, **kw)
    counts["impossible" if p is None else "planned"] += 1
    event("planned" if p is not None else "no chip can meet the constraint")
    assume(p is not None)
    return p


# -- properties ---------------------------------------------------------------------------------


def test_plan_invariants():
    def prop(counts, pop, rmap, drop, strategy):
        p = planned(counts, pop, rmap, drop, strategy=strategy)
        check_invariants(p, pop, rmap, drop)
        again = plan(pop, rmap, drop, strategy=strategy)
        assert again == p and json.dumps(again.to_json()) == json.dumps(p.to_json())
        if strategy == "none":
            assert all(len(g.members) == 1 for g in p.groups)
            assert p.costs.efat == p.costs.reduce

    run_counted(prop, 120)


def test_reward_leaves_no_positive_reward():
    def prop(counts, pop, rmap, drop, strategy):
        p = planned(counts, pop, rmap, drop)
        cost = Cost(rmap.fault_rates, rmap.required_epochs_grid(drop), rmap.epochs, pop.cfg.n_pes,
                    CostModel(rmap, drop))
        for a in p.groups:
            for b in p.groups[a.index + 1:]:
                fused = cost(faulty_union(pop, a.members + b.members).sum(), len(a.members) + len(b.members))
                assert not a.expected_epochs + b.expected_epochs - fused > 1e-9

    run_counted(prop, 60)


def test_reward_is_never_worse_than_pairs_from_single_chips():
    """Bins come in only where they are cheaper: the plan costs at most what merging pairs
    from one group per chip costs."""
    def prop(counts, pop, rmap, drop, strategy):
        p = planned(counts, pop, rmap, drop)
        cost = Cost(rmap.fault_rates, rmap.required_epochs_grid(drop), rmap.epochs, pop.cfg.n_pes,
                    CostModel(rmap, drop))
        todo = np.array([i for i, ch in enumerate(p.chips) if ch.status == "retrain"], np.int64)
        bits = bitsets.pack(*bitsets.faulty_pe_lists(pop), todo, pop.cfg.n_pes)
        own = cost(bitsets.popcount(bits), 1)
        pairs = grouping._merge(bits, own, cost, [[i] for i in range(len(todo))]) if len(todo) else []
        total = math.fsum(float(cost(bitsets.popcount(np.bitwise_or.reduce(bits[g], axis=0)), len(g))) for g in pairs)
        assert math.fsum(g.expected_epochs for g in p.groups) <= total + 1e-9

    run_counted(prop, 40)


def test_grouping_floor_bounds_every_grouping():
    """The floor is rho x the chips' faulty PEs, rho from the grid directly (each step's
    amount over its largest count); Reduce never costs less, nor does any plan once the
    faulty PEs its groups' members share are credited."""
    def prop(counts, pop, rmap, drop, strategy):
        p = planned(counts, pop, rmap, drop, strategy=strategy)
        retrain = [c for c in p.chips if c.status == "retrain"]
        n = sum(round(c.rate * p.n_pes) for c in retrain)
        grid = np.asarray(p.required_epochs_grid)
        caps = np.floor(np.asarray(p.fault_rates) * p.n_pes + 1e-6)
        ok = np.isfinite(grid) & (grid > 0) & (caps > 0)
        rho = float(np.min(grid[ok] / caps[ok])) if n else 0.0
        floor = p.grouping_floor()
        assert floor == pytest.approx(rho * n, rel=1e-12, abs=1e-12)
        shared = n - sum(len(g.fused_pes) for g in p.groups)
        assert p.costs.reduce.epochs >= floor - 1e-9
        assert p.costs.efat.epochs >= floor - rho * shared - 1e-9

    run_counted(prop, 40)


def test_bins_find_the_fusions_pairs_miss():
    """Two chips fused cost as much as both, three save a third: merging pairs alone never
    starts, bins of three do (6 chips of 20 disjoint faulty PEs -> 2 groups of 3)."""
    bits = np.zeros((6, 2), np.uint64)  # 120 PEs
    for i in range(6):
        for pe in range(20 * i, 20 * i + 20):
            bits[i, pe // 64] |= np.uint64(1) << np.uint64(pe % 64)

    def cost(n, members=1):
        n = np.asarray(n)
        return np.where(n <= 30, 3.0, np.where(n <= 60, 6.0, np.inf)) + 0 * np.asarray(members)

    own = cost(np.full(6, 20))
    assert grouping._merge(bits, own, cost, [[i] for i in range(6)]) == [[i] for i in range(6)]
    assert sorted(grouping.GROUPERS["reward"](bits, own, cost)) == [[0, 1, 2], [3, 4, 5]]


def test_exact_is_valid_and_never_worse_than_reward():
    def prop(counts, pop, rmap, drop, strategy):
        pop = pop[: min(len(pop), 8)]
        reward = planned(counts, pop, rmap, drop)
        exact = plan(pop, rmap, drop, strategy="exact")
        check_invariants(exact, pop, rmap, drop)
        assert exact.costs.efat.expected <= reward.costs.efat.expected + 1e-9

    run_counted(prop, 60)


# -- costs and strategies on realistic cases -----------------------------------------------------


def test_realistic_population_fusion_pays_off():
    pop = Population.generate(ArrayConfig(32, 32), 50, rates="uniform:0.01,0.05", seed=3)
    rmap = smooth_map()
    p = plan(pop, rmap, 0.01)
    check_invariants(p, pop, rmap, Constraint(0.01))
    assert p.status_counts()["retrain"] == 50
    assert p.costs.efat.epochs < p.costs.reduce.epochs < p.costs.fixed.epochs
    assert p.costs.efat.expected < p.costs.reduce.expected < p.costs.fixed.expected
    assert p.costs.efat.runs < 50
    assert plan(pop, rmap, 0.01, strategy="none").costs.efat == p.costs.reduce


def test_exact_beats_reward_on_some_small_population():
    rmap = smooth_map((16, 16), epochs=(0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8), tau=2.0, step=0.0025,
                      max_rate=0.1)
    better = 0
    for seed in range(10):
        pop = Population.generate(ArrayConfig(16, 16), 10, rates="uniform:0.01,0.06", seed=seed)
        reward, exact = plan(pop, rmap, 0.01), plan(pop, rmap, 0.01, strategy="exact")
        assert exact.costs.efat.expected <= reward.costs.efat.expected + 1e-9
        better += exact.costs.efat.expected < reward.costs.efat.expected - 1e-9
    assert better >= 1


def test_exact_refuses_large_populations():
    pop = Population.generate(ArrayConfig(16, 16), EXACT_MAX_CHIPS + 1, rates="0.05", seed=0)
    with pytest.raises(PlanError, match="at most 12 chips.*'reward'"):
        plan(pop, smooth_map((16, 16)), 0.01, strategy="exact")


def test_fixed_policy_amounts():
    pop = Population.generate(ArrayConfig(16, 16), 12, rates="uniform:0.0,0.06", seed=1)
    rmap = smooth_map((16, 16))
    p = plan(pop, rmap, 0.01)
    finite = [c.epochs for c in p.chips if math.isfinite(c.epochs)]
    assert p.costs.fixed_amount == max(finite)
    assert p.costs.fixed.runs == len(finite)  # chips needing none are retrained too
    assert p.costs.fixed.epochs == max(finite) * len(finite)
    assert plan(pop, rmap, 0.01, fixed_epochs=12).costs.fixed.epochs == 12 * len(finite)
    with pytest.raises(PlanError, match="fixed_epochs must be >="):
        plan(pop, rmap, 0.01, fixed_epochs=0.5)
    with pytest.raises(PlanError, match=r"fixed_epochs must be None or an amount of the map's grid .*got 20"):
        plan(pop, rmap, 0.01, fixed_epochs=20)


def test_infeasible_and_bypass_only_chips_are_not_grouped():
    pop = Population.generate(ArrayConfig(10, 10), 6, rates=[0.0, 0.04, 0.05, 0.1, 0.35, 0.9], seed=0)
    p = plan(pop, smooth_map((10, 10)), 0.01)
    assert [c.status for c in p.chips] == ["no_retraining", "retrain", "retrain", "retrain",
                                           "infeasible", "infeasible"]
    assert all(c.group is None for c in p.chips if c.status != "retrain")
    assert p.chips[4].epochs == math.inf


def test_popcount_fallback_matches(monkeypatch):
    words = np.random.default_rng(0).integers(0, 2**63, size=(5, 7), dtype=np.uint64)
    fast = bitsets.popcount(words)
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert np.array_equal(bitsets.popcount(words), fast)


# -- the Plan object --------------------------------------------------------------------------------


RATES_20 = [0.0, 0.0, *np.linspace(0.01, 0.4, 18).tolist()]


@pytest.fixture(scope="module")
def case():
    pop = Population.generate(ArrayConfig(16, 16), 20, rates=RATES_20, seed=5)
    return pop, smooth_map((16, 16)), plan(pop, smooth_map((16, 16)), 0.01)


def test_save_load_round_trip(case, tmp_path):
    _, _, p = case
    assert p.status_counts()["infeasible"] > 0 and p.status_counts()["no_retraining"] > 0
    path = tmp_path / "plan.json"
    p.save(path)
    loaded = Plan.load(path)
    assert loaded == p and loaded.to_json() == p.to_json()
    assert json.load(open(path))["format"] == "efat.Plan"


@pytest.mark.parametrize("content, match", [
    (None, "no such file"),
    ("\x00\x01 not json", "not valid JSON"),
    ('{"format": "efat.ResilienceMap", "version": 1}', "not an eFAT plan"),
    ("[1, 2, 3]", "not an eFAT plan"),
    ("TRUNCATE", "not valid JSON"),
    ("VERSION", "version 99"),
    ("MISSING", "malformed plan"),
    ("BADGROUP", "do not match"),
])
def test_bad_plan_files(case, tmp_path, content, match):
    _, _, p = case
    path = tmp_path / "bad.json"
    obj = p.to_json()
    if content == "TRUNCATE":
        text = json.dumps(obj)
        content = text[: len(text) // 2]
    elif content in ("VERSION", "MISSING", "BADGROUP"):
        obj = json.loads(json.dumps(obj))
        if content == "VERSION":
            obj["version"] = 99
        elif content == "MISSING":
            del obj["costs"]
        else:
            obj["chips"][next(i for i, c in enumerate(obj["chips"]) if c["group"] is not None)]["group"] = 10_000
        content = json.dumps(obj)
    if content is not None:
        path.write_text(content)
    with pytest.raises(PlanError, match=match) as err:
        Plan.load(path)
    assert str(path) in str(err.value)


def test_population_fingerprint_check(case):
    pop, _, p = case
    p.check_population(pop)
    p.check_population(pop[:])  # an equal copy passes
    other = Population.generate(pop.cfg, len(pop), rates=RATES_20, seed=6)
    with pytest.raises(PlanError, match="fault maps differ"):
        p.check_population(other)
    renamed = Population.generate(pop.cfg, len(pop), rates=RATES_20, seed=5, id_prefix="x")
    with pytest.raises(PlanError, match="chip ids differ"):
        p.check_population(renamed)
    with pytest.raises(PlanError, match="20 chips; the population has 19"):
        p.check_population(pop[:19])
    with pytest.raises(PlanError, match="16x16 array; the population is 8x8"):
        p.check_population(Population.generate(ArrayConfig(8, 8), 20, seed=5))


def test_fused_map(case):
    pop, _, p = case
    for g in p.groups:
        fm = p.fused_map(g.index, pop)
        assert np.array_equal(fm.faulty, faulty_union(pop, g.members))
        assert fm.rate == g.fused_rate
    with pytest.raises(PlanError, match="group_index"):
        p.fused_map(len(p.groups), pop)


def test_summary_text(case):
    _, _, p = case
    text = p.summary_text()
    for word in ("retrain", "no_retraining", "infeasible", "groups", "fixed", "reduce", "efat", "of Reduce"):
        assert word in text


# -- bad input --------------------------------------------------------------------------------------


class _Empty:
    cfg = ArrayConfig(8, 8)
    ids = ()
    rates = np.zeros(0)

    def __len__(self):
        return 0


@pytest.fixture(scope="module")
def small():
    return Population.generate(ArrayConfig(16, 16), 5, rates="uniform:0.01,0.05", seed=0), smooth_map((16, 16))


def test_empty_population(small):
    with pytest.raises(PlanError, match="population is empty"):
        plan(_Empty(), smooth_map((8, 8)), 0.01)


def test_array_mismatch(small):
    pop, _ = small
    with pytest.raises(PlanError, match="measured on a 32x32 array; the population is 16x16"):
        plan(pop, smooth_map((32, 32)), 0.01)


@pytest.mark.parametrize("drop", [-0.01, 1.5, math.nan, True, "0.01", None])
def test_drop_out_of_range(small, drop):
    pop, rmap = small
    with pytest.raises(PlanError, match=r"max_accuracy_drop must be a number in \[0, 1\]"):
        plan(pop, rmap, drop)


def test_impossible_constraint_names_largest_feasible_rate(small):
    pop, rmap = small
    # Every chip is above the grid (0 .. 0.1), where nothing is measured.
    with pytest.raises(PlanError, match="largest feasible rate on the map is 0.1,"):
        plan(Population.generate(pop.cfg, 3, rates="0.2", seed=0), smooth_map((16, 16), max_rate=0.1), 0.02)
    zero = ResilienceMap([0.0, 0.1], [0, 1], np.full((2, 2, 1), 0.5), 0.98, {"array": [16, 16]})
    with pytest.raises(PlanError, match="no fault rate on the map meets it"):
        plan(pop, zero, 0.01)
    one_chip = ResilienceMap([0.0, 0.1], [0, 1], np.full((2, 2, 1), 0.98), 0.98, {"array": [16, 16]})
    with pytest.raises(PlanError, match="the map has 1 chips at some rate; certifying 90% at 90% confidence "
                                        "takes at least 22"):
        plan(pop, one_chip, 0.01)


def test_unknown_strategy(small):
    pop, rmap = small
    with pytest.raises(PlanError, match=r"strategy must be one of \['reward', 'none', 'exact'\]; got 'best'"):
        plan(pop, rmap, 0.01, strategy="best")


def test_incomplete_map(small):
    pop, rmap = small
    acc = rmap.accuracy.copy()
    acc[3, 2, 0] = np.nan
    with pytest.raises(PlanError, match="incomplete"):
        plan(pop, ResilienceMap(rmap.fault_rates, rmap.epochs, acc, rmap.baseline, rmap.meta), 0.01)


@pytest.mark.parametrize("kwargs, match", [
    (dict(pass_target=0), r"pass_target must be a number in \(0, 1\); got 0"),
    (dict(pass_target=1.0), "pass_target"),
    (dict(confidence=1.5), r"confidence must be a number in \(0, 1\); got 1.5"),
    (dict(confidence="x"), "confidence"),
])
def test_bad_pass_target_or_confidence(small, kwargs, match):
    pop, rmap = small
    with pytest.raises(PlanError, match=match):
        plan(pop, rmap, 0.01, **kwargs)


def test_constraint_is_recorded(small):
    pop, rmap = small
    p = plan(pop, rmap, 0.01, pass_target=0.8, confidence=0.75)
    c = Constraint(0.01, 0.8, 0.75)
    assert p.constraint == c and p.max_accuracy_drop == 0.01
    assert [ch.epochs for ch in p.chips] == list(rmap.required_epochs(pop.rates, c))
    with pytest.raises(PlanError, match="in the Constraint, not beside it"):
        plan(pop, rmap, c, confidence=0.5)
