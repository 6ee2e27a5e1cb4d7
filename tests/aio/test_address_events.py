"""Address events (leftover of the last stop): a membership chosen by a local address
(``interface="198.18.9.2"``) is told when that address goes away or comes back, and on
which interface; address changes that no choice depends on stay silent."""

from __future__ import annotations

from typing import Any

import pytest

import mcastkit.aio as aio
from tests.support.addrs import asm4, lab_host
from tests.support.loops import Runner
from tests.support.topology import VethPair

pytestmark = pytest.mark.kernel
G = asm4(47, 1)


def test_aio_reports_the_address_a_membership_was_chosen_by(veth_pair: VethPair,
                                                            run: Runner[Any]) -> None:
    ns, addr = veth_pair.b, veth_pair.addr_b

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface=addr) as ep:
            assert ep.watching_interfaces, ep.watch_error
            assert ep.memberships[0].ifindex == veth_pair.ifindex_b
            ns.addr_add("eth0", f"{lab_host(9, 77)}/24")  # an address nothing was chosen by
            ns.ip("addr", "del", f"{addr}/24", "dev", "eth0")
            ev = await ep.events.get(timeout_s=5)
            assert (ev.kind, ev.name, ev.index, ev.address) == (
                "address_removed", "eth0", veth_pair.ifindex_b, addr)
            ns.addr_add("eth0", f"{addr}/24")
            ev = await ep.events.get(timeout_s=5)
            assert (ev.kind, ev.name, ev.address) == ("address_added", "eth0", addr)
            assert ep.events.get_nowait() is None  # 198.18.9.77 stayed silent
            assert ep.memberships[0].ifindex == veth_pair.ifindex_b

    with ns.enter():
        run(main())


def test_aio_address_events_of_a_name_chosen_membership_are_silent(veth_pair: VethPair,
                                                                   run: Runner[Any]) -> None:
    ns = veth_pair.b

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="eth0") as ep:
            ns.ip("addr", "del", f"{veth_pair.addr_b}/24", "dev", "eth0")
            ns.ip("link", "set", "eth0", "down")  # a sentinel event after the address one
            ev = await ep.events.get(timeout_s=5)
            assert (ev.kind, ev.name) == ("down", "eth0")

    with ns.enter():
        run(main())
