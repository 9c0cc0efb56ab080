"""Shared test configuration: hypothesis profiles.

``ci`` is deterministic and thorough (used whenever the ``CI`` environment
variable is set); ``dev`` is quick. Pick one explicitly with
``HYPOTHESIS_PROFILE=ci`` (or ``dev``); the default is ``dev``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
