"""Is the planner's expected cost calibrated? (efat/planner.py, efat/costs.py)

A synthetic chip model of KNOWN behaviour stands in for retraining. At grid rate ``f``
a chip passes after amount ``e`` (index ``j`` of the epoch grid) iff ``u < P[f, j]``,
where ``u ~ U(0, 1)`` is the chip's own latent draw and ``P`` increases along the grid
of amounts, so a chip's pass/fail path over amounts is monotone. A resilience map
samples ``n`` chips per grid rate from the model; a population from
``faults.Population.generate`` is planned on it with ``efat.plan``.

Executions of the plan are then simulated exactly as ``efat/execution.py`` runs them
and ``efat/costs.py`` models them: every unit (a group: its amount, at the map row its
fused rate rounds up to; a "no_retraining" chip: amount 0 at its own row) draws a FRESH
chip from the model at its row and costs the first grid amount >= its planned amount at
which that chip passes, or ``a_max * (1 + members)`` if it never does. The same model
also gives the true expected cost and the map's sampling error exactly (the cost of a
unit is piecewise constant in ``u``, with breaks at the row's pass probabilities).

What holds, and is asserted: the simulator agrees with the exact expectation; the
planner's expected cost is close to the simulated mean (within the map's own sampling
error); the cost formula is unbiased on chips that chose nothing (an independent map);
no group is planned below the pass target, by the map or (mostly) in truth; the policies
are ordered; and with chips that always pass at the certified amounts the expected cost
is the on-paper cost. What does not hold is pinned by strict ``xfail`` tests (a fix
turns them into failures, to be unmarked): the expected cost is biased low, and the
reported interval covers the simulated mean far less often than its nominal confidence
(optimistic by selection: the amounts and groups are chosen on the very chips that then
estimate their cost; too narrow for rare costly failures; and collapsed onto the
on-paper cost when the map saw no failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pytest
from scipy import stats as st
from scipy.special import expit

from efat import Constraint, PlanError, ResilienceMap, plan, stats
from efat.costs import CostModel
from faults import Population
from simulator import ArrayConfig

EPOCHS = np.array([0, 0.5, 1, 2, 3, 4, 6, 8.0])
A_MAX = float(EPOCHS[-1])
RATES = np.round(np.arange(0, 0.1 + 1e-9, 0.01), 6)  # 11 grid rates, 0 .. 10%
SHAPE = (16, 16)  # 256 PEs: chips' rates are k / 256
BASELINE = 0.95
DROP = 0.05  # a passing chip scores BASELINE, a failing one BASELINE - 0.1
N_EXECUTIONS = 2000
POLICIES = ("efat", "reduce", "fixed")


# -- the chip model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChipModel:
    """``P[i, j]``: the chance a random chip at grid rate ``i`` passes after amount ``j``
    (non-decreasing in ``j``). A chip is one draw ``u``: it passes at ``j`` iff ``u < P[i, j]``."""

    P: np.ndarray

    @classmethod
    def logistic(cls, a, b, g):
        """``p(f, e) = expit(a - b f + g e)``: increasing in ``e``, decreasing in ``f``."""
        return cls(expit(a - b * RATES[:, None] + g * EPOCHS[None, :]))

    @classmethod
    def step(cls, need, below=0.5):
        """Every chip at rate ``i`` passes from amount index ``need[i]`` on; below it, half do."""
        return cls(np.where(np.arange(EPOCHS.size)[None, :] >= np.asarray(need)[:, None], 1.0, below))

    def sample_map(self, rng, n) -> ResilienceMap:
        u = rng.uniform(size=(RATES.size, 1, n))  # one u per chip, shared by all its amounts
        acc = np.where(u < self.P[:, :, None], BASELINE, BASELINE - 0.1)
        return ResilienceMap(RATES, EPOCHS, acc, BASELINE, {"array": list(SHAPE)})


def unit_costs(P, rows, amounts, members, u):
    """Cost of each unit for chips ``u`` (shape ``(..., U)``): the first grid amount >= the
    planned one at which the chip passes, else ``a_max * (1 + members)`` (efat/costs.py)."""
    ok = (u[..., None] < P[rows]) & (np.arange(EPOCHS.size) >= amounts[:, None])  # (..., U, E)
    return np.where(ok.any(-1), EPOCHS[ok.argmax(-1)], A_MAX * (1 + members))


@dataclass(frozen=True)
class Units:
    rows: np.ndarray
    amounts: np.ndarray
    members: np.ndarray


def plan_units(p, rmap, policy) -> Units:
    """The verification units of one policy, from the plan's public fields as
    efat/execution.py runs them (not from the planner's internals; the planner's own
    costing of them is checked in test_expected_cost_is_close_to_simulated_executions)."""
    out = []
    amount = lambda e: int(np.searchsorted(rmap.epochs, e))  # noqa: E731 - planned amounts lie on the grid
    row = lambda rate: int(rmap.rate_index(rate))  # noqa: E731
    if policy == "efat":
        out += [(row(g.fused_rate), amount(g.epochs), len(g.members)) for g in p.groups]
        out += [(row(c.rate), 0, 1) for c in p.chips if c.status == "no_retraining"]
    elif policy == "reduce":
        out += [(row(c.rate), amount(c.epochs), 1) for c in p.chips if c.status in ("retrain", "no_retraining")]
    else:
        out += [(row(c.rate), amount(p.costs.fixed_amount), 1) for c in p.chips if c.status != "infeasible"]
    for r, a, _ in out:
        assert r < RATES.size and EPOCHS[a] in rmap.epochs
    rows, amounts, members = (np.array(v, dtype=np.int64) for v in zip(*out)) if out else (np.zeros(0, int),) * 3
    return Units(rows, amounts, members)


def simulate(model: ChipModel, units: Units, rng, n=N_EXECUTIONS) -> np.ndarray:
    """Total cost of ``n`` executions, every unit drawing a fresh chip each time."""
    u = rng.uniform(size=(n, units.rows.size))
    return unit_costs(model.P, units.rows, units.amounts, units.members, u).sum(axis=1)


def exact(model: ChipModel, units: Units, n_map: int) -> tuple[float, float]:
    """The true expected total cost, and the standard error with which a map of ``n_map``
    chips per rate estimates it (the plan's estimate is a mean over the map's chips, one
    draw per row shared by every unit of the row). Exact: on each row a unit's cost only
    changes where ``u`` crosses one of the row's pass probabilities."""
    mean = var = 0.0
    for r in np.unique(units.rows):
        here = units.rows == r
        cuts = np.unique(np.concatenate([[0.0, 1.0], model.P[r]]))
        mid, width = (cuts[:-1] + cuts[1:]) / 2, np.diff(cuts)
        row_cost = unit_costs(model.P, units.rows[here], units.amounts[here], units.members[here],
                              np.broadcast_to(mid[:, None], (mid.size, here.sum()))).sum(axis=1)
        m = float(width @ row_cost)
        mean += m
        var += float(width @ (row_cost - m) ** 2) / n_map
    return mean, var ** 0.5


# -- the cases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    seed: int
    n_map: int  # chips per grid rate
    pass_target: float
    confidence: float


RATE_SPECS = ("uniform:0.0,0.08", "uniform:0.01,0.06", "lognormal:0.03,0.6")


@lru_cache(maxsize=None)
def build(case: Case):
    """A seeded logistic model, its map, a population and the plan (None if nothing is
    plannable). Cached: several tests read the same cases, and none changes them."""
    rng = np.random.default_rng(np.random.SeedSequence([case.seed, case.n_map, 0xCA1B]))
    model = ChipModel.logistic(rng.uniform(3, 6), rng.uniform(50, 90), rng.uniform(0.5, 3))
    rmap = model.sample_map(rng, case.n_map)
    pop = Population.generate(ArrayConfig(*SHAPE), int(rng.integers(10, 40)), rates=RATE_SPECS[case.seed % 3],
                              seed=case.seed, spatial=("uniform", "clustered")[case.seed % 2], sites=("weight",))
    c = Constraint(DROP, case.pass_target, case.confidence)
    try:
        p = plan(pop, rmap, c)
    except PlanError:
        return model, rmap, pop, c, None
    return model, rmap, pop, c, p


#: Thirty cases at confidence 0.9 (the interval's coverage is counted over them), maps of
#: 60 and 200 chips per rate, pass targets 0.8 and 0.9; then four at confidence 0.8.
COVERAGE_CASES = tuple(Case(s, (60, 200)[s % 2], (0.8, 0.9)[(s // 2) % 2], 0.9) for s in range(30))
CASES = COVERAGE_CASES + tuple(Case(s, (60, 200)[s % 2], 0.8, 0.8) for s in range(30, 34))


@dataclass(frozen=True)
class Outcome:
    """One policy of one planned case: the plan's numbers beside the simulation's and the truth."""

    on_paper: float
    expected: float
    lower: float
    upper: float
    simulated: float  # mean over N_EXECUTIONS executions
    se_sim: float  # its standard error
    truth: float  # exact expected cost of the plan under the model
    se_map: float  # the map's sampling error of an estimate of ``truth``


@lru_cache(maxsize=None)
def outcomes(case: Case) -> dict[str, Outcome]:
    model, rmap, _, _, p = build(case)
    assert p is not None, f"{case} must be plannable"
    rng = np.random.default_rng(np.random.SeedSequence([case.seed, 0x51A]))
    out = {}
    for name in POLICIES:
        units = plan_units(p, rmap, name)
        totals = simulate(model, units, rng)
        cost = getattr(p.costs, name)
        out[name] = Outcome(cost.epochs, cost.expected, cost.lower, cost.upper, float(totals.mean()),
                            float(totals.std(ddof=1) / np.sqrt(totals.size)), *exact(model, units, case.n_map))
    return out


# -- 1. the expected cost against simulated executions ---------------------------------------------


def test_simulated_executions_agree_with_the_exact_expectation():
    """The simulator itself: its mean lies within 4.5 of its own standard errors of the
    exact expectation (2,000 draws of a sum of tens of units: close to normal; 4.5 SE is
    a chance of ~1e-5 per comparison, 102 comparisons; the largest seen is 3.1)."""
    for case in CASES:
        for name, o in outcomes(case).items():
            assert abs(o.simulated - o.truth) <= 4.5 * o.se_sim + 1e-9, (case, name, o)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"seed{c.seed}-n{c.n_map}-q{c.pass_target}-c{c.confidence}")
def test_expected_cost_is_close_to_simulated_executions(case):
    """|expected - simulated mean| <= 4 * sqrt(se_map**2 + se_sim**2), and both >= on paper.

    ``se_map`` is the exact sampling error of an estimate of the expected cost made from
    ``n_map`` chips per rate (the plan's expected cost is such an estimate), ``se_sim``
    the simulation's (a fifth to a tenth of ``se_map`` here). Four, not two or three: the
    estimate is biased low by about one ``se_map`` (test_expected_cost_is_unbiased) and
    skewed (a rare never-passing chip costs a_max * (1 + members) = 16-40 epochs here,
    against a few planned); over these 34 cases the largest deviation is 2.4 of these units, and
    one of 4 would take a map off by twice its own error beyond that bias."""
    _, rmap, _, c, p = build(case)
    for name, o in outcomes(case).items():
        units = plan_units(p, rmap, name)  # the units simulated are the ones the planner costed
        assert CostModel(rmap, c).expected_rows(units.amounts, units.members, units.rows).sum() == pytest.approx(
            o.expected, abs=1e-9), name
        tolerance = 4 * np.hypot(o.se_map, o.se_sim)
        assert abs(o.expected - o.simulated) <= tolerance + 1e-9, (name, o)
        assert o.on_paper <= o.expected + 1e-9 and o.on_paper <= o.simulated + 1e-9, (name, o)


def _coverage(cases) -> dict[str, int]:
    return {name: sum(outcomes(c)[name].lower <= outcomes(c)[name].simulated <= outcomes(c)[name].upper
                      for c in cases) for name in POLICIES}


def _bias(cases) -> dict[str, float]:
    """Mean over ``cases`` of (estimate - truth) / se_map: ~N(0, 1/len(cases)) if unbiased."""
    return {name: float(np.mean([(outcomes(c)[name].expected - outcomes(c)[name].truth) / outcomes(c)[name].se_map
                                 for c in cases])) for name in POLICIES}


def test_cost_model_is_not_optimistic_on_an_independent_map():
    """The cost formula (efat/costs.py, CostModel) shrinks the failure probability towards
    1/2 ((f + 1/2) / (n + 1)) to offset the selection of amounts and groups on the map's
    own chips. On a SECOND map of the same model (chips that chose nothing) it must
    therefore never be optimistic: the standardised error (estimate - truth) / se_map
    averages at least -3 / sqrt(30) = -0.55 over the 30 cases (sd 1 / sqrt(30) if
    unbiased). Measured: +0.53 (efat), +0.62 (reduce), +1.33 (fixed), the price of the
    shrinkage where nothing was selected."""
    errors = {name: [] for name in POLICIES}
    for case in COVERAGE_CASES:
        model, rmap, _, c, p = build(case)
        other = model.sample_map(np.random.default_rng(np.random.SeedSequence([case.seed, 0x07E4])), case.n_map)
        cost_model = CostModel(other, c)
        for name in POLICIES:
            units = plan_units(p, rmap, name)
            estimate = cost_model.expected_rows(units.amounts, units.members, units.rows).sum()
            o = outcomes(case)[name]
            errors[name].append((estimate - o.truth) / o.se_map)
    means = {name: float(np.mean(e)) for name, e in errors.items()}
    assert all(m >= -3 / np.sqrt(len(COVERAGE_CASES)) for m in means.values()), means


def test_interval_is_not_grossly_off():
    """A floor, not calibration: the interval contains the simulated mean in at least half
    of the 30 cases at confidence 0.9 for every policy (a wrong level, an interval not
    around the estimate or costing the wrong units would miss nearly always). The
    calibrated count is test_interval_covers_the_simulated_mean_at_its_confidence."""
    covered = _coverage(COVERAGE_CASES)
    assert all(k >= 15 for k in covered.values()), covered


@pytest.mark.xfail(strict=True, reason=(
    "efat/planner.py + efat/costs.py: the shrunk failure probability leaves the expected cost of eFAT "
    "biased low by 0.59 of its own standard error on average over 30 cases (reduce -0.23, fixed +0.51): "
    "the groups are chosen on the very map chips that then estimate their cost (winner's curse), and "
    "one shrinkage cannot undo a selection that differs by policy"))
def test_expected_cost_is_unbiased():
    """The plan's expected cost should be an unbiased estimate of the true expected cost:
    its standardised error (expected - truth) / se_map, averaged over the 30 cases, within
    3 / sqrt(30) = 0.55 of 0 (sd 1 / sqrt(30) if unbiased)."""
    means = _bias(COVERAGE_CASES)
    assert all(abs(m) <= 3 / np.sqrt(len(COVERAGE_CASES)) for m in means.values()), means


def test_interval_covers_the_simulated_mean_at_its_confidence():
    """Calibration of the interval: at confidence 0.9, over 30 independent cases, the
    interval contains the expected cost (the simulated mean; its own error is a fifth to
    a tenth of se_map) in at least 23 (measured: 23 efat, 26 reduce, 25 fixed; a plain
    bootstrap of f / n covered 17, 22 and 23). For a calibrated interval the count is
    Binomial(30, 0.9) and P(count <= 22) = 0.008; even a bootstrap undercovering to 85%
    would fall short only 7% of the time."""
    covered = _coverage(COVERAGE_CASES)
    assert all(k >= 23 for k in covered.values()), covered


@pytest.mark.xfail(strict=True, reason=(
    "efat/costs.py: with a map near the fewest chips that can certify (30 chips, 90% at 90% needs "
    "22), no map chip ever fails a certified amount; the Clopper-Pearson confidence distribution "
    "still opens the interval (covered: 9 of 10 efat, 9 reduce), but for the fixed policy, planned at "
    "the grid's largest amount where a failure is priced by a guess, only 4 of 10"))
def test_interval_covers_the_truth_on_a_small_map():
    """With 30 chips per rate and pass target 0.9 at confidence 0.9, certifying an amount
    takes 30 of 30 passing (29 of 30 gives a bound of 0.88): no map chip ever escalates
    from a planned amount, yet a fresh chip fails it with probability up to 10%. The
    interval should still contain the true expected cost in at least 8 of 10 cases
    (Binomial(10, 0.9): P(count <= 7) = 0.07)."""
    covered, n = {name: 0 for name in POLICIES}, 0
    for seed in range(100, 110):
        case = Case(seed, 30, 0.9, 0.9)
        if build(case)[-1] is None:
            continue
        n += 1
        for name, o in outcomes(case).items():
            covered[name] += o.lower <= o.truth <= o.upper
    assert n >= 8 and all(k >= 0.8 * n for k in covered.values()), (n, covered)


# -- 2. no group below the pass target ---------------------------------------------------------------


def test_groups_are_certified_and_mostly_truly_above_the_target():
    """Every group: the map's one-sided Clopper-Pearson lower bound at (its fused rate's
    row, its amount) reaches the pass target at the plan's confidence, and its reported
    estimate lies in its interval. In truth (the model's P at that row and amount) the
    pass probability can still fall short: E* at a row is its first certified amount, and
    with monotone chips (a chip passing at an amount passes at every larger one) the map's
    pass counts never decrease along the amounts, so E* is too small only if the largest
    amount whose true P is below the target was certified: probability <= 1 - confidence
    per row, independently over rows (separate chips) and cases; E* made non-decreasing
    over the rates and the rounding of fused rates up to the grid only raise the amount.
    So the wrong (case, row) decisions used by groups number at most the 0.999 quantile of
    Binomial(decisions, 0.1) (24 of the 128 here). Which rows the groups use depends on
    the map (a row with too small an E* is cheaper, so fusions are drawn to it), so the
    count of used rows has this bound only roughly; the margin is wide (0 wrong seen
    here, 1 of 158 in a wider sweep, at a true P of 0.795 against 0.8). At least 80% of
    groups are truly above the target (386 of 386 seen)."""
    decisions, wrong, groups, groups_ok = set(), set(), 0, 0
    cases = [Case(s, n, q, 0.9) for s in range(200, 212) for n, q in ((30, 0.9), (60, 0.8), (200, 0.9))]
    for case in cases:
        model, rmap, _, c, p = build(case)
        if p is None:
            continue
        counts, n = rmap.pass_counts(c), rmap.n_trials
        for g in p.groups:
            row, j = int(rmap.rate_index(g.fused_rate)), int(np.searchsorted(rmap.epochs, g.epochs))
            assert stats.lower_bound(counts[row, j], n[row], c.confidence) >= c.pass_target, (case, g)
            lo_est_hi = g.pass_probability
            assert lo_est_hi[1] <= lo_est_hi[0] <= lo_est_hi[2], (case, g)
            truly = model.P[row, j] >= c.pass_target
            groups += 1
            groups_ok += truly
            decisions.add((case, row))
            if not truly:
                wrong.add((case, row))
    allowed = st.binom.ppf(0.999, len(decisions), 0.1)
    assert len(decisions) >= 50 and len(wrong) <= allowed, (len(decisions), len(wrong), allowed)
    assert groups_ok >= 0.8 * groups, (groups_ok, groups)


# -- 3. the policies are ordered ---------------------------------------------------------------------


def test_expected_costs_are_ordered_and_escalations_only_add():
    for case in CASES + tuple(Case(s, n, q, conf) for s in range(300, 306)
                              for n, q, conf in ((30, 0.9, 0.9), (60, 0.8, 0.8))):
        p = build(case)[-1]
        if p is None:
            continue
        c = p.costs
        assert c.efat.expected <= c.reduce.expected + 1e-9 <= c.fixed.expected + 2e-9, (case, c)
        for policy in (c.efat, c.reduce, c.fixed):
            assert policy.expected >= policy.epochs - 1e-9, (case, policy)


# -- 4. chips that always pass at the certified amounts ---------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_expected_cost_is_on_paper_when_every_chip_passes(seed):
    """Below its rate's threshold amount half of the chips pass, from it on all do: the map
    certifies exactly the thresholds (30 of 60 passing is far below any target; 60 of 60
    reaches it) and every unit passes at its planned amount, so every simulated execution
    costs the on-paper amount. The plan, seeing no failure in 60 chips, still prices one
    ((0 + 1/2) / 61 of an escalation per unit): its expected cost is a little above the
    on-paper cost. Its interval never reaches below it, and starts at it on a single grid
    cell; over several cells (each p drawn from [0, 0.05], half the time exactly 0) the
    sum's lower quantile lies a little above it: the truth, at the very edge, is not
    covered in this extreme case."""
    rng = np.random.default_rng(seed)
    need = np.sort(rng.integers(0, EPOCHS.size, RATES.size))
    need[0] = 0  # fault-free chips need no retraining
    model = ChipModel.step(need)
    rmap = model.sample_map(rng, 60)
    c = Constraint(DROP, (0.8, 0.9)[seed % 2], (0.8, 0.9, 0.95)[seed % 3])
    assert np.array_equal(rmap.required_epochs_grid(c), EPOCHS[need])
    pop = Population.generate(ArrayConfig(*SHAPE), 25, rates="uniform:0.0,0.1", seed=seed)
    p = plan(pop, rmap, c)
    for name in POLICIES:
        cost = getattr(p.costs, name)
        units = plan_units(p, rmap, name)
        slack = sum(0.5 / 61 * (A_MAX * (1 + m)) for m in units.members)  # at most one priced escalation each
        assert cost.epochs - 1e-9 <= cost.lower <= cost.expected <= cost.upper, (name, cost)
        assert cost.expected <= cost.epochs + slack, (name, cost)
        if len(set(zip(units.rows, units.amounts))) == 1:
            assert cost.lower == pytest.approx(cost.epochs, abs=1e-9), (name, cost)
        totals = simulate(model, units, rng, 200)
        assert np.allclose(totals, cost.epochs), (name, cost, totals[:5])
