"""Groups per socket: one socket joined to 1, 10, 100 and 1000 groups on ``lo`` drains
traffic spread over all of them (one datagram per group in turn), mcastkit's
``recv_batch`` with metadata against a plain ``recvfrom`` loop on a socket joined the same
way; and the cost of ``close()`` with 1000 and 4000 groups joined against a plain close.
The bench namespace's ``net.ipv4.igmp_max_memberships`` and ``net.core.optmem_max`` are
raised for this (both are per namespace; outside one the larger rows are n/a)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import mcastkit

from ._util import (
    Options,
    Result,
    Row,
    fill,
    measure,
    netns_sysctl,
    now,
    plain_join,
    plain_receiver,
    port,
    receiver,
    timed,
)

RECV_AXIS = [1, 10, 100, 1000]
CLOSE_AXIS = [1000, 4000]


def group_list(n: int) -> list[str]:
    """``n`` distinct lab groups (239.255.100.1 onwards)."""
    return [f"239.255.{100 + i // 250}.{1 + i % 250}" for i in range(n)]


@contextmanager
def many_groups() -> Iterator[None]:
    """Let one socket hold 5000 IPv4 memberships inside the bench namespace (outside one,
    say so: the rows that need more than the defaults become n/a)."""
    old = []
    try:
        for k, v in (("net.ipv4.igmp_max_memberships", 5000), ("net.core.optmem_max", 4 << 20)):
            old.append((k, netns_sysctl(k, v)))
    except RuntimeError as e:
        print(f"groups: {e}", file=sys.stderr)
    try:
        yield
    finally:
        for k, v in old:
            netns_sysctl(k, v)


def _drain(kind: str, count: int, n: int) -> float:
    gs = group_list(n)
    p = port()
    if kind == "recvfrom loop":
        s = plain_receiver(p, join=False)
        for g in gs:
            plain_join(s, g)
        rx = None
    else:
        rx = receiver(p, metadata=True, group=gs[0])
        for g in gs[1:]:
            rx.join(g)
        rx.setblocking(False)
        s = rx.sock
    try:
        s.setblocking(False)
        fill(p, count, 64, groups=gs, per=1)

        def go() -> int:
            k = 0
            try:
                if rx is None:
                    rf = s.recvfrom
                    while True:
                        rf(65535)
                        k += 1
                else:
                    rb = rx.recv_batch
                    while True:
                        k += len(rb(256))
            except BlockingIOError:
                return k

        return timed(go)
    finally:
        (s if rx is None else rx).close()


def _close(kind: str, n: int) -> float:
    """Milliseconds one close() takes with ``n`` groups joined."""
    gs = group_list(n)
    p = port()
    if kind == "plain close":
        s = plain_receiver(p, join=False, big=False)
        for g in gs:
            plain_join(s, g)
        t = now()
        s.close()
    else:
        with mcastkit.MulticastSocket(4, interface="lo", reuse_port=True) as rx:
            rx.bind(p)
            for g in gs:
                rx.join(g)
            t = now()
            rx.close()
    return (now() - t) * 1000


def run(o: Options) -> list[Result]:
    recv_rows: list[Row] = [
        ("recvfrom loop", "recvfrom loop", lambda n: _drain("recvfrom loop", o.count, n)),
        ("mcastkit recv_batch+meta", "recvfrom loop",
         lambda n: _drain("recv_batch+meta", o.count, n)),
    ]
    close_rows: list[Row] = [
        ("plain close", "plain close", lambda n: _close("plain close", n)),
        ("mcastkit close()", "plain close", lambda n: _close("mcastkit close()", n)),
    ]
    with many_groups():
        out = measure("groups", RECV_AXIS, lambda _n: recv_rows, o.runs)
        out += measure("groups", CLOSE_AXIS, lambda _n: close_rows, o.runs, unit="ms",
                       lower_is_better=True)
    return out
