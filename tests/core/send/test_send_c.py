"""The accelerator's sendmmsg (``mcastkit._speedups.sendmmsg``) and send_batch on top of it.

Every path must put the same datagrams on the wire as the ctypes and loop paths (order,
sizes 0..65507, IPv4 on lo and IPv6 on a veth loop), report errors and partial sends the
same way (``datagrams_sent``), refuse bad arguments cleanly and survive payloads changed
by another thread. Run under ``scripts/asan-batch`` too: the sanitizer turns a silent
corruption or a leaked buffer view into a failure.
"""

from __future__ import annotations

import array
import errno
import os
import select
import socket
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

import pytest

import mcastkit
from mcastkit import DatagramTooLargeError, MulticastSocket, WouldBlockError, _io
from mcastkit._platform._structs import pack_dest
from tests.support.addrs import asm4, asm6
from tests.support.batch import WAIT, recv_n
from tests.support.fixtures import require_or_skip
from tests.support.netns import Netns
from tests.support.topology import VethLoop

G = asm4(6, 31)
G6 = asm6("6:31")
#: sizes around the interesting edges, up to the IPv4 UDP maximum
SIZES = [0, 1, 7, 63, 64, 65, 1399, 1400, 1472, 1473, 4096, 9000, 32768, 65507]

Payload = bytes | bytearray | memoryview


def _c_or_skip() -> None:
    if "c" not in _io.available_impls() or _io._c.sendmmsg is None:
        if os.environ.get("MCASTKIT_REQUIRE_SPEEDUPS") == "1":
            pytest.fail("mcastkit._speedups.sendmmsg is not built (MCASTKIT_REQUIRE_SPEEDUPS=1)")
        pytest.skip("the accelerator (with sendmmsg) is not built")


@pytest.fixture
def speedups() -> ModuleType:
    """The compiled module (skips without it, fails with MCASTKIT_REQUIRE_SPEEDUPS=1)."""
    _c_or_skip()
    from mcastkit import _speedups

    return _speedups


@pytest.fixture
def each_impl() -> Iterator[list[str]]:
    """Every batch implementation available here (``"c"`` required); restores the default."""
    _c_or_skip()
    try:
        yield _io.available_impls()
    finally:
        _io.force_impl(None)


def _payloads(sizes: list[int], tag: int = 0) -> list[bytes]:
    """Distinct, position-dependent contents: a reordered or torn datagram cannot match."""
    out = []
    for i, n in enumerate(sizes):
        seed = bytes((i * 31 + tag * 7 + k) % 251 for k in range(251))
        out.append((seed * (n // 251 + 1))[:n])
    return out


def _receiver(port: int) -> MulticastSocket:
    return mcastkit.open_receiver(f"{G}:{port}", interface="lo", rcvbuf_bytes=16 << 20)


def _v4_sa(port: int) -> bytes:
    return pack_dest((G, port))[:16]


# --------------------------------------------------------------------------- identical


@pytest.mark.kernel
@pytest.mark.parametrize("method", ["mmsg", "auto"])
def test_identical_datagrams_every_path_ipv4(netns: Netns, each_impl: list[str],
                                             mcast_port: int, method: str) -> None:
    """Sizes 0..65507, unequal (so "auto" takes sendmmsg too): the same datagrams in the
    same order from the C, ctypes and loop paths."""
    payloads = _payloads(SIZES) + _payloads(SIZES[::-1], tag=1)
    got: dict[str, list[bytes]] = {}
    with _receiver(mcast_port) as rx:
        for impl in each_impl:
            _io.force_impl(impl)
            with MulticastSocket(4, interface="lo") as tx:
                assert tx.send_batch(payloads, G, mcast_port, method=method) == len(payloads)
                assert tx._tx._batch is not None
                assert tx._tx._batch.impl == impl
                assert tx.stats.send_errors == 0
            got[impl] = [d.data for d in recv_n(rx, len(payloads))]
    for impl in each_impl:
        assert got[impl] == payloads, impl


@pytest.mark.kernel
def test_identical_datagrams_every_path_ipv6(veth_loop: VethLoop, each_impl: list[str],
                                             mcast_port: int) -> None:
    """The same over IPv6 (sockaddr_in6; fragmented above the veth MTU)."""
    payloads = _payloads(SIZES, tag=2)
    with mcastkit.open_receiver(f"[{G6}]:{mcast_port}", interface="vb",
                                rcvbuf_bytes=16 << 20) as rx:
        for impl in each_impl:
            _io.force_impl(impl)
            with MulticastSocket(6, interface="va") as tx:
                assert tx.send_batch(payloads, G6, mcast_port, method="mmsg") == len(payloads)
                assert tx._tx._batch is not None and tx._tx._batch.impl == impl
            assert [d.data for d in recv_n(rx, len(payloads))] == payloads, impl


@pytest.mark.kernel
def test_buffer_kinds(netns: Netns, each_impl: list[str], mcast_port: int) -> None:
    """bytes, bytearray, memoryview slices and casts, read-only views, array.array: the
    bytes each one exposes, on every path."""
    base = bytearray(range(256)) * 4
    payloads: list[Payload] = [
        b"plain",
        bytearray(b"a bytearray"),
        memoryview(base)[3:700],
        memoryview(bytes(base)).toreadonly()[:0],
        memoryview(base).cast("I")[10:20],
        memoryview(bytearray(b"\x00" * 9)),
        bytearray(),
    ]
    arr = array.array("H", range(100))
    payloads.append(memoryview(arr))
    want = [bytes(p) for p in payloads]
    with _receiver(mcast_port) as rx:
        for impl in each_impl:
            _io.force_impl(impl)
            with MulticastSocket(4, interface="lo") as tx:
                assert tx.send_batch(payloads, G, mcast_port, method="mmsg") == len(payloads)
            assert [d.data for d in recv_n(rx, len(payloads))] == want, impl


@pytest.mark.kernel
def test_sender_follows_force_impl(netns: Netns, each_impl: list[str], mcast_port: int) -> None:
    """An existing socket's sender switches between "c" and "ctypes" at the next call."""
    with _receiver(mcast_port) as rx, MulticastSocket(4, interface="lo") as tx:
        sent: list[bytes] = []
        for impl in ("c", "ctypes", "c"):
            _io.force_impl(impl)
            batch = [b"%s-%d" % (impl.encode(), i) * (i + 1) for i in range(70)]
            assert tx.send_batch(batch, G, mcast_port, method="mmsg") == 70
            assert tx._tx._batch is not None and tx._tx._batch.impl == impl
            sent += batch
        assert [d.data for d in recv_n(rx, len(sent))] == sent


@pytest.mark.kernel
def test_more_than_one_call(netns: Netns, each_impl: list[str], mcast_port: int) -> None:
    """2500 payloads: over the stack arrays (64) and the per-call cap (1024)."""
    payloads = [b"%06d" % i + b"." * (i % 5) for i in range(2500)]
    with _receiver(mcast_port) as rx:
        for impl in each_impl:
            _io.force_impl(impl)
            with MulticastSocket(4, interface="lo") as tx:
                assert tx.send_batch(payloads, G, mcast_port, method="mmsg") == 2500
            assert [d.data for d in recv_n(rx, 2500)] == payloads, impl


# --------------------------------------------------------------------------- errors


@pytest.mark.kernel
@pytest.mark.parametrize("bad_at", [0, 2, 63, 64, 100, 1023, 1024, 1030])
@pytest.mark.parametrize("method", ["mmsg", "auto"])
def test_emsgsize_mid_batch_same_everywhere(netns: Netns, each_impl: list[str],
                                            mcast_port: int, bad_at: int, method: str) -> None:
    """A too-large payload at ``bad_at``: DatagramTooLargeError with datagrams_sent ==
    bad_at on every path, exactly the payloads before it delivered, nothing after."""
    payloads = [b"%05d" % i + b"-" * (i % 3) for i in range(bad_at + 5)]
    payloads[bad_at] = b"x" * 70000
    with _receiver(mcast_port) as rx:
        for impl in each_impl:
            _io.force_impl(impl)
            with MulticastSocket(4, interface="lo") as tx:
                with pytest.raises(DatagramTooLargeError) as ei:
                    tx.send_batch(payloads, G, mcast_port, method=method)
                assert ei.value.datagrams_sent == bad_at, impl
                assert ei.value.errno == errno.EMSGSIZE
                assert tx.stats.send_errors == 1
                tx.sendto(b"sentinel", G, mcast_port)
            got = [d.data for d in recv_n(rx, bad_at + 1)]
            assert got == [*payloads[:bad_at], b"sentinel"], impl


def _tbf(ns: Netns, rate: str, verb: str = "change") -> None:
    """Hold lo's egress in a token bucket: sent skbs stay charged to the send buffer."""
    r = ns.run("tc", "qdisc", verb, "dev", "lo", "root", "tbf", "rate", rate, "burst", "1600",
               "limit", "10000000", check=False)
    if r.returncode != 0:
        require_or_skip(f"tc tbf on lo: {r.stderr.strip()}")


@pytest.mark.kernel
def test_nonblocking_partial_send(netns: Netns, each_impl: list[str], mcast_port: int) -> None:
    """Non-blocking socket, small send buffer, egress held: send_batch returns the
    partial count (> 0, < all), exactly that prefix is delivered in order, and the next
    call with nothing sendable raises WouldBlockError with datagrams_sent == 0."""
    _tbf(netns, "8kbit", "add")
    payloads = _payloads([1000] * 200, tag=3)
    with _receiver(mcast_port) as rx:
        for impl in each_impl:
            _io.force_impl(impl)
            with MulticastSocket(4, interface="lo", blocking=False, sndbuf_bytes=4096) as tx:
                n = tx.send_batch(payloads, G, mcast_port, method="mmsg")
                assert 0 < n < len(payloads), impl
                with pytest.raises(WouldBlockError) as ei:
                    tx.send_batch(payloads[n:], G, mcast_port, method="mmsg")
                assert ei.value.datagrams_sent == 0
                assert tx.stats.send_errors == 0  # flow control, not an error
                with MulticastSocket(4, interface="lo") as other:
                    other.sendto(b"sentinel", G, mcast_port)  # queued behind them
                _tbf(netns, "10gbit")  # let the held datagrams go
                got = [d.data for d in recv_n(rx, n + 1)]
                assert got == [*payloads[:n], b"sentinel"], impl
            _tbf(netns, "8kbit")


def test_bad_arguments(speedups: ModuleType) -> None:
    """Clean Python exceptions, no syscall on bad input, every view released."""
    sm = speedups.sendmmsg
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fd = s.fileno()
        sa = _v4_sa(9)
        ba = bytearray(b"held?")
        with pytest.raises(TypeError, match=r"payload 1 \(str\)"):
            sm(fd, [ba, "text", b"x"], sa, 0)
        ba.extend(b"!")  # would raise BufferError if a view had leaked
        with pytest.raises(TypeError, match=r"payload 0 \(int\)"):
            sm(fd, [5], sa, 0)
        with pytest.raises(TypeError, match="sequence"):
            sm(fd, 5, sa, 0)
        with pytest.raises(TypeError):
            sm(fd, [b"a"], "not bytes", 0)
        for bad_sa in (b"", sa[:15], sa + b"\0", sa + bytes(12),
                       pack_dest((asm6("1"), 9))[:16], pack_dest((asm6("1"), 9))[:27],
                       bytes(16), bytes(28)):
            with pytest.raises(ValueError, match="sockaddr"):
                sm(fd, [ba], bad_sa, 0)
        ba.extend(b"!")
        with pytest.raises(OSError) as ei:
            sm(-1, [b"a"], sa, 0)
        assert ei.value.errno == errno.EBADF
        with pytest.raises(OverflowError):
            sm(1 << 40, [b"a"], sa, 0)
        with pytest.raises(OverflowError):
            sm(fd, [b"a"], sa, 1 << 40)
        with pytest.raises(TypeError):
            sm("3", [b"a"], sa, 0)
        with pytest.raises(TypeError):
            sm(fd, [b"a"], sa)
        with pytest.raises(TypeError):
            sm(fd, [b"a"], sa, 0, 0)
        with pytest.raises(BufferError):  # not contiguous: no flat buffer to point at
            sm(fd, [ba, memoryview(b"abcdef")[::2]], sa, 0)
        ba.extend(b"!")
        assert sm(fd, [], sa, 0) == 0
    with pytest.raises(OSError) as ei:
        sm(fd, [b"a"], sa, 0)  # closed: the kernel says EBADF
    assert ei.value.errno == errno.EBADF


@pytest.mark.kernel
def test_direct_calls_release_views_and_references(netns: Netns, speedups: ModuleType,
                                                   mcast_port: int) -> None:
    """Success, a kernel error (EMSGSIZE) and the 1024 cap: the views are released (the
    bytearrays can be resized again) and no reference is leaked."""
    sm = speedups.sendmmsg
    with _receiver(mcast_port) as rx, MulticastSocket(4, interface="lo") as tx:
        sa = _v4_sa(mcast_port)
        ba = bytearray(b"pinned")
        big = bytearray(70000)
        mv = memoryview(ba)
        items: list[Payload] = [ba, mv, b"c"]
        before = [sys.getrefcount(x) for x in (ba, big, mv)]
        assert sm(tx.fileno(), items, sa, 0) == 3
        with pytest.raises(OSError) as ei:
            sm(tx.fileno(), [big, ba], sa, 0)
        assert ei.value.errno == errno.EMSGSIZE
        assert sm(tx.fileno(), [ba] * 1500, sa, 0) == 1024  # one call, capped
        assert [sys.getrefcount(x) for x in (ba, big, mv)] == before
        mv.release()
        ba.extend(b"!")
        big.extend(b"!")
        got = recv_n(rx, 3 + 1024)
        assert [d.data for d in got[:3]] == [b"pinned", b"pinned", b"c"]
        assert all(d.data == b"pinned" for d in got[3:])


# --------------------------------------------------------------------------- threads


@pytest.mark.kernel
def test_payloads_mutated_by_another_thread(netns: Netns, each_impl: list[str],
                                            mcast_port: int) -> None:
    """Other threads rewrite, try to resize and replace the payloads (list items) while
    batches go out. No crash, every call returns or raises a clean error, and every
    datagram that arrives is one of the shapes a payload had (length 0..512)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    bufs = [bytearray(b"%03d" % i * 40) for i in range(32)]
    items: list[Payload] = list(bufs)
    stop = threading.Event()
    errors: list[BaseException] = []

    def mutate() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            for b in bufs:
                b[:] = bytes([k % 256]) * len(b)  # same size: allowed while pinned
                try:
                    if len(b) < 512:
                        b.extend(b"+")  # a resize: refused while a send pins it
                    else:
                        del b[100:]
                except BufferError:
                    pass

    def swap() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            i = k % len(items)
            items[i] = memoryview(bufs[i]) if k % 2 else bytes(k % 300)

    try:
        with _receiver(mcast_port) as rx:
            for impl in each_impl:
                _io.force_impl(impl)
                threads = [threading.Thread(target=mutate), threading.Thread(target=swap)]
                for t in threads:
                    t.start()
                sent = 0
                try:
                    with MulticastSocket(4, interface="lo") as tx:
                        for _ in range(200):
                            try:
                                sent += tx.send_batch(items, G, mcast_port, method="mmsg")
                            except (RuntimeError, BufferError) as exc:  # list changed size
                                errors.append(exc)
                finally:
                    stop.set()
                    for t in threads:
                        t.join(WAIT)
                    stop.clear()
                got = 0
                while got < sent:
                    batch = rx.recv_batch(256, timeout_s=WAIT)
                    assert all(len(d.data) <= 512 for d in batch)
                    got += len(batch)
                assert got == sent
                # nothing extra arrives: the next one is the sentinel
                with MulticastSocket(4, interface="lo") as tx:
                    tx.sendto(b"sentinel-" + impl.encode(), G, mcast_port)
                assert rx.recv(timeout_s=WAIT).data == b"sentinel-" + impl.encode()
    finally:
        sys.setswitchinterval(old)
    assert all(isinstance(e, RuntimeError | BufferError) for e in errors)


@pytest.mark.kernel
def test_blocking_send_interrupted_by_signal(netns: Netns, speedups: ModuleType,
                                            mcast_port: int) -> None:
    """A handler that raises while sendmmsg blocks on a full send buffer: its exception
    comes out of the call (EINTR is not swallowed and not turned into OSError). One
    that returns: the call goes on (PEP 475) and sends once there is room."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    import signal

    _tbf(netns, "8kbit", "add")

    class Stop(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        raise Stop

    prev = signal.signal(signal.SIGALRM, handler)
    try:
        with MulticastSocket(4, interface="lo", sndbuf_bytes=4096) as tx:
            sa = _v4_sa(mcast_port)
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Stop):
                for _ in range(1000):  # one of these blocks on the full buffer
                    speedups.sendmmsg(tx.fileno(), [bytes(1000)], sa, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
            calls: list[int] = []
            signal.signal(signal.SIGALRM, lambda signum, frame: calls.append(signum))
            # the buffer is still full: the next send blocks, is interrupted (the
            # handler returns), retries, and goes out once the bucket is opened
            opener = threading.Timer(1.0, _tbf, args=(netns, "10gbit"))
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            opener.start()
            try:
                assert speedups.sendmmsg(tx.fileno(), [b"retried"], sa, 0) == 1
            finally:
                opener.join(WAIT)
            assert calls == [signal.SIGALRM]
            poll = select.poll()
            poll.register(tx.fileno(), select.POLLOUT)
            assert poll.poll(int(WAIT * 1000))
            assert speedups.sendmmsg(tx.fileno(), [b"after"], sa, 0) == 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, prev)
