"""Field notes §2 group D (receive path) against the real kernel: D1, D2, D3, D8.

Owns: overflow accounting (every datagram delivered or counted, reconciled with
/proc/net/snmp), truncation, the decoy test for IP(V6)_MULTICAST_ALL (technique #22),
and closing: from another thread during a blocking recv, twice, inside a receive loop.
Must not: prove non-delivery with a sleep (see tests/support/kernel.py for the
single-delivery-pass rule used by the decoy test).
"""

from __future__ import annotations

import platform
import socket
import threading

import pytest

from mcastkit import ClosedError, Datagram, ErrorCode, MulticastSocket
from mcastkit import _platform as plat
from mcastkit._platform import Op
from tests.support import kernelstate
from tests.support.addrs import asm4
from tests.support.kernel import (
    WAIT_S,
    Env,
    drain,
    drain_raw,
    env,
    raw_join4,
    raw_join6,
)
from tests.support.netns import wait_until

pytestmark = pytest.mark.kernel
__all__ = ["env"]



def _family(env: Env) -> socket.AddressFamily:
    return socket.AF_INET if env.version == 4 else socket.AF_INET6


# --------------------------------------------------------------------------- D1


def test_d1_every_datagram_is_delivered_or_counted(env: Env) -> None:
    n = 200
    g = env.group()
    with env.rx(rcvbuf_bytes=4096) as rx, env.tx() as tx:
        port = rx.local_address[1]
        rx.join(g)
        before = kernelstate.udp_counters(_family(env))
        for i in range(n):  # the receiver is not reading: its queue overflows
            tx.sendto(i.to_bytes(4, "big") + bytes(996), g, port)
        live = rx.kernel_drops()  # /proc/net/udp(6): counts drops at once
        after = kernelstate.udp_counters(_family(env))
        assert live > 0
        assert after["RcvbufErrors"] - before["RcvbufErrors"] == live
        queued = drain(rx)
        seqs = [int.from_bytes(d.data[:4], "big") for d in queued]
        assert seqs == sorted(set(seqs))  # no duplicates, in order
        assert len(queued) + live == n
        # SO_RXQ_OVFL lags: the queued datagrams were queued before the drops happened
        assert rx.stats.kernel_drops == 0
        tx.sendto(b"later", g, port)
        late = rx.recv(WAIT_S)
        assert late.data == b"later" and late.drops == live
        assert rx.stats.kernel_drops == live == rx.kernel_drops()
        assert rx.stats.datagrams + rx.stats.kernel_drops == n + 1


def test_d1_live_counter_works_without_metadata(env: Env) -> None:
    g = env.group()
    with env.rx(rcvbuf_bytes=4096, metadata=False) as rx, env.tx() as tx:
        rx.join(g)
        before = kernelstate.udp_counters(_family(env))["RcvbufErrors"]
        for _ in range(100):
            tx.sendto(bytes(1000), g, rx.local_address[1])
        drops = rx.kernel_drops()
        assert drops > 0
        assert kernelstate.udp_counters(_family(env))["RcvbufErrors"] - before == drops
        assert kernelstate.socket_drops(rx.sock) == drops
        assert len(drain(rx)) + drops == 100
        assert rx.stats.kernel_drops == 0  # only SO_RXQ_OVFL (metadata) feeds stats


def test_d1_fresh_socket_has_no_drops(env: Env) -> None:
    with env.rx() as rx:
        assert rx.kernel_drops() == 0 and rx.stats.kernel_drops == 0


# --------------------------------------------------------------------------- D2


@pytest.mark.parametrize("metadata", [True, False], ids=["meta", "plain"])
def test_d2_truncation_is_flagged_and_counted(env: Env, metadata: bool) -> None:
    g = env.group()
    with env.rx(recv_size=100, metadata=metadata) as rx, env.tx() as tx:
        rx.join(g)
        port = rx.local_address[1]
        tx.sendto(b"L" * 500, g, port)
        tx.sendto(b"S" * 50, g, port)
        big, small = rx.recv(WAIT_S), rx.recv(WAIT_S)
        assert big.truncated and big.data == b"L" * 100
        assert not small.truncated and small.data == b"S" * 50
        assert rx.stats.truncated == 1 and rx.stats.datagrams == 2


def test_d2_default_buffer_takes_the_largest_datagram(netns: object) -> None:
    with MulticastSocket(4, interface="lo") as rx, MulticastSocket(4, interface="lo") as tx:
        port = rx.bind(0)[1]
        rx.join(asm4(99, 1))
        tx.sendto(bytes(65507), asm4(99, 1), port)
        d = rx.recv(WAIT_S)
        assert len(d.data) == 65507 and not d.truncated


# --------------------------------------------------------------------------- D3 decoys


@pytest.mark.parametrize("metadata", [True, False], ids=["meta", "plain"])
@pytest.mark.parametrize("position", ["first", "last"])
def test_d3_decoys_get_exactly_what_they_joined(env: Env, position: str,
                                                metadata: bool) -> None:
    """Decoys on the same port, created before or after the socket under test: a raw
    socket with the Linux default (MULTICAST_ALL=1) joined to nothing, a raw one joined
    to G2, a MulticastSocket joined to G2, a MulticastSocket joined to nothing, and one
    of the other family. Each datagram reaches exactly the expected set."""
    fam = _family(env)
    g1, g2 = env.group(), env.group()
    opened: list[object] = []

    def ut_make() -> MulticastSocket:
        s = env.rx(reuse_address=True, metadata=metadata)
        opened.append(s)
        return s

    ut = ut_make() if position == "first" else None
    port = ut.local_address[1] if ut else 0

    def raw(join: str | None) -> socket.socket:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        opened.append(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("0.0.0.0" if fam == socket.AF_INET else "::", port))
        if join:
            (raw_join4 if env.version == 4 else raw_join6)(s, join, env.ifindex)
        return s

    def ours(join: str | None, version: int | None = None) -> MulticastSocket:
        s = MulticastSocket(version or env.version, interface=env.ifname if not version else None,
                            reuse_address=True, metadata=metadata)
        opened.append(s)
        s.bind(port)
        if join:
            s.join(join)
        return s

    try:
        raw_any = raw(None)
        port = port or raw_any.getsockname()[1]
        raw_g2 = raw(g2)
        our_g2 = ours(g2)
        our_none = ours(None)
        other = ours(None, version=6 if env.version == 4 else 4)
        if ut is None:
            ut = env.rx(reuse_address=True, metadata=metadata)
            opened.append(ut)
            ut.close()  # env.rx binds port 0; rebind on the shared port instead
            ut = ours(None)
        if not ut.memberships:
            ut.join(g1)

        row = plat.lookup(_family(env), Op.MULTICAST_ALL)
        level, opt = row.level, row.name
        assert raw_any.getsockopt(level, opt) == 1  # the Linux default
        for s in (ut, our_g2, our_none):
            assert s.sock.getsockopt(level, opt) == 0  # ours turns it off

        mine = {"ut": ut, "our_g2": our_g2, "our_none": our_none, "other": other}
        raws = {"raw_any": raw_any, "raw_g2": raw_g2}

        def who_got(first: MulticastSocket, payload: bytes) -> set[str]:
            got: set[str] = set()
            d: Datagram = first.recv(WAIT_S)  # then everyone else already has theirs
            assert d.data == payload
            got.add(next(k for k, v in mine.items() if v is first))
            for k, s in mine.items():
                if s is not first and any(x.data == payload for x in drain(s)):
                    got.add(k)
            for k, r in raws.items():
                if payload in drain_raw(r):
                    got.add(k)
            return got

        with env.tx() as tx:
            tx.sendto(b"to-g1", g1, port)
            assert who_got(ut, b"to-g1") == {"ut", "raw_any", "raw_g2"}
            tx.sendto(b"to-g2", g2, port)
            assert who_got(our_g2, b"to-g2") == {"our_g2", "raw_any", "raw_g2"}
        for s in (ut, our_g2, our_none):
            assert s.stats.filtered == 0  # the kernel kept them out, not our filter
    finally:
        for o in opened:
            o.close()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- D8


_WAITING_SYSCALLS = {7, 45, 47, 271}  # x86_64 poll, recvfrom, recvmsg, ppoll


def _syscall_of(t: threading.Thread) -> int:
    with open(f"/proc/self/task/{t.native_id}/syscall") as f:
        first = f.read().split()[0]
    return int(first) if first.lstrip("-").isdigit() else -1


@pytest.mark.parametrize("call", ["recv", "recv_batch"])
@pytest.mark.parametrize("blocked", [True, False], ids=["blocked", "racing"])
@pytest.mark.parametrize("metadata", [True, False], ids=["meta", "plain"])
def test_d8_close_from_another_thread_wakes_a_blocking_recv(env: Env, metadata: bool,
                                                           blocked: bool, call: str) -> None:
    g = env.group()
    rx = env.rx(metadata=metadata)
    rx.join(g)
    result: list[BaseException | Datagram] = []
    started = threading.Event()

    def reader() -> None:
        started.set()
        try:
            if call == "recv":
                result.append(rx.recv(60))
            else:
                result.extend(rx.recv_batch(8, timeout_s=60))
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    started.wait(WAIT_S)
    # wait until the reader sleeps in poll/recvfrom/recvmsg inside the kernel
    if blocked and platform.machine() == "x86_64":
        wait_until(lambda: _syscall_of(t) in _WAITING_SYSCALLS, WAIT_S, what="reader blocks")
    rx.close()  # blocked or not yet inside the syscall: close() must work either way
    t.join(WAIT_S)
    assert not t.is_alive(), "close() did not wake the blocked recv"
    assert len(result) == 1 and isinstance(result[0], ClosedError)
    assert result[0].code is ErrorCode.CLOSED
    assert g not in env.igmp()


def test_d8_close_is_idempotent_and_releases_memberships(env: Env) -> None:
    groups = [env.group() for _ in range(3)]
    rx = env.rx()
    for g in groups:
        rx.join(g)
    assert set(groups) <= env.igmp()
    rx.close()
    rx.close()
    assert rx.closed and not set(groups) & env.igmp()
    for call in (lambda: rx.join(groups[0]), lambda: rx.recv(1), rx.fileno,
                 lambda: rx.set_ttl(2), lambda: rx.sendto(b"x", groups[0], 9)):
        with pytest.raises(ClosedError) as ei:
            call()
        assert ei.value.code is ErrorCode.CLOSED


def test_d8_close_inside_a_receive_loop_stops_it(env: Env) -> None:
    g = env.group()
    with env.rx() as rx, env.tx() as tx:
        rx.join(g)
        for i in range(3):
            tx.sendto(bytes([i]), g, rx.local_address[1])
        seen: list[bytes] = []
        while True:
            try:
                d = rx.recv(WAIT_S)
            except ClosedError:
                break
            seen.append(d.data)
            rx.close()  # from the "callback": the next recv ends the loop
        assert seen == [b"\x00"]
        assert g not in env.igmp()
