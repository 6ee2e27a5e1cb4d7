"""The library face: ``Relay`` inside an asyncio program, and what happens when one of its
tasks fails (the relay stops as a whole and says why, instead of relaying half)."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from mcastkit import parse_endpoint
from mcastkit.relay import InterfaceSpec, Relay, RelayConfig, Rule
from tests.support.topology import new_group, new_port

pytestmark = pytest.mark.kernel


def _config(g: str, port: int) -> RelayConfig:
    return RelayConfig(interfaces=(InterfaceSpec(name="va"), InterfaceSpec(name="vb")),
                       rules=(Rule(name="r", endpoints=(parse_endpoint(f"{g}:{port}"),)),))


def _send(g: str, port: int, ifname: str, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        idx = socket.if_nametoindex(ifname)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                     bytes(8) + idx.to_bytes(4, sys.byteorder))
        s.sendto(data, (g, port))


def test_relay_in_an_asyncio_program(veth_loop: object) -> None:
    g, port = new_group(), new_port()

    async def main() -> tuple[int, list[tuple[str, str]], bool]:
        async with Relay(_config(g, port)) as relay:
            held = relay.memberships
            assert relay.ready
            for i in range(3):
                _send(g, port, "va", b"x%d" % i)  # leaves va, arrives on vb
            for _ in range(200):
                if relay.stats().totals["relayed"] == 3:
                    break
                await asyncio.sleep(0.01)
            n = relay.stats().totals["relayed"]
        return n, held, relay.closed

    n, held, closed = asyncio.run(main())
    assert n == 3 and closed
    assert sorted(held) == [("va", g), ("vb", g)]


def test_a_failing_task_stops_the_relay_and_says_why(veth_loop: object,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    g, port = new_group(), new_port()

    async def main() -> Relay:
        relay = Relay(_config(g, port))
        await relay.start()

        def broken(*a: object) -> None:
            raise RuntimeError("injected")

        relay._ingest = broken  # type: ignore[method-assign]
        _send(g, port, "va", b"boom")
        await asyncio.wait_for(relay.wait_closed(), 10)
        return relay

    relay = asyncio.run(main())
    assert relay.closed and relay.failure is not None and "injected" in relay.failure
    assert "stopping" in caplog.text
    assert relay.memberships == []
