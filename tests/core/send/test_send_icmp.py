"""A queued ICMP error meets every send path the same way (issue 14.5 follow-up).

An ICMP port unreachable for an earlier unicast datagram (IP_RECVERR on) sits on the
sender's error queue and fails the socket's next send once, whatever that send is. Every
send path (sendto, sendto_from, send_batch by UDP GSO, sendmmsg, the sendto loop and the
one-payload shortcut, on every backend) must hand it to the one drain: the error is
counted once in ``stats.icmp_errors``, the error queue is left empty, the send itself
goes out whole and is not counted as a failed send. Before this file the GSO path
swallowed it (not counted, queue left full) and ``sendto_from`` raised it as its own
failure.
Must not: leave the test namespaces (the ICMP comes back from the veth peer's kernel).
"""

from __future__ import annotations

import select
import socket

import pytest

from mcastkit import MulticastSocket, ReceiveTimeoutError
from tests.support.addrs import fresh_group4
from tests.support.batch import WAIT
from tests.support.kernel import across_veth
from tests.support.topology import VethPair

pytestmark = pytest.mark.kernel

N = 40
PATHS = ["sendto", "sendto_from", "one", "loop", "mmsg", "gso", "auto"]


def _closed_port(pair: VethPair) -> int:
    """A UDP port nothing listens on in namespace b (bound once, then closed)."""
    with pair.b.enter():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((pair.addr_b, 0))
        port = int(s.getsockname()[1])
        s.close()
    return port


def _errqueue_empty(tx: MulticastSocket) -> bool:
    try:
        tx.sock.recvmsg(1, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    return False


def _wait_for_icmp(tx: MulticastSocket) -> None:
    """Until the peer's port unreachable is on tx's error queue (POLLERR)."""
    p = select.poll()
    p.register(tx.sock.fileno(), 0)  # POLLERR is always reported
    assert p.poll(int(WAIT * 1000)), "no ICMP error came back from the veth peer"


def _send(tx: MulticastSocket, path: str, payloads: list[bytes], group: str, port: int,
          source: str) -> int:
    """Send ``payloads`` by ``path``; returns how many datagrams went out."""
    if path == "sendto":
        for p in payloads:
            assert tx.sendto(p, group, port) == len(p)
        return len(payloads)
    if path == "sendto_from":
        for p in payloads:
            assert tx.sendto_from(p, group, port, source) == len(p)
        return len(payloads)
    if path == "one":
        return sum(tx.send_batch([p], group, port) for p in payloads)
    return tx.send_batch(payloads, group, port, method=path)


@pytest.mark.parametrize("path", PATHS)
def test_queued_icmp_error_is_drained_once_on_every_send_path(
        veth_pair: VethPair, impl: str, path: str) -> None:
    veth_pair.b.run("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
    g = fresh_group4(73)
    dead = _closed_port(veth_pair)
    tx, rx, port = across_veth(veth_pair, g)
    with tx, rx:
        warm = [b"warm-%02d" % i for i in range(N)]
        assert _send(tx, path, warm, g, port, veth_pair.addr_a) == N  # targets cached
        # an earlier datagram to a closed port, sent around the send path (its caches
        # keep the group as the last target, so the fast paths are the ones tested)
        tx.sock.sendto(b"to a closed port", (veth_pair.addr_b, dead))
        _wait_for_icmp(tx)
        payloads = [b"after-%02d" % i for i in range(N)]
        assert _send(tx, path, payloads, g, port, veth_pair.addr_a) == N
        assert tx.stats.icmp_errors == 1, tx.stats
        assert tx.stats.send_errors == 0, tx.stats
        assert _errqueue_empty(tx), "the ICMP error is still queued"
        if path == "gso":
            assert tx._tx._batch is not None and tx._tx._batch.gso_ok is True
        got: list[bytes] = []
        while len(got) < 2 * N:
            got += [d.data for d in rx.recv_batch(256, timeout_s=WAIT)]
        assert got == warm + payloads
        with pytest.raises(ReceiveTimeoutError):
            rx.recv(timeout_s=0.2)  # nothing sent twice
