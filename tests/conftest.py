"""Shared pytest set-up: loads the namespace/lab fixtures (tests/conftest_lab.py).

MCAST_REQUIRE_NETNS=1 (set by .ci/run) turns every skip of a kernel, lab or interop
test into a failure, so a green CI run cannot hide an untested area.
"""

from __future__ import annotations

pytest_plugins = ["tests.conftest_lab"]
