"""Shared pytest configuration.

Property-based tests (hypothesis) run under one fixed profile so that every run draws the
same examples: ``derandomize=True`` derives them from each test's source instead of a random
seed, the example count is fixed, no deadline (the first call of a test pays imports), and
no example database is written. Set ``HYPOTHESIS_PROFILE=bnbackprop-long`` for a longer,
still reproducible, search.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}

settings.register_profile("bnbackprop", max_examples=60, **_COMMON)
settings.register_profile("bnbackprop-long", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bnbackprop"))
