"""pytest plugin for the instrumented runs (.ci/sanitize, .ci/debug).

Registers the hypothesis profile ``instrumented``: derandomized like the
``ci`` profile of tests/conftest.py, with fewer examples
(``CHURN_HYPOTHESIS_EXAMPLES``, default 25) because sanitized and -O0 builds
are slower. Loaded with ``-p hypothesis_ci_profile`` and selected with
``--hypothesis-profile=instrumented`` (hypothesis loads that profile after
the conftest files, so it wins over the conftest's choice).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "instrumented",
    derandomize=True,
    max_examples=int(os.environ.get("CHURN_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
