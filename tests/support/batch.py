"""Small helpers shared by the batch tests."""

from __future__ import annotations

import select
from typing import Any

from mcastkit import Datagram, MulticastSocket

WAIT = 5.0


def drain(sock: MulticastSocket, count: int, max_count: int = 64) -> list[Datagram]:
    """recv_batch until ``count`` datagrams arrived (one generous timeout per wait)."""
    out: list[Datagram] = []
    while len(out) < count:
        out += sock.recv_batch(max_count, timeout_s=WAIT)
    return out


def recv_n(sock: MulticastSocket, count: int) -> list[Datagram]:
    return [sock.recv(timeout_s=WAIT) for _ in range(count)]


def meta(d: Datagram) -> tuple[object, ...]:
    """Every field except the arrival time (which differs between two sockets)."""
    return (d.data, d.source, d.port, d.group, d.interface, d.ttl, d.truncated, d.drops,
            d.tos)


def ring_read(ring: Any, fd: int, want: int) -> list[bytes]:
    """Payloads of ``want`` datagrams read from ``fd`` through an accelerator ``Ring``
    (``Ring.recv``, waiting for readiness between calls; fails after :data:`WAIT`)."""
    got: list[bytes] = []
    while len(got) < want:
        assert select.select([fd], [], [], WAIT)[0], f"only {len(got)} of {want} arrived"
        try:
            got += [d.data for d in ring.recv(fd, 256)]
        except BlockingIOError:
            continue
    return got
