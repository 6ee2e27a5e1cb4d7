"""MCast across the lab's router: TTL 1 stays on LAN A, TTL 2 crosses to LAN B."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcastkit.compat import MCast
from tests.support.addrs import lab_host
from tests.support.compat import Recorder, pump
from tests.support.topology import Lab, new_group

pytestmark = pytest.mark.lab

Make = Callable[..., MCast]


def test_ttl_1_stays_ttl_2_crosses_the_router(lab: Lab, make: Make, mcast_port: int) -> None:
    group = new_group()
    lab.prime(group)
    with lab.host("h2").enter():
        rec = Recorder()
        rx = rec.attach(make(interface="eth0"))
        rx.local_port = mcast_port
        rx.multicast_group = group
        rx.active = True
    lab.wait_members(group, "h2")
    with lab.host("h1").enter():
        tx = make(interface="eth0")
        tx.active = True
        tx.remote_host, tx.remote_port = group, mcast_port
    tx.time_to_live = 1
    tx.send(b"forbidden: ttl 1")
    tx.time_to_live = 2
    tx.send(b"sentinel: ttl 2")
    pump([rx], lambda: bool(rec.data))
    assert rec.payloads == [b"sentinel: ttl 2"]
    assert rec.data[0].source_address == lab_host(1, 10)


def test_default_ttl_7_crosses_both_routers(lab: Lab, make: Make, mcast_port: int) -> None:
    group = new_group()
    lab.prime(group)
    with lab.host("h4").enter():
        rec = Recorder()
        rx = rec.attach(make(interface="eth0"))
        rx.local_port = mcast_port
        rx.multicast_group = group
        rx.active = True
    with lab.host("h1").enter():
        tx = make(interface="eth0")
        tx.active = True
        tx.remote_host, tx.remote_port = group, mcast_port
    assert tx.time_to_live == 7
    tx.send(b"far")
    pump([rx], lambda: bool(rec.data))
