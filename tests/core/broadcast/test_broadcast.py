"""Broadcast in the core (issue 8 item 1) against real kernels.

Topology (built here): namespace ``a`` with two veth links, ``eth0`` to ``b``
(198.18.9.0/24) and ``eth1`` to ``c`` (198.18.10.0/24), and its default route through
``eth1``. A limited broadcast sent with ``interface="eth0"`` must reach ``b`` and not
``c``, although the route's default points at ``c``; a directed broadcast
(198.18.9.255) reaches ``b``; ``socat`` sends and receives on the other side.

Owns: the evidence for broadcast sends (limited and directed, sendto / send /
send_batch / open_sender), broadcast receives (``Datagram.group``, the G1 filter with
and without ``broadcast=True``) and the typed errors (no ``broadcast=True``, no
interface, IPv6, a broadcast address given to ``join``).
Must not: prove non-delivery with a sleep: a sentinel sent afterwards must be the next
datagram received.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mcastkit import (
    ErrorCode,
    McastValueError,
    MulticastSocket,
    SendError,
    open_sender,
)
from tests.support.addrs import VETH_A, VETH_B, VETH_BCAST, asm4, lab_host
from tests.support.fixtures import ensure_netns, require_or_skip
from tests.support.kernel import WAIT_S, drain
from tests.support.netns import Netns, veth
from tests.support.topology import new_port

pytestmark = pytest.mark.kernel

A_B, B_ADDR, A_C, C_ADDR = VETH_A, VETH_B, lab_host(10, 1), lab_host(10, 2)
DIRECTED_B = VETH_BCAST
LIMITED = "255.255.255.255"


@dataclass
class Three:
    a: Netns
    b: Netns
    c: Netns
    port: int

    def rx(self, ns: Netns, **kw: object) -> MulticastSocket:
        """A broadcast receiver bound to the port in ``ns`` (metadata on)."""
        with ns.enter():
            s = MulticastSocket(4, metadata=True, **kw)  # type: ignore[arg-type]
            s.bind(self.port)
        return s

    def tx(self, **kw: object) -> MulticastSocket:
        with self.a.enter():
            return MulticastSocket(4, **kw)  # type: ignore[arg-type]


@pytest.fixture
def three() -> Iterator[Three]:
    ensure_netns()
    made: list[Netns] = []
    try:
        a, b, c = (Netns.fresh(t) for t in ("ba", "bb", "bc"))
        made += [a, b, c]
        veth(a, "eth0", b, "eth0")
        veth(a, "eth1", c, "eth0")
        a.addr_add("eth0", A_B + "/24")
        a.addr_add("eth1", A_C + "/24")
        b.addr_add("eth0", B_ADDR + "/24")
        c.addr_add("eth0", C_ADDR + "/24")
        a.route_add("default", "via", C_ADDR, "dev", "eth1")
        yield Three(a, b, c, new_port())
    finally:
        for ns in made:
            ns.delete()


def sentinel_next(rx: MulticastSocket, send: object) -> None:
    """``send()`` a sentinel; it must be the next (and only) datagram ``rx`` gets."""
    assert callable(send)
    send()
    assert rx.recv(WAIT_S).data == b"sentinel"
    assert drain(rx) == []


# ------------------------------------------------------------------ sending


def test_limited_broadcast_leaves_through_the_chosen_interface_not_the_default(
        three: Three) -> None:
    with three.rx(three.b, broadcast=True) as rb, three.rx(three.c, broadcast=True) as rc, \
            three.tx(broadcast=True, interface="eth0") as tx, \
            three.tx(broadcast=True, interface="eth1") as to_c:
        tx.sendto(b"hello", LIMITED, three.port)
        d = rb.recv(WAIT_S)
        assert (d.data, d.source, d.group) == (b"hello", A_B, LIMITED)
        assert d.interface == three.b.ifindex("eth0")
        sentinel_next(rc, lambda: to_c.sendto(b"sentinel", LIMITED, three.port))
        assert tx.stats.send_errors == 0


def test_without_the_interface_the_kernel_would_use_the_default_route(three: Three) -> None:
    """The control that makes the test above able to fail: SO_BROADCAST alone (no
    IP_UNICAST_IF) sends the limited broadcast along the default route, to ``c``."""
    with three.rx(three.b, broadcast=True) as rb, three.rx(three.c, broadcast=True) as rc, \
            three.a.enter():
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            raw.sendto(b"default", (LIMITED, three.port))
        assert rc.recv(WAIT_S).data == b"default"
        with three.tx(broadcast=True, interface="eth0") as tx:
            sentinel_next(rb, lambda: tx.sendto(b"sentinel", LIMITED, three.port))


def test_directed_broadcast_send_and_send_batch_and_open_sender(three: Three) -> None:
    with three.rx(three.b, broadcast=True) as rb, three.tx(broadcast=True) as tx:
        tx.sendto(b"one", DIRECTED_B, three.port)
        tx.send(b"two", f"{DIRECTED_B}:{three.port}")
        assert tx.send_batch([b"three", b"four"], DIRECTED_B, three.port) == 2
        got = [rb.recv(WAIT_S) for _ in range(4)]
        assert [(d.data, d.group) for d in got] == [
            (b"one", DIRECTED_B), (b"two", DIRECTED_B), (b"three", DIRECTED_B),
            (b"four", DIRECTED_B)]
        with three.a.enter(), open_sender(f"{LIMITED}:{three.port}", broadcast=True,
                                          interface="eth0") as snd:
            snd.send(b"five")
        assert rb.recv(WAIT_S).data == b"five"
        with three.a.enter(), MulticastSocket(4, broadcast=True, interface="eth0") as b2:
            assert b2.send_batch([b"six"] * 3, LIMITED, three.port, method="loop") == 3
        assert [d.data for d in (rb.recv(WAIT_S) for _ in range(3))] == [b"six"] * 3


# ------------------------------------------------------------------ receiving


def test_without_broadcast_true_received_broadcasts_are_filtered_and_counted(
        three: Three) -> None:
    with three.rx(three.b) as rb, three.tx(broadcast=True, interface="eth0") as tx:
        tx.sendto(b"bcast", LIMITED, three.port)
        tx.sendto(b"directed", DIRECTED_B, three.port)
        tx.sendto(b"sentinel", B_ADDR, three.port)  # unicast: admitted
        with three.b.enter():  # which addresses are broadcasts is read in b's namespace
            d = rb.recv(WAIT_S)
            assert (d.data, d.group) == (b"sentinel", B_ADDR)
            assert rb.stats.filtered == 2
            assert drain(rb) == []


def test_socat_receives_our_broadcast_and_sends_one_to_us(three: Three) -> None:
    if shutil.which("socat") is None:
        require_or_skip("socat is not installed (apt-get install socat)")
    port = three.port
    proc = three.b.popen("socat", "-u", f"UDP4-RECV:{port},reuseaddr", "STDOUT",
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        with three.tx(broadcast=True, interface="eth0") as tx:
            fd, got = proc.stdout.fileno(), b""
            for _ in range(50):  # until socat is listening: resend until it prints
                tx.sendto(b"to-socat\n", LIMITED, port)
                if select.select([fd], [], [], 0.1)[0]:
                    got = os.read(fd, 100)
                    break
            assert got.startswith(b"to-socat")
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    with three.rx(three.a, broadcast=True) as ra:
        r = three.b.run("socat", "-u", "STDIN",
                        f"UDP4-DATAGRAM:{DIRECTED_B}:{port},broadcast",
                        input="from-socat", check=False)
        assert r.returncode == 0, r.stderr
        d = ra.recv(WAIT_S)
        assert (d.data, d.source, d.group) == (b"from-socat", B_ADDR, DIRECTED_B)


# ------------------------------------------------------------------ bad input


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_broadcast_without_the_option_names_it_and_changes_nothing(three: Three) -> None:
    with three.rx(three.b, broadcast=True) as rb, three.tx(interface="eth0") as tx:
        with pytest.raises(McastValueError, match=r"broadcast=True") as e:
            tx.sendto(b"no", LIMITED, three.port)
        assert e.value.code == ErrorCode.BAD_ADDRESS
        with pytest.raises(SendError, match=r"broadcast=True") as e2:
            tx.sendto(b"no", DIRECTED_B, three.port)
        assert e2.value.errno == 13
        with pytest.raises(SendError, match=r"broadcast=True"):
            tx.send_batch([b"no", b"no"], DIRECTED_B, three.port)
        assert (tx.stats.send_errors, tx.stats.send_retries) == (0, 0)
        sentinel_next(rb, lambda: tx.sendto(b"sentinel", B_ADDR, three.port))


def test_limited_broadcast_without_an_interface_names_interface(three: Three) -> None:
    with three.rx(three.c, broadcast=True) as rc, three.tx(broadcast=True) as tx:
        with pytest.raises(McastValueError, match=r"interface="):
            tx.sendto(b"no", LIMITED, three.port)
        with three.a.enter(), pytest.raises(McastValueError, match=r"interface="):
            open_sender(f"{LIMITED}:{three.port}", broadcast=True)
        sentinel_next(rc, lambda: tx.sendto(b"sentinel", C_ADDR, three.port))


def test_ipv6_has_no_broadcast(three: Three) -> None:
    before = _fds()
    with three.a.enter(), pytest.raises(McastValueError, match=r"IPv6 has no broadcast.*ff02::1"
                                        ) as e:
        MulticastSocket(6, broadcast=True)
    assert e.value.code == ErrorCode.WRONG_FAMILY
    assert _fds() == before


@pytest.mark.parametrize("addr", [LIMITED, DIRECTED_B])
def test_a_broadcast_address_is_not_a_group_to_join(three: Three, addr: str) -> None:
    with three.tx(broadcast=True, interface="eth0") as s:
        with pytest.raises(McastValueError, match=r"broadcast=True and bind the port") as e:
            s.join(addr)
        assert e.value.code == ErrorCode.NOT_MULTICAST
        assert s.memberships == ()


# ------------------------------------------------------------------ the one-call openers


def test_open_receiver_and_aio_take_a_broadcast_endpoint(three: Three) -> None:
    import asyncio

    from mcastkit import aio, open_receiver

    port = three.port
    with three.b.enter(), open_receiver(f"{LIMITED}:{port}", broadcast=True,
                                        metadata=True) as rb:
        assert rb.local_address[1] == port and rb.memberships == ()
        with three.tx(broadcast=True, interface="eth0") as tx:
            tx.sendto(b"one-call", LIMITED, port)
            assert (rb.recv(WAIT_S).data, rb.stats.filtered) == (b"one-call", 0)

    async def main() -> bytes:
        async with aio.open_multicast(f"{LIMITED}:{port}", broadcast=True,
                                      watch_interfaces=False) as ep, \
                aio.open_sender(f"{DIRECTED_B}:{port}", broadcast=True,
                                watch_interfaces=False) as snd:
            await snd.send(b"async")
            return (await ep.recv(WAIT_S)).data

    with three.b.enter():  # a sender in b to b's own subnet broadcast: looped back
        assert asyncio.run(main()) == b"async"


# ------------------------------------------------------------------ the CLI


def test_cli_send_to_a_broadcast_address_and_listen_broadcast(three: Three) -> None:
    from tests.support.cli import Background, cli, wait_joined

    port, g = three.port, asm4(77, 1)
    with three.rx(three.b, broadcast=True) as rb:
        with three.a.enter():
            r = cli("send", f"{LIMITED}:{port}", "-i", "eth0", "limited")
            assert r.status == 0, r.stderr
            r = cli("send", f"{DIRECTED_B}:{port}", "directed")
            assert r.status == 0, r.stderr
            r = cli("send", f"{LIMITED}:{port}", "nowhere")  # no -i: refused, named
            assert r.status != 0 and "-i IFACE" in r.stderr
        assert [(d.data, d.group) for d in (rb.recv(WAIT_S), rb.recv(WAIT_S))] == [
            (b"limited", LIMITED), (b"directed", DIRECTED_B)]
    with three.b.enter():
        bg = Background("listen", f"{g}:{port}", "-i", "eth0", "--broadcast", "--json",
                        "-c", "1", "--timeout", "20")
        wait_joined(g, "eth0")
    with three.a.enter():
        assert cli("send", f"{DIRECTED_B}:{port}", "--broadcast", "to-listen").status == 0
    out = bg.join()
    assert out.status == 0, out.stderr
    assert [o["data"] for o in out.json()] == ["to-listen"]
