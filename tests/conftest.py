"""Shared test configuration: hypothesis profiles and the ``compile_fn`` fixture."""

import os

import pytest
from hypothesis import settings

import tinygraph as tg

settings.register_profile("default", max_examples=15, deadline=None)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def compile_fn():
    """Compile a graph (``tinygraph.function``'s signature). Every test that compiles uses this
    fixture so that the suite can be run against each backend. Session-scoped: it holds no
    per-test state, and hypothesis tests may not use function-scoped fixtures."""
    return tg.function
