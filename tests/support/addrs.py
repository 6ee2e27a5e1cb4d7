"""The one table of lab addresses and groups the tests use (no scattered literals).

Owns: every unicast address, network and multicast group a test names, each from a range
reserved for exactly this use; small helpers that spell an address of a range
(``asm4(x, y)``, ``ssm4(b, c, d)``, ``asm6("a:1")``, ``lab_host(net, n)``) so a test can
name a distinct one without a literal; and the fresh-group helpers that hand out groups
per test so tests never share one by accident. tests/selftest/test_addresses_table.py
fails on a lab literal in a test file outside this table.
Must not: name an address outside these ranges, or one that leaves a test namespace.

Ranges:
* Unicast ``198.18.0.0/15``: benchmarking networks (RFC 2544 / RFC 6890); never routed.
* IPv4 ASM groups ``239.255.0.0/16``: IPv4 Local Scope of administratively scoped
  multicast (RFC 2365).
* IPv4 SSM groups ``232.0.0.0/8``: source-specific multicast (RFC 4607), inside
  namespaces only.
* IPv6 groups ``ff15::/16``: transient (T flag) site-local scope (RFC 4291 section 2.7);
  ``ff35::/16`` for source-specific ones (RFC 4607, RFC 3306 P flag).
* IPv6 unicast ``fd00::/8`` is not used: IPv6 tests use link-local addresses that the
  veth fixtures assign.
* Well-known groups (SSDP ``239.255.255.250``, RFC-less but IANA-assigned) only inside
  namespaces.
"""

from __future__ import annotations

import itertools
from typing import Final

__all__ = [
    "ASM_NET4",
    "ASM_NET6",
    "G4",
    "G4_OTHER",
    "G6",
    "G6_OTHER",
    "G6_PREFIX",
    "LAB_NET4",
    "SRC4",
    "SRC4_OTHER",
    "SSDP4",
    "SSM4",
    "SSM_NET4",
    "UNICAST4",
    "VETH_A",
    "VETH_B",
    "VETH_BCAST",
    "asm4",
    "asm6",
    "fresh_group4",
    "fresh_group6",
    "lab_host",
    "ssm4",
    "ssm6",
]

# --- networks -------------------------------------------------------------------------
LAB_NET4: Final = "198.18.0.0/15"  # every lab unicast address (RFC 2544 / RFC 6890)
ASM_NET4: Final = "239.255.0.0/16"  # IPv4 local scope (RFC 2365)
SSM_NET4: Final = "232.0.0.0/8"  # IPv4 source-specific multicast (RFC 4607)
ASM_NET6: Final = "ff15::/16"  # IPv6 transient site-local groups (RFC 4291 2.7)
G6_PREFIX: Final = "ff15::"  # the text every IPv6 test group starts with

# --- IPv4 -----------------------------------------------------------------------------
G4: Final = "239.255.0.1"  # the default test group (RFC 2365 local scope)
G4_OTHER: Final = "239.255.0.9"  # a second group, never joined where G4 is
SSM4: Final = "232.1.1.1"  # a source-specific group (RFC 4607)
SRC4: Final = "198.18.0.1"  # a unicast sender (RFC 2544 benchmarking range)
SRC4_OTHER: Final = "198.18.0.7"  # a second unicast sender
UNICAST4: Final = "198.18.5.1"  # a unicast address that is nobody's group
SSDP4: Final = "239.255.255.250"  # the well-known SSDP group (namespaces only)

# the veth_pair fixture (tests/support/topology.py): a = eth0 .1, b = eth0 .2, a /24
VETH_A: Final = "198.18.9.1"
VETH_B: Final = "198.18.9.2"
VETH_BCAST: Final = "198.18.9.255"  # the subnet's broadcast address

# --- IPv6 -----------------------------------------------------------------------------
G6: Final = "ff15::1"  # the default IPv6 test group (transient, site-local)
G6_OTHER: Final = "ff15::9"


def asm4(x: int, y: int) -> str:
    """The IPv4 group ``239.255.<x>.<y>`` (RFC 2365 local scope)."""
    return f"239.255.{x}.{y}"


def ssm4(b: int, c: int, d: int) -> str:
    """The IPv4 source-specific group ``232.<b>.<c>.<d>`` (RFC 4607)."""
    return f"232.{b}.{c}.{d}"


def asm6(suffix: str) -> str:
    """The IPv6 group ``ff15::<suffix>`` (transient, site-local), e.g. ``asm6("a:1")``."""
    return f"{G6_PREFIX}{suffix}"


def ssm6(suffix: str) -> str:
    """The IPv6 source-specific group ``ff35::<suffix>`` (RFC 4607)."""
    return f"ff35::{suffix}"


def lab_host(net: int, n: int) -> str:
    """The lab unicast address ``198.18.<net>.<n>`` (RFC 2544 benchmarking range)."""
    return f"198.18.{net}.{n}"


_n = itertools.count(1)


def fresh_group4(block: int) -> str:
    """A group no other test of this run uses: ``239.255.<block>.<n>`` (block 1-99 per
    test module, so two modules never meet)."""
    n = next(_n)
    return asm4(block, n % 250 + 1)


def fresh_group6(block: int) -> str:
    """The IPv6 twin of :func:`fresh_group4`: ``ff15::<block>:<n>``."""
    return asm6(f"{block:x}:{next(_n):x}")
