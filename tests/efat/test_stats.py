"""efat.stats: Clopper-Pearson bounds cover as stated, decisions are certified, the sample
sizes are the stated formulas, the Student-t mean interval, and the error messages.

Simulations use seeded numpy Generators, so every test is deterministic. A simulated
frequency is compared with its nominal value up to a Monte-Carlo slack of ``Z_SLACK``
binomial standard errors, ``Z_SLACK * sqrt(c (1 - c) / draws)``: with 20,000 draws that is
0.0085 at ``c = 0.9`` and 0.011 at ``c = 0.8``. Four standard errors make a false alarm on
a correct implementation (probability ~3e-5 per check even where the true coverage is
exactly nominal) practically impossible over the ~100 checks here, while an interval one
tail too wide or of the wrong kind misses by 5 to 10 points and is caught.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from efat import Constraint, ResilienceError
from efat import stats

DRAWS = 20_000
Z_SLACK = 4.0
PS = (0.5, 0.8, 0.9, 0.95, 0.99)
NS = (10, 22, 45, 100)
CONFIDENCES = (0.8, 0.9)


def slack(level: float, draws: int = DRAWS) -> float:
    """Monte-Carlo slack of a simulated frequency whose nominal value is ``level``."""
    return Z_SLACK * math.sqrt(level * (1 - level) / draws)


# -- coverage of the Clopper-Pearson bounds ---------------------------------------------

@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_pass_interval_and_lower_bound_cover_p(confidence):
    rng = np.random.default_rng(20240611)
    low = confidence - slack(confidence)
    for p in PS:
        for n in NS:
            k = rng.binomial(n, p, size=DRAWS)
            est, lo, hi = stats.pass_interval(k, n, confidence)
            assert est.shape == lo.shape == hi.shape == (DRAWS,)
            np.testing.assert_allclose(est, k / n)
            assert ((lo <= est) & (est <= hi)).all()
            two_sided = np.mean((lo <= p) & (p <= hi))
            assert two_sided >= low, f"two-sided coverage {two_sided:.4f} < {low:.4f} at p={p}, n={n}"
            one_sided = np.mean(stats.lower_bound(k, n, confidence) <= p)
            assert one_sided >= low, f"lower-bound coverage {one_sided:.4f} < {low:.4f} at p={p}, n={n}"
            upper = np.mean(stats.upper_bound(k, n, confidence) >= p)
            assert upper >= low, f"upper-bound coverage {upper:.4f} < {low:.4f} at p={p}, n={n}"


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_bounds_are_exact_clopper_pearson_not_just_conservative(confidence):
    """Coverage alone is met by [0, 1]: each bound is the p at which the binomial tail
    beyond k has probability exactly 1 - confidence (the Clopper-Pearson definition)."""
    alpha = 1 - confidence
    for n in (1, 2, 10, 22, 45, 100):
        k = np.arange(n + 1)
        lo, hi = stats.lower_bound(k, n, confidence), stats.upper_bound(k, n, confidence)
        assert lo[0] == 0.0 and hi[-1] == 1.0
        np.testing.assert_allclose(sps.binom.sf(k[1:] - 1, n, lo[1:]), alpha, rtol=1e-6)  # P(X >= k | lo)
        np.testing.assert_allclose(sps.binom.cdf(k[:-1], n, hi[:-1]), alpha, rtol=1e-6)  # P(X <= k | hi)
        assert (np.diff(lo) > 0).all() and (np.diff(hi) > 0).all()
        _, lo2, hi2 = stats.pass_interval(k, n, confidence)  # two-sided: (1 - confidence) / 2 per tail
        np.testing.assert_allclose(sps.binom.sf(k[1:] - 1, n, lo2[1:]), alpha / 2, rtol=1e-6)
        np.testing.assert_allclose(sps.binom.cdf(k[:-1], n, hi2[:-1]), alpha / 2, rtol=1e-6)
    est, lo, hi = stats.pass_interval(0, 0, confidence)
    assert np.isnan(est) and lo == 0.0 and hi == 1.0


# -- certified decisions ----------------------------------------------------------------

def test_decide_is_the_one_sided_bounds_against_the_target():
    for confidence in (0.5, 0.8, 0.9, 0.95):
        for n in (1, 8, 22, 45):
            k = np.arange(n + 1)
            # by hand, from scipy's beta quantiles (not through efat.stats)
            lo = np.where(k > 0, sps.beta.ppf(1 - confidence, np.maximum(k, 1), n - k + 1), 0.0)
            hi = np.where(k < n, sps.beta.ppf(confidence, k + 1, np.maximum(n - k, 1)), 1.0)
            for target in (0.5, 0.8, 0.9, 0.95):
                d = stats.decide(k, n, target, confidence)
                assert d.dtype == np.int8
                np.testing.assert_array_equal(d == stats.PASS, lo >= target)
                np.testing.assert_array_equal(d == stats.FAIL, hi < target)
                np.testing.assert_array_equal(d == stats.UNDECIDED, (lo < target) & (hi >= target))
    # broadcast over cells, and nothing is certified without chips
    d = stats.decide(np.zeros((3, 2)), np.zeros((3, 1)), 0.9, 0.9)
    assert d.shape == (3, 2) and (d == stats.UNDECIDED).all()


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("target", (0.8, 0.9))
def test_certified_decisions_are_wrong_at_most_one_minus_confidence(target, confidence):
    rng = np.random.default_rng([7, int(100 * target), int(100 * confidence)])
    high = 1 - confidence + slack(1 - confidence)
    for n in (22, 45, 100, 200):
        # just below the target: a certified pass is wrong
        k = rng.binomial(n, target - 0.005, size=DRAWS)
        wrong = np.mean(stats.decide(k, n, target, confidence) == stats.PASS)
        assert wrong <= high, f"false PASS rate {wrong:.4f} > {high:.4f} (n={n})"
        # just above it: a certified fail is wrong
        k = rng.binomial(n, min(target + 0.005, 0.999), size=DRAWS)
        wrong = np.mean(stats.decide(k, n, target, confidence) == stats.FAIL)
        assert wrong <= high, f"false FAIL rate {wrong:.4f} > {high:.4f} (n={n})"
    # and it does certify when the truth is clear (the guarantee is not met by never deciding)
    k = rng.binomial(200, 0.99, size=DRAWS)
    assert np.mean(stats.decide(k, 200, target, confidence) == stats.PASS) > 0.99
    k = rng.binomial(200, target - 0.2, size=DRAWS)
    assert np.mean(stats.decide(k, 200, target, confidence) == stats.FAIL) > 0.99


# -- sample sizes -----------------------------------------------------------------------

def test_trials_to_certify_known_values():
    assert stats.trials_to_certify(0.9, 0.9) == 22
    assert stats.trials_to_certify(0.95, 0.9) == 45
    assert Constraint(0.05, 0.8, 0.8).min_trials == 8
    assert Constraint(0.05).min_trials == 22


@pytest.mark.parametrize("target", (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99))
@pytest.mark.parametrize("confidence", (0.5, 0.8, 0.9, 0.95, 0.99))
def test_trials_to_certify_is_the_fewest_all_passing_chips_that_certify(target, confidence):
    n = stats.trials_to_certify(target, confidence)
    assert isinstance(n, int) and n >= 1
    assert stats.lower_bound(n, n, confidence) >= target
    assert stats.decide(n, n, target, confidence) == stats.PASS
    if n > 1:
        assert stats.lower_bound(n - 1, n - 1, confidence) < target
        assert stats.decide(n - 1, n - 1, target, confidence) != stats.PASS
    # one failure among them: not certified
    assert stats.decide(n - 1, n, target, confidence) != stats.PASS


def test_leveugle_sample_size():
    t = sps.norm.ppf(0.975)
    assert stats.leveugle_sample_size(0.05, 0.95) == math.ceil(t * t * 0.25 / 0.05 ** 2) == 385
    assert stats.leveugle_sample_size(0.05, 0.95, population=1000) == 278
    assert stats.leveugle_sample_size(0.01, 0.99) == math.ceil(sps.norm.ppf(0.995) ** 2 * 0.25 / 1e-4)  # 16588
    for margin, confidence, p in [(0.05, 0.95, 0.5), (0.01, 0.99, 0.5), (0.02, 0.9, 0.1), (0.1, 0.8, 0.3)]:
        z = sps.norm.ppf((1 + confidence) / 2)
        infinite = stats.leveugle_sample_size(margin, confidence, p)
        assert infinite == math.ceil(z * z * p * (1 - p) / margin ** 2)
        prev = 0
        for population in (1, 2, 10, 100, 1000, 10 ** 4, 10 ** 6, 10 ** 9, 10 ** 12):
            n = stats.leveugle_sample_size(margin, confidence, p, population)
            by_hand = population / (1 + margin ** 2 * (population - 1) / (z * z * p * (1 - p)))
            assert n == math.ceil(by_hand)
            assert 1 <= n <= min(population, infinite)
            assert n >= prev  # more chips in the population: no fewer to sample ...
            prev = n
        assert prev == infinite  # ... up to the infinite-population size
    # the worst case is p = 0.5
    assert stats.leveugle_sample_size(0.05, 0.95, 0.3) < stats.leveugle_sample_size(0.05, 0.95)


# -- the mean's Student-t interval -----------------------------------------------------

def test_mean_interval_matches_a_hand_student_t_computation():
    rng = np.random.default_rng(11)
    v = rng.normal(0.8, 0.05, size=(6, 15))
    v[rng.random(v.shape) < 0.3] = np.nan
    v[4, :2], v[4, 2:] = (0.81, 0.83), np.nan  # two values
    v[5, 0], v[5, 1:] = 0.79, np.nan  # one value
    for confidence in (0.8, 0.9, 0.95):
        mean, lo, hi = stats.mean_interval(v, confidence, axis=-1)
        for i, row in enumerate(v):
            x = row[~np.isnan(row)]
            if x.size < 2:
                continue
            half = sps.t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
            assert mean[i] == pytest.approx(x.mean(), rel=1e-12)
            assert lo[i] == pytest.approx(x.mean() - half, rel=1e-12)
            assert hi[i] == pytest.approx(x.mean() + half, rel=1e-12)
        assert mean[5] == v[5, 0] and np.isnan(lo[5]) and np.isnan(hi[5])
        # the same over axis 0
        m0, lo0, hi0 = stats.mean_interval(v.T, confidence, axis=0)
        np.testing.assert_allclose(m0, mean)
        np.testing.assert_allclose(lo0, lo)
        np.testing.assert_allclose(hi0, hi)


def test_mean_interval_with_fewer_than_two_values_has_nan_bounds():
    mean, lo, hi = stats.mean_interval([0.7], 0.9)
    assert mean == 0.7 and np.isnan(lo) and np.isnan(hi)
    mean, lo, hi = stats.mean_interval([np.nan, 0.4, np.nan], 0.9)
    assert mean == 0.4 and np.isnan(lo) and np.isnan(hi)
    mean, lo, hi = stats.mean_interval(np.full((2, 3), np.nan), 0.9)
    assert np.isnan(mean).all() and np.isnan(lo).all() and np.isnan(hi).all()
    mean, lo, hi = stats.mean_interval([0.5, 0.5], 0.9)  # two equal values: a zero-width interval
    assert mean == lo == hi == 0.5


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_mean_interval_covers_the_true_mean_at_about_the_confidence(confidence):
    rng = np.random.default_rng([3, int(100 * confidence)])
    mu, sigma = 0.9, 0.03
    for n in (3, 8, 30):
        x = rng.normal(mu, sigma, size=(DRAWS, n + 2))
        x[:, -2:] = np.nan  # NaN entries are ignored: n values per sample
        x = rng.permuted(x, axis=1)
        _, lo, hi = stats.mean_interval(x, confidence, axis=1)
        covered = np.mean((lo <= mu) & (mu <= hi))
        assert abs(covered - confidence) <= slack(confidence), f"coverage {covered:.4f} at n={n}"


# -- argument checks --------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, 1.5, -0.1, float("nan"), float("inf"), True, "0.9", None])
def test_check_level_names_the_parameter_and_the_bad_value(bad):
    with pytest.raises(ResilienceError) as info:
        stats.check_level("pass_target", bad)
    msg = str(info.value)
    assert msg.startswith("pass_target ") and repr(bad) in msg and "(0, 1)" in msg
    with pytest.raises(ResilienceError, match="confidence") as info:
        Constraint(0.02, 0.9, bad)
    assert repr(bad) in str(info.value)


def test_check_level_accepts_levels():
    assert stats.check_level("confidence", 0.9) == 0.9
    assert type(stats.check_level("confidence", np.float32(0.5))) is float
    assert stats.check_level("x", 0, lo_open=False) == 0.0
    with pytest.raises(ResilienceError, match=r"x must be a number in \[0, 1\); got -0.5"):
        stats.check_level("x", -0.5, lo_open=False)
    with pytest.raises(ResilienceError, match=r"x must be a number in \[0, 1\); got 1"):
        stats.check_level("x", 1, lo_open=False)
