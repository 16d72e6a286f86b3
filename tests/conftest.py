"""Shared hypothesis settings (strategies live in strategies.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import mapping  # noqa: F401  (first: pins torch's CPU code paths before any test runs torch)

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The models are tiny: on 2 busy cores extra intra-op threads only cost (see cli.args.limit_threads)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test trains into (and shares) one temporary model cache, never the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EFAT_CACHE_DIR", str(tmp_path_factory.mktemp("efat-cache")))
    yield
    mp.undo()


#: The constraint of the small eFAT case: a pass target and confidence that 8 chips can certify.
CASE_CONSTRAINT = dict(max_accuracy_drop=0.03, pass_target=0.8, confidence=0.8)


@pytest.fixture(scope="session")
def efat_case():
    """A small eFAT case shared by the execution and command-line tests: the MLP on digits,
    a 16x16 resilience map sampled adaptively for CASE_CONSTRAINT, and 8 chips."""
    from efat import Constraint, resilience_map
    from faults import Population
    from simulator import ArrayConfig
    from training import load_dataset, pretrained

    cfg = ArrayConfig(16, 16)
    data = load_dataset("digits", seed=0)
    model = pretrained("mlp", data, seed=0)
    rmap = resilience_map(model, data, cfg, [0.02, 0.05, 0.1], [0.5, 1], constraint=Constraint(**CASE_CONSTRAINT),
                          max_trials=16, progress=False)
    pop = Population.generate(cfg, 8, rates="uniform:0.005,0.06", seed=3)
    return model, data, rmap, pop
