"""Joins that run out of socket option memory (issue 13 item 7).

Owns: the IPv4 case where ``net.core.optmem_max``, not ``net.ipv4.igmp_max_memberships``,
stops a join. The kernel answers ENOBUFS for both; the error must name the sysctl that
actually ran out, so the fix it suggests works.
Must not: change sysctls outside the test's own namespace (the ``netns`` fixture).
"""

from __future__ import annotations

import errno

import pytest

from mcastkit import ErrorCode, MembershipLimitError, MulticastSocket
from tests.support.kernel import group4
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel


def test_join_beyond_optmem_max_names_optmem_max(netns: Netns) -> None:
    netns.sysctl("net.ipv4.igmp_max_memberships", 100000)  # far away: optmem runs out first
    netns.sysctl("net.core.optmem_max", 2048)
    joined = 0
    with MulticastSocket(4, interface="lo") as rx:
        rx.bind(0)
        with pytest.raises(MembershipLimitError) as ei:
            for _ in range(1000):
                rx.join(group4())
                joined += 1
        e = ei.value
        assert 0 < joined < 1000 and len(rx.memberships) == joined  # state unchanged
        assert e.code is ErrorCode.MEMBERSHIP_LIMIT and e.errno == errno.ENOBUFS
        assert "net.core.optmem_max=2048" in str(e)
        assert "igmp_max_memberships" not in str(e)


def test_join_at_igmp_max_memberships_still_names_that_sysctl(netns: Netns) -> None:
    netns.sysctl("net.ipv4.igmp_max_memberships", 3)
    with MulticastSocket(4, interface="lo") as rx:
        rx.bind(0)
        for _ in range(3):
            rx.join(group4())
        with pytest.raises(MembershipLimitError) as ei:
            rx.join(group4())
        assert "net.ipv4.igmp_max_memberships=3" in str(ei.value)
        assert "optmem_max" not in str(ei.value)
