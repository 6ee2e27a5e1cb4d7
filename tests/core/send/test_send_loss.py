"""Send-side loss and ICMP errors (issue 14.5), against the kernel in a namespace.

Owns: that a datagram the egress queue drops (a ``tbf`` qdisc with a tiny limit on a veth
— ``sch_netem`` is not in every kernel, ``tbf`` is) is never reported as sent: it is
retried (``stats.send_retries``) or counted (``stats.send_drops``, with a transient
``SendError``), so ``received + send_drops == sent`` on sendto, send_batch(loop) and
send_batch(mmsg); and that an ICMP port unreachable for an earlier unicast datagram,
queued on the error queue by IP_RECVERR, breaks neither a later receive nor a later send
and is counted (``stats.icmp_errors``).
Must not: assert speed; the qdisc lives only in the test namespaces.
"""

from __future__ import annotations

import time

import pytest

from mcastkit import MulticastSocket, ReceiveTimeoutError, SendError
from tests.support.addrs import fresh_group4
from tests.support.kernel import across_veth
from tests.support.topology import VethPair

pytestmark = pytest.mark.kernel

N = 300
SIZE = 1000


def _stat(s: MulticastSocket, name: str) -> int:
    return int(getattr(s.stats, name, 0))  # b5d2866 has no send_drops / icmp_errors


def _drain(rx: MulticastSocket, seen: set[bytes], timeout_s: float = 0.0) -> None:
    while True:
        try:
            seen.update(d.data for d in rx.recv_batch(256, timeout_s=timeout_s))
        except ReceiveTimeoutError:
            return


@pytest.mark.parametrize("how", ["sendto", "loop", "mmsg"])
def test_egress_drops_are_retried_or_counted_never_silent(veth_pair: VethPair,
                                                          how: str) -> None:
    """Without IP_RECVERR the kernel drops ~295 of 300 at the qdisc and sendto reports
    success for all (only SndbufErrors moves). Now each drop is retried (the existing
    ENOBUFS back-off) or raised and counted: received + send_drops == sent."""
    veth_pair.a.run("tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "8mbit",
                    "burst", "3000", "limit", "3000")
    g = fresh_group4(71)
    tx, rx, port = across_veth(veth_pair, g)
    with tx, rx:
        seen: set[bytes] = set()
        raised = 0
        payloads = [i.to_bytes(4, "big") + bytes(SIZE - 4) for i in range(N)]
        i = 0
        while i < N:
            try:
                if how == "sendto":
                    tx.sendto(payloads[i], g, port)
                    i += 1
                else:
                    i += tx.send_batch(payloads[i:i + 16], g, port, method=how)
            except SendError as exc:
                assert exc.transient, exc
                raised += 1
                i += 1 + (exc.datagrams_sent or 0)
            _drain(rx, seen)
        _drain(rx, seen, 0.5)  # what the qdisc still held
        drops = _stat(tx, "send_drops")
        assert len(seen) + drops == N, (len(seen), drops, tx.stats)
        assert raised == drops
        assert _stat(tx, "send_retries") + drops > 0  # the kernel's drops were seen


def test_icmp_errors_break_neither_receive_nor_send(netns: object) -> None:
    """A unicast datagram to a closed port comes back as ICMP port unreachable, queued
    on the error queue (IP_RECVERR): the next receive still returns the next datagram,
    the next send still goes out, and a receive with only the error queued waits out
    its timeout without spinning."""
    g = fresh_group4(71)
    with MulticastSocket(4, interface="lo") as s:
        port = s.bind(0)[1]
        s.join(g)
        with MulticastSocket(4) as closed:
            dead = closed.bind(0, "127.0.0.1")[1]
        s.sendto(b"to a closed port", "127.0.0.1", dead)
        s.sendto(b"after", g, port)  # not refused for the earlier datagram's ICMP
        assert s.recv(5.0).data == b"after"
        s.sendto(b"to a closed port", "127.0.0.1", dead)
        t0 = time.process_time()
        with pytest.raises(ReceiveTimeoutError):
            s.recv(0.5)
        assert time.process_time() - t0 < 0.3, "a queued ICMP error made recv() spin"
        assert _stat(s, "icmp_errors") >= 2
