"""Hypothesis profiles for every property test (a plugin loaded by tests/conftest.py).

Owns: the ``ci`` profile (derandomized, 200 examples, no deadline) loaded by default, so
every run explores the same examples, and a ``dev`` profile (random, 1000 examples) picked
with ``HYPOTHESIS_PROFILE=dev``.
Must not: create namespaces, sockets or any other fixture with side effects.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
