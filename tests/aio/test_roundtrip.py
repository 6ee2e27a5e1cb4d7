"""Receive and send through the event loop on real sockets (``lo`` or veth, in a fresh
namespace), on the stock loop and on uvloop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import mcastkit.aio as aio
from mcastkit import McastStateError, McastValueError, MulticastSocket, ReceiveTimeoutError
from tests.support.addrs import asm4, asm6, lab_host, ssm4
from tests.support.loops import Runner
from tests.support.netns import Netns
from tests.support.topology import VethPair

pytestmark = pytest.mark.kernel
G = asm4(41, 1)


def sender() -> MulticastSocket:
    return MulticastSocket(4, interface="lo")


def test_aio_recv_round_trip_on_lo(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo", metadata=True) as ep:
            port = ep.local_address[1]
            with sender() as tx:
                tx.sendto(b"hello", G, port)
            d = await ep.recv(timeout_s=5)
            assert d.data == b"hello" and d.group == G and d.port > 0
            assert ep.stats.delivered == 1 and ep.stats.received == 1

    run(main())


def test_aio_send_and_async_for(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            port = ep.local_address[1]
            async with aio.open_sender(f"{G}:{port}", interface="lo") as tx:
                for i in range(20):
                    assert await tx.send(b"%d" % i) == len(b"%d" % i)
            got = []
            async for d in ep:
                got.append(int(d.data))
                if len(got) == 20:
                    break
            assert got == list(range(20))
            await ep.send(b"self", f"{G}:{port}")  # the receiving endpoint can send too
            assert (await ep.recv(timeout_s=5)).data == b"self"

    run(main())


def test_aio_many_datagrams_drained_in_one_wakeup(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo", rcvbuf_bytes=1 << 20) as ep:
            port = ep.local_address[1]
            with sender() as tx:  # the loop cannot run while we send: one backlog
                for i in range(200):
                    tx.sendto(b"%d" % i, G, port)
            got = await ep.recv_many(500, timeout_s=5)
            assert [int(d.data) for d in got] == list(range(200))
            st = ep.stats
            assert st.wakeups == 1 and st.max_batch == 200 and st.delivered == 200

    run(main())


def test_aio_max_per_wakeup_caps_each_drain(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        ep = aio.open_multicast(f"{G}:0", interface="lo", rcvbuf_bytes=1 << 20,
                                max_per_wakeup=50)
        async with ep:
            port = ep.local_address[1]
            with sender() as tx:
                for i in range(200):
                    tx.sendto(b"%d" % i, G, port)
            ticks = 0

            async def ticker() -> None:  # other callbacks run between the drains
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            t = asyncio.create_task(ticker())
            got = []
            while len(got) < 200:
                got.extend(await ep.recv_many(500, timeout_s=5))
            t.cancel()
            assert [int(d.data) for d in got] == list(range(200))
            assert ep.stats.wakeups == 4 and ep.stats.max_batch == 50 and ticks >= 3

    run(main())


def test_aio_recv_timeout(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo") as ep:
            with pytest.raises(ReceiveTimeoutError):
                await ep.recv(timeout_s=0.05)
            port = ep.local_address[1]
            with sender() as tx:
                tx.sendto(b"after", G, port)
            assert (await ep.recv(timeout_s=5)).data == b"after"  # nothing was consumed

    run(main())


def test_aio_runtime_join_and_leave(netns: Netns, run: Runner[Any]) -> None:
    g2 = asm4(41, 2)

    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo", metadata=True) as ep:
            port = ep.local_address[1]
            m = ep.join(g2)
            assert m.group == g2 and m.ifname == "lo" and len(ep.memberships) == 2
            with sender() as tx:
                tx.sendto(b"two", g2, port)
                assert (await ep.recv(timeout_s=5)).group == g2
                ep.leave(g2)
                tx.sendto(b"gone", g2, port)  # must not arrive
                tx.sendto(b"sentinel", G, port)
            d = await ep.recv(timeout_s=5)
            assert d.data == b"sentinel" and ep.stats.queued == 0

    run(main())


def test_aio_source_specific_endpoint_and_block(netns: Netns, run: Runner[Any]) -> None:
    netns.addr_add("lo", f"{lab_host(41, 1)}/32")
    netns.addr_add("lo", f"{lab_host(41, 2)}/32")

    async def main() -> None:
        spec = f"{lab_host(41, 1)},{ssm4(41, 0, 1)}:0"
        async with aio.open_multicast(spec, interface="lo") as ep:
            port = ep.local_address[1]
            for src in (lab_host(41, 2), lab_host(41, 1)):  # only the second is wanted
                with sender() as tx:
                    tx.sock.bind((src, 0))
                    tx.sendto(src.encode(), ssm4(41, 0, 1), port)
            assert (await ep.recv(timeout_s=5)).data == lab_host(41, 1).encode()
            ep.leave_source(lab_host(41, 1), ssm4(41, 0, 1))
            ep.join(G)
            ep.block_source(lab_host(41, 2), G)
            for src in (lab_host(41, 2), lab_host(41, 1)):
                with sender() as tx:
                    tx.sock.bind((src, 0))
                    tx.sendto(src.encode(), G, port)
            assert (await ep.recv(timeout_s=5)).data == lab_host(41, 1).encode()
            ep.unblock_source(lab_host(41, 2), G)

    run(main())


def test_aio_send_only_endpoint_refuses_recv(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_sender(f"{G}:5000", interface="lo") as tx:
            with pytest.raises(McastStateError, match="send-only"):
                await tx.recv()

    run(main())


def test_aio_open_outside_a_loop_is_a_clear_error(netns: Netns) -> None:
    with pytest.raises(McastStateError, match="running event loop"):
        aio.open_multicast(f"{G}:0", interface="lo")


@pytest.mark.parametrize("kw", [{"drop_policy": "drop-some"}, {"queue_size": 0},
                                {"max_per_wakeup": 0}])
def test_aio_bad_options_open_nothing(netns: Netns, run_stock: Runner[Any],
                                      kw: dict[str, Any]) -> None:
    from tests.support import kernelstate

    async def main() -> None:
        with pytest.raises(McastValueError):
            aio.open_multicast(f"{G}:0", interface="lo", **kw)

    run_stock(main())
    assert not any(g == G for _, g in kernelstate.memberships())


def test_aio_send_waits_for_writability(veth_pair: VethPair, run: Runner[Any]) -> None:
    """A rate-limited qdisc fills the send buffer: send() must wait (not drop, not raise)
    and every datagram must arrive, in order."""
    veth_pair.a.run("tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "2mbit",
                    "burst", "1600", "limit", "200000")
    n = 40

    async def main() -> None:
        with veth_pair.b.enter():
            rx = aio.open_multicast(f"{G}:0", interface="eth0", rcvbuf_bytes=1 << 20)
        port = rx.local_address[1]
        with veth_pair.a.enter():
            tx = aio.open_sender(f"{G}:{port}", interface="eth0", sndbuf_bytes=4096)
        async with rx, tx:
            for i in range(n):
                await tx.send(b"%04d" % i + b"." * 1000)
            got = [int((await rx.recv(timeout_s=10)).data[:4]) for _ in range(n)]
            assert got == list(range(n))
            assert tx.stats.send_waits > 0 and tx.stats.send_errors == 0

    run(main())


def test_aio_ipv6_round_trip_on_veth(veth_loop: Any, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"[{asm6('41')}]:0", interface="vb", metadata=True) as ep:
            port = ep.local_address[1]
            async with aio.open_sender(f"[{asm6('41')}]:{port}", interface="va") as tx:
                await tx.send(b"six")
            d = await ep.recv(timeout_s=5)
            assert d.data == b"six" and d.group == asm6("41")

    run(main())


def test_aio_zero_length_and_maximum_datagrams(netns: Netns, run: Runner[Any]) -> None:
    async def main() -> None:
        async with aio.open_multicast(f"{G}:0", interface="lo", rcvbuf_bytes=1 << 20) as ep:
            port = ep.local_address[1]
            with sender() as tx:
                tx.sendto(b"", G, port)
                tx.sendto(b"z" * 65507, G, port)
            a, b = (await ep.recv(timeout_s=5)), (await ep.recv(timeout_s=5))
            assert a.data == b"" and len(b.data) == 65507 and not b.truncated

    run(main())


def test_aio_send_many_waits_and_delivers_all(veth_pair: VethPair, run: Runner[Any]) -> None:
    """send_many through the core's batch path on a rate-limited link: all arrive, in
    order, and the sender waited for writability at least once."""
    veth_pair.a.run("tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "4mbit",
                    "burst", "1600", "limit", "200000")
    n = 60

    async def main() -> None:
        with veth_pair.b.enter():
            rx = aio.open_multicast(f"{G}:0", interface="eth0", rcvbuf_bytes=1 << 20)
        port = rx.local_address[1]
        with veth_pair.a.enter():
            tx = aio.open_sender(f"{G}:{port}", interface="eth0", sndbuf_bytes=4096)
        async with rx, tx:
            # unequal sizes: sendmmsg (not one GSO super-packet), so the buffer fills
            sent = await tx.send_many([b"%04d" % i + b"." * (996 - i) for i in range(n)],
                                      G, port)
            assert sent == n
            got = [int((await rx.recv(timeout_s=10)).data[:4]) for _ in range(n)]
            assert got == list(range(n)) and tx.stats.send_waits > 0

    run(main())
