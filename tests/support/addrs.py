"""The one table of lab addresses and groups the core tests use (no scattered literals).

Owns: every unicast address and multicast group a core test (tests/unit, tests/kernel,
tests/batch) names, each from a range reserved for exactly this use, and small helpers
that hand out fresh groups per tier so tests never share one by accident.
Must not: name an address outside these ranges, or one that leaves a test namespace.

Ranges:
* Unicast ``198.18.0.0/15``: benchmarking networks (RFC 2544 / RFC 6890); never routed.
* IPv4 ASM groups ``239.255.0.0/16``: IPv4 Local Scope of administratively scoped
  multicast (RFC 2365).
* IPv4 SSM groups ``232.0.0.0/8``: source-specific multicast (RFC 4607), inside
  namespaces only.
* IPv6 groups ``ff15::/16``: transient (T flag) site-local scope (RFC 4291 section 2.7).
* IPv6 unicast ``fd00::/8`` is not used: IPv6 tests use link-local addresses that the
  veth fixtures assign.
"""

from __future__ import annotations

import itertools
from typing import Final

__all__ = [
    "G4",
    "G4_OTHER",
    "G6",
    "G6_OTHER",
    "SRC4",
    "SRC4_OTHER",
    "SSM4",
    "UNICAST4",
    "fresh_group4",
    "fresh_group6",
]

# --- IPv4 -----------------------------------------------------------------------------
G4: Final = "239.255.0.1"  # the default test group (RFC 2365 local scope)
G4_OTHER: Final = "239.255.0.9"  # a second group, never joined where G4 is
SSM4: Final = "232.1.1.1"  # a source-specific group (RFC 4607)
SRC4: Final = "198.18.0.1"  # a unicast sender (RFC 2544 benchmarking range)
SRC4_OTHER: Final = "198.18.0.7"  # a second unicast sender
UNICAST4: Final = "198.18.5.1"  # a unicast address that is nobody's group

# --- IPv6 -----------------------------------------------------------------------------
G6: Final = "ff15::1"  # the default IPv6 test group (transient, site-local)
G6_OTHER: Final = "ff15::9"

_n = itertools.count(1)


def fresh_group4(block: int) -> str:
    """A group no other test of this run uses: ``239.255.<block>.<n>`` (block 1-99 per
    test module, so two modules never meet)."""
    n = next(_n)
    return f"239.255.{block}.{n % 250 + 1}"


def fresh_group6(block: int) -> str:
    """The IPv6 twin of :func:`fresh_group4`: ``ff15::<block>:<n>``."""
    return f"ff15::{block:x}:{next(_n):x}"
