"""The default join interface is the route's, not the first candidate (issue 14.11).

Owns: with two multicast-capable interfaces and the route to the group on the
*second*, ``join(group)`` without an interface joins on the route's interface (the book
and ``/proc/net/igmp`` agree), for IPv4. The earlier tests had one candidate only, so
"the first non-lo interface" passed them too.
Must not: add a route outside the test namespace.
"""

from __future__ import annotations

import pytest

from mcastkit import MulticastSocket
from tests.support import kernelstate
from tests.support.addrs import asm4, fresh_group4, lab_host
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel


def test_default_join_follows_the_route_not_the_first_interface(netns: Netns) -> None:
    for i, dev in enumerate(("a0", "a1")):  # a0 first: the lower index
        netns.ip("link", "add", dev, "type", "veth", "peer", "name", f"{dev}p")
        netns.ip("link", "set", f"{dev}p", "up")
        netns.ip("link", "set", dev, "up")
        netns.addr_add(dev, f"{lab_host(72 + i, 1)}/24")
    netns.route_add(f"{asm4(72, 0)}/24", "dev", "a1")
    g = fresh_group4(72)
    with MulticastSocket(4) as rx:
        rx.bind(0)
        m = rx.join(g)
        assert m.ifname == "a1" and m.ifindex == netns.ifindex("a1")
        held = {dev for dev, grp in kernelstate.igmp_groups() if grp == g}
        assert held == {"a1"}
