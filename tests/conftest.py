"""Shared pytest set-up: registers the plugins of the test infrastructure (tests/support).

``tests.support.fixtures``: the namespace, veth and lab fixtures, the tier markers (every
test gets exactly one tier), and the check that turns a skip of a namespace, lab or
interop test into a failure when ``MCAST_REQUIRE_NETNS=1`` (set by .ci/run), so a green
CI run cannot hide an untested area. ``tests.support.soak``: the soak tier is deselected
unless ``MCASTKIT_SOAK_S`` is set. ``tests.support.hypothesis_profiles``: the derandomized
``ci`` profile every property test runs with.

Must not: define fixtures or helpers itself (they live in tests/support).
"""

from __future__ import annotations

pytest_plugins = [
    "tests.support.fixtures",
    "tests.support.soak",
    "tests.support.hypothesis_profiles",
]
