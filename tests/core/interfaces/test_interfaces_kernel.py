"""Interface lookups against the kernel (in a fresh namespace): what they return matches
``ip -j addr`` for every interface, and it is never stale: an address added or removed,
a rename, a delete and re-create are seen by the very next lookup (issue 13 item 7:
lookups ask the kernel about the one interface in question, nothing is cached).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import Any

import pytest

from mcastkit import InterfaceNotFoundError, list_interfaces, resolve_interface
from tests.support.addrs import lab_host
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel


def ip_view(ns: Netns) -> dict[str, dict[str, Any]]:
    """name -> {index, mtu, up, v4: [...], v6: [...]} as iproute2 reports it."""
    out: dict[str, dict[str, Any]] = {}
    for link in json.loads(ns.ip("-j", "addr", "show").stdout):
        addrs = link.get("addr_info", [])
        out[link["ifname"]] = {
            "index": link["ifindex"], "mtu": link["mtu"], "up": "UP" in link["flags"],
            "v4": [a["local"] for a in addrs if a["family"] == "inet"],
            "v6": [a["local"] for a in addrs if a["family"] == "inet6"],
        }
    return out


def view_of(itf: Any) -> dict[str, Any]:
    assert itf.flags is not None
    return {"index": itf.index, "mtu": itf.mtu, "up": itf.flags.up,
            "v4": [str(a) for a in itf.addresses if a.version == 4],
            "v6": [str(a) for a in itf.addresses if a.version == 6]}


def test_lookups_match_iproute2_for_every_interface(netns: Netns) -> None:
    for i in range(24):
        netns.ip("link", "add", f"br{i}", "type", "bridge")
        if i % 3 == 0:
            netns.ip("link", "set", f"br{i}", "up", "mtu", str(1280 + i))
        if i % 2 == 0:
            netns.addr_add(f"br{i}", f"{lab_host(i, 1)}/24")
            netns.addr_add(f"br{i}", f"{lab_host(i, 2)}/24")
            netns.addr_add(f"br{i}", f"fd00:{i:x}::1/64")
    netns.addr_add("lo", f"{lab_host(200, 1)}/32")
    want = ip_view(netns)
    listed = {itf.name: view_of(itf) for itf in list_interfaces()}
    assert listed == want
    for name, row in want.items():
        assert view_of(resolve_interface(name)) == row
        assert view_of(resolve_interface(row["index"])) == row
        for a in row["v4"] + [v for v in row["v6"] if not v.startswith("fe80")]:
            assert resolve_interface(ipaddress.ip_address(a)).name == name
            assert resolve_interface(a).name == name


def test_a_lookup_is_never_stale(netns: Netns) -> None:
    netns.ip("link", "add", "br0", "type", "bridge")
    first = resolve_interface("br0")
    assert first.addresses == ()
    netns.addr_add("br0", f"{lab_host(7, 1)}/24")
    assert [str(a) for a in resolve_interface("br0").addresses] == [lab_host(7, 1)]
    assert resolve_interface(lab_host(7, 1)).index == first.index
    # the address moves to another interface: the next lookup follows it
    netns.ip("link", "add", "br1", "type", "bridge")
    netns.ip("addr", "del", f"{lab_host(7, 1)}/24", "dev", "br0")
    netns.addr_add("br1", f"{lab_host(7, 1)}/24")
    assert resolve_interface(lab_host(7, 1)).name == "br1"
    assert resolve_interface("br0").addresses == ()
    # renamed: the old name is gone at once, the index keeps its new name
    netns.ip("link", "set", "br0", "name", "brx")
    with pytest.raises(InterfaceNotFoundError):
        resolve_interface("br0")
    assert resolve_interface(first.index).name == "brx"
    # deleted and re-created under the old name: a new index, never the vanished one
    netns.ip("link", "del", "brx")
    with pytest.raises(InterfaceNotFoundError):
        resolve_interface(first.index)
    netns.ip("link", "add", "br0", "type", "bridge")
    again = resolve_interface("br0")
    assert again.index != first.index and again.index == socket.if_nametoindex("br0")
    # up / mtu changes are seen too
    netns.ip("link", "set", "br0", "up", "mtu", "1300")
    itf = resolve_interface("br0")
    assert itf.flags is not None and itf.flags.up and itf.mtu == 1300
