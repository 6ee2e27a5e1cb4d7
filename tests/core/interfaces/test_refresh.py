"""``refresh_interfaces()`` after an interface is re-created (issue 14.4 and 14.11).

Owns: that a refused re-join does not wedge later refreshes, that memberships chosen by
interface *address* are re-joined like those chosen by name, and that every SSM source
and every blocked source comes back (checked in the kernel's ``/proc/net/mcfilter``,
not only in the socket's book). Each in a fresh namespace with a veth interface that
the test deletes and re-creates (a new index).
Must not: change a sysctl outside the test namespace.
"""

from __future__ import annotations

import pytest

from mcastkit import MembershipLimitError, MulticastSocket
from tests.support import kernelstate
from tests.support.addrs import fresh_group4, lab_host
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

DEV = "d0"
ADDR = lab_host(40, 1)


def _make_dev(netns: Netns) -> int:
    netns.ip("link", "add", DEV, "type", "veth", "peer", "name", f"{DEV}p")
    netns.ip("link", "set", f"{DEV}p", "up")
    netns.ip("link", "set", DEV, "up")
    netns.addr_add(DEV, f"{ADDR}/24")
    return netns.ifindex(DEV)


def _recreate(netns: Netns) -> int:
    old = netns.ifindex(DEV)
    netns.ip("link", "del", DEV)
    new = _make_dev(netns)
    assert new != old
    return new


def _kernel_groups() -> set[str]:
    return {g for dev, g in kernelstate.igmp_groups() if dev == DEV}


def _kernel_sources(group: str) -> set[tuple[str, int, int]]:
    """(source, include, exclude) rows of /proc/net/mcfilter for ``group`` on DEV."""
    return {(s, inc, exc) for dev, g, s, inc, exc in kernelstate.source_filters()
            if dev == DEV and g == group}


def test_a_refused_rejoin_does_not_wedge_later_refreshes(netns: Netns) -> None:
    """The first refresh after the re-creation is refused (igmp_max_memberships too low):
    MembershipLimitError, right. Once the limit is raised, the next refresh re-joins
    every group (it used to raise NotJoinedError for ever, 14.4)."""
    _make_dev(netns)
    netns.sysctl("net.ipv4.igmp_max_memberships", 2)
    g1, g2 = fresh_group4(70), fresh_group4(70)
    with MulticastSocket(4) as rx:
        rx.bind(0)
        rx.join(g1, DEV)
        rx.join(g2, DEV)
        new = _recreate(netns)
        netns.sysctl("net.ipv4.igmp_max_memberships", 1)
        with pytest.raises(MembershipLimitError):
            rx.refresh_interfaces()
        netns.sysctl("net.ipv4.igmp_max_memberships", 20)
        rx.refresh_interfaces()
        assert {(m.group, m.ifindex) for m in rx.memberships} == {(g1, new), (g2, new)}
        assert {g1, g2} <= _kernel_groups()
        assert rx.refresh_interfaces() == []  # nothing left to do


def test_a_membership_chosen_by_address_is_rejoined(netns: Netns) -> None:
    """join(g, "198.18.40.1") names the interface by its address: a refresh re-resolves
    it like a name (it used to skip it: the address was looked up as a name)."""
    _make_dev(netns)
    g = fresh_group4(70)
    with MulticastSocket(4) as rx:
        rx.bind(0)
        rx.join(g, ADDR)
        new = _recreate(netns)
        assert g not in _kernel_groups()
        done = rx.refresh_interfaces()
        assert [(m.group, m.ifindex) for m in done] == [(g, new)]
        assert g in _kernel_groups()


def test_refresh_rejoins_every_ssm_source_and_every_blocked_source(netns: Netns) -> None:
    """Two SSM sources of one group, two blocked sources of another: all four are in the
    kernel's filter again after the refresh (14.11: re-joining only the first source,
    or forgetting the blocked ones, passed the suite before)."""
    _make_dev(netns)
    ssm, asm = fresh_group4(70), fresh_group4(70)
    s1, s2, b1, b2 = lab_host(40, 11), lab_host(40, 12), lab_host(40, 21), lab_host(40, 22)
    with MulticastSocket(4) as rx:
        rx.bind(0)
        rx.join_source(s1, ssm, DEV)
        rx.join_source(s2, ssm, DEV)
        rx.join(asm, DEV)
        rx.block_source(b1, asm, DEV)
        rx.block_source(b2, asm, DEV)
        before = (_kernel_sources(ssm), _kernel_sources(asm))
        assert before == ({(s1, 1, 0), (s2, 1, 0)}, {(b1, 0, 1), (b2, 0, 1)})
        new = _recreate(netns)
        done = rx.refresh_interfaces()
        assert (_kernel_sources(ssm), _kernel_sources(asm)) == before
        got = {m.group: (m.ifindex, m.sources) for m in done}
        assert got == {ssm: (new, frozenset({s1, s2})), asm: (new, frozenset({b1, b2}))}
        assert {m.group: m.sources for m in rx.memberships} == {
            ssm: frozenset({s1, s2}), asm: frozenset({b1, b2})}
