"""Interface watching (field notes B1-B3) against real veth links in namespaces.

The event loop runs with the test's thread inside the namespace that holds the socket
under test (name -> index lookups follow the thread's namespace). Sockets of the other
namespace are created inside a short ``with ns.enter():`` block that never awaits."""

from __future__ import annotations

from typing import Any

import pytest

import mcastkit.aio as aio
from mcastkit import MulticastSocket
from tests.support import kernelstate
from tests.support.addrs import asm4
from tests.support.loops import Runner
from tests.support.netns import veth
from tests.support.topology import VethPair

pytestmark = pytest.mark.kernel
G = asm4(43, 1)


def send_from(pair: VethPair, port: int, payload: bytes) -> None:
    with pair.a.enter(), MulticastSocket(4, interface="eth0") as tx:
        tx.sendto(payload, G, port)


def recreate(pair: VethPair) -> None:
    pair.a.ip("link", "del", "eth0")  # deletes both ends
    veth(pair.a, "eth0", pair.b, "eth0")
    pair.a.addr_add("eth0", pair.addr_a + "/24")
    pair.b.addr_add("eth0", pair.addr_b + "/24")


async def wait_kind(ep: aio.AsyncMulticastSocket, kind: str) -> list[aio.InterfaceEvent]:
    seen: list[aio.InterfaceEvent] = []
    while not seen or seen[-1].kind != kind:
        seen.append(await ep.events.get(timeout_s=5))
    return seen


def test_aio_rejoins_after_interface_recreated(veth_pair: VethPair, run: Runner[Any]) -> None:
    """B3: the link is deleted and re-created under the same name (new index): the socket
    reports removed + rejoined, joins again by name, and traffic flows again."""
    callbacks: list[str] = []

    async def main() -> None:
        ep = aio.open_multicast(f"{G}:0", interface="eth0",
                                on_event=lambda ev: callbacks.append(ev.kind))
        async with ep:
            assert ep.watching_interfaces, ep.watch_error
            port = ep.local_address[1]
            old = ep.memberships[0].ifindex
            send_from(veth_pair, port, b"before")
            assert (await ep.recv(timeout_s=5)).data == b"before"
            recreate(veth_pair)
            seen = await wait_kind(ep, "rejoined")
            kinds = [e.kind for e in seen]
            # deletion first takes the link down, then removes it
            assert kinds[-2:] == ["removed", "rejoined"] and set(kinds) <= {
                "down", "removed", "rejoined"}, kinds
            new = seen[-1].index
            assert new != old and seen[-1].memberships[0].ifindex == new
            assert ep.memberships[0].ifindex == new
            assert ("eth0", G) in kernelstate.memberships()
            send_from(veth_pair, port, b"after")
            assert (await ep.recv(timeout_s=5)).data == b"after"
            assert callbacks[:len(kinds)] == kinds

    with veth_pair.b.enter():
        run(main())


def test_aio_down_and_up_events_keep_membership(veth_pair: VethPair, run: Runner[Any]
                                                ) -> None:
    """B1/B2: link down -> "down" (membership kept), up -> "up", and delivery resumes."""

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="eth0") as ep:
            port = ep.local_address[1]
            send_from(veth_pair, port, b"first")  # also proves the initial state is known
            assert (await ep.recv(timeout_s=5)).data == b"first"
            veth_pair.b.ip("link", "set", "eth0", "down")
            assert [e.kind for e in await wait_kind(ep, "down")] == ["down"]
            assert ("eth0", G) in kernelstate.memberships()
            veth_pair.b.ip("link", "set", "eth0", "up")
            assert [e.kind for e in await wait_kind(ep, "up")] == ["up"]
            send_from(veth_pair, port, b"again")
            assert (await ep.recv(timeout_s=5)).data == b"again"
            assert ep.stats.events == 2

    with veth_pair.b.enter():
        run(main())


def test_aio_no_callback_after_close(veth_pair: VethPair, run: Runner[Any]) -> None:
    """A closed socket's on_event never runs, proven by a second socket that does see the
    event (the sentinel), not by waiting."""
    closed_calls: list[str] = []

    async def main() -> None:
        first = aio.open_multicast(f"{G}:0", interface="eth0", reuse_port=True,
                                   on_event=lambda ev: closed_calls.append(ev.kind))
        port = first.local_address[1]
        second = aio.open_multicast(f"{G}:{port}", interface="eth0", reuse_port=True)
        first.close()
        async with second:
            veth_pair.b.ip("link", "set", "eth0", "down")
            assert (await wait_kind(second, "down"))[-1].name == "eth0"
        assert closed_calls == []

    with veth_pair.b.enter():
        run(main())


def test_aio_sender_follows_recreated_interface(veth_pair: VethPair, run: Runner[Any]
                                                ) -> None:
    """A send-only endpoint whose interface was chosen by name moves to the new index."""

    async def main() -> None:
        with veth_pair.b.enter():
            rx = MulticastSocket(4, interface="eth0", blocking=False)
            port = rx.bind(0)[1]
            rx.join(G)
        with rx:
            async with aio.open_sender(f"{G}:{port}", interface="eth0") as tx:
                recreate(veth_pair)
                ev = (await wait_kind(tx, "rejoined"))[-1]
                assert tx.socket.interface is not None
                assert tx.socket.interface.index == ev.index
                with veth_pair.b.enter():
                    assert rx.refresh_interfaces()  # the plain receiver re-joins by hand
                await tx.send(b"moved")
                arx = aio.AsyncMulticastSocket(rx, watch_interfaces=False)
                assert (await arx.recv(timeout_s=5)).data == b"moved"
                arx.close()

    with veth_pair.a.enter():
        run(main())


def test_aio_every_endpoint_of_a_loop_rejoins(veth_pair: VethPair, run: Runner[Any]) -> None:
    """Three endpoints share the loop's watcher; a re-created interface re-joins each
    one, and each one receives again."""

    async def main() -> None:
        eps = [aio.open_multicast(f"{G}:0", interface="eth0") for _ in range(3)]
        try:
            assert len({id(ep._events.hub) for ep in eps}) == 1
            recreate(veth_pair)
            for ep in eps:
                ev = (await wait_kind(ep, "rejoined"))[-1]
                assert ep.memberships[0].ifindex == ev.index
            for i, ep in enumerate(eps):
                send_from(veth_pair, ep.local_address[1], b"again %d" % i)
                assert (await ep.recv(timeout_s=5)).data == b"again %d" % i
        finally:
            for ep in eps:
                ep.close()

    with veth_pair.b.enter():
        run(main())
