"""Shared hypothesis settings (strategies live in strategies.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test trains into (and shares) one temporary model cache, never the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EFAT_CACHE_DIR", str(tmp_path_factory.mktemp("efat-cache")))
    yield
    mp.undo()
