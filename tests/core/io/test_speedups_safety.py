"""Memory safety and edge cases of the compiled accelerator (``mcastkit._speedups``).

Run these under AddressSanitizer with ``scripts/asan-batch`` (they pass either way; the
sanitizer turns a silent corruption into an abort). Tests that need the accelerator skip
without it, or fail when MCASTKIT_REQUIRE_SPEEDUPS=1.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import struct
import sys
import threading
import time
import tracemalloc
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mcastkit
from mcastkit import ClosedError, Datagram, _io
from mcastkit import _platform as plat
from mcastkit._packet import CmsgKind, decode_ancillary
from mcastkit._platform._structs import CMSG_HDR, parse_cmsgs
from tests.support.addrs import SRC4_OTHER, asm4, asm6, lab_host
from tests.support.batch import WAIT, drain
from tests.support.netns import Netns
from tests.support.structs_ref import pack_cmsgs
from tests.support.topology import VethLoop

G = asm4(5, 21)


@pytest.fixture(scope="module")
def speedups() -> ModuleType:
    """The compiled module, set up by mcastkit._io._c."""
    if "c" not in _io.available_impls():
        if os.environ.get("MCASTKIT_REQUIRE_SPEEDUPS") == "1":
            pytest.fail("mcastkit._speedups is not built (MCASTKIT_REQUIRE_SPEEDUPS=1)")
        pytest.skip("the accelerator is not built")
    from mcastkit import _speedups

    return _speedups


def test_sanitized_build_is_the_one_loaded(speedups: ModuleType) -> None:
    """Under scripts/asan-batch, the instrumented extension is what the tests exercise."""
    expect = os.environ.get("MCASTKIT_SPEEDUPS_EXPECT")
    if expect:
        assert speedups.__file__ == expect


def test_recv_without_init_raises(speedups: ModuleType) -> None:
    """A Ring made by __new__ alone has no buffers: recv refuses (it used to divide by a
    zero recv_size and kill the process with SIGFPE)."""
    ring = speedups.Ring.__new__(speedups.Ring)
    with pytest.raises(RuntimeError, match="__init__"):
        ring.recv(0, 1)
    assert ring.slots == 0


@pytest.mark.parametrize("bad", [0, -1, (1 << 20) + 1])
def test_ring_rejects_bad_recv_size(speedups: ModuleType, bad: int) -> None:
    with pytest.raises(ValueError, match="recv_size"):
        speedups.Ring(2, bad)


@pytest.mark.kernel
def test_recv_size_above_64k(netns: Netns, impl: str, mcast_port: int) -> None:
    """MulticastSocket accepts recv_size up to 1 MiB; recv_batch must too on every path
    (the compiled ring used to refuse > 65535 with a bare ValueError)."""
    rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", recv_size=100_000)
    tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
    with rx, tx:
        big = bytes(range(256)) * 255 + b"end"  # 65283 bytes: near the UDP maximum
        tx.send(big)
        tx.send(b"small")
        got = drain(rx, 2, max_count=8)
        assert [d.data for d in got] == [big, b"small"]
        assert not any(d.truncated for d in got)
        assert rx.stats.bytes == len(big) + 5
        assert rx._rx._batch is not None and rx._rx._batch.impl == impl


def _payload(i: int) -> bytes:
    """Self-checking payload: a torn or stale buffer cannot pass :func:`_intact`."""
    head = b"%08d" % i
    return head * 8


def _intact(data: bytes) -> bool:
    return len(data) == 64 and data == data[:8] * 8 and data[:8].isdigit()


@pytest.mark.kernel
def test_ring_shared_by_threads(netns: Netns, speedups: ModuleType, mcast_port: int) -> None:
    """Two threads use one Ring while a third re-initialises and grows it. The buffers
    the kernel writes into while the GIL is released must never be freed or shared under
    it (they were: __init__ and growth freed them mid-recvmmsg, a use-after-free that
    scripts/asan-batch reports). Every datagram read is intact and read once."""
    rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", rcvbuf_bytes=1 << 21)
    tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
    ring = speedups.Ring(2, 64, 1)
    total = 3000
    seen: list[bytes] = []
    bad: list[object] = []
    stop = threading.Event()

    def reader(step: int) -> None:
        n = 1
        while not stop.is_set():
            try:
                got = ring.recv(rx.fileno(), n)
            except BlockingIOError:
                continue
            except Exception as exc:  # anything else is a failure of the test
                bad.append(exc)
                return
            seen.extend(d.data for d in got)
            n = n % 1024 + step

    def churn() -> None:
        size = 64
        while not stop.is_set():
            try:
                ring.__init__(2, size, 1)  # frees and reallocates the buffers
            except Exception as exc:
                bad.append(exc)
                return
            size = 64 if size > 4096 else size * 2

    with rx, tx:
        threads = [threading.Thread(target=reader, args=(s,)) for s in (7, 13)]
        threads.append(threading.Thread(target=churn))
        for t in threads:
            t.start()
        try:
            for i in range(total):
                tx.send(_payload(i))
            deadline = time.monotonic() + WAIT
            while (len(seen) + max(0, rx.kernel_drops()) < total
                   and time.monotonic() < deadline and not bad):
                time.sleep(0.01)
        finally:
            stop.set()
            for t in threads:
                t.join(WAIT)
        assert not bad
        assert all(_intact(d) for d in seen), [d for d in seen if not _intact(d)][:3]
        assert len(seen) == len(set(seen)), "a datagram was returned twice"
        assert len(seen) + max(0, rx.kernel_drops()) == total


# ------------------------------------------------------------ decoders against Python

_KNOWN = list(plat.CMSG_KINDS)  # (level, type) pairs the decoders understand
_cmsg = st.tuples(
    st.one_of(st.sampled_from(_KNOWN), st.tuples(st.integers(-3, 300), st.integers(-3, 80))),
    st.binary(max_size=40),
)


def _reference(data: bytes, name: bytes, ctrl: bytes, flags: int, family: int,
               recv_size: int) -> tuple[object, ...]:
    """What the pure-Python path makes of these bytes (the kernel's view of slot 0)."""
    name = name[:32]
    host, port = "", 0
    af = int.from_bytes(name[:2], sys.byteorder) if len(name) >= 2 else 0
    if af == socket.AF_INET6 and len(name) >= 28:
        host = socket.inet_ntop(socket.AF_INET6, name[8:24])
        scope = int.from_bytes(name[24:28], sys.byteorder)
        host = f"{host}%{scope}" if scope else host
        port = int.from_bytes(name[2:4], "big")
    elif af == socket.AF_INET and len(name) >= 16:
        host = socket.inet_ntop(socket.AF_INET, name[4:8])
        port = int.from_bytes(name[2:4], "big")
    d = Datagram(data[:recv_size], host, port, truncated=bool(flags & socket.MSG_TRUNC))
    decode_ancillary(d, parse_cmsgs(ctrl[:256]), plat.CMSG_KINDS)
    return _all(d)


def _all(d: Datagram) -> tuple[object, ...]:
    return (d.data, d.source, d.port, d.group, d.interface, d.ttl, d.truncated, d.drops,
            d.timestamp_ns, d.tos)


def _sockaddr(family: int, host: str, port: int, scope: int = 0) -> bytes:
    if family == socket.AF_INET:
        return (struct.pack("=H", socket.AF_INET) + port.to_bytes(2, "big")
                + socket.inet_pton(socket.AF_INET, host) + bytes(8))
    return (struct.pack("=H", socket.AF_INET6) + port.to_bytes(2, "big") + bytes(4)
            + socket.inet_pton(socket.AF_INET6, host) + struct.pack("=I", scope))


@settings(max_examples=400, deadline=None)
@given(cmsgs=st.lists(_cmsg, max_size=8), tail=st.binary(max_size=24),
       cut=st.integers(0, 400), data=st.binary(max_size=80),
       flags=st.sampled_from([0, int(socket.MSG_TRUNC), int(socket.MSG_CTRUNC)]))
def test_cmsg_walker_matches_python(speedups: ModuleType, cmsgs: list[tuple[
        tuple[int, int], bytes]], tail: bytes, cut: int, data: bytes, flags: int) -> None:
    """Well-formed, truncated, padded-with-garbage and over-long control buffers decode to
    exactly what decode_ancillary(parse_cmsgs(...)) gives, and never read out of bounds
    (scripts/asan-batch)."""
    ctrl = (pack_cmsgs([(lv, ty, b) for (lv, ty), b in cmsgs]) + tail)[:cut]
    name = _sockaddr(socket.AF_INET, SRC4_OTHER, 4242)
    ring = speedups.Ring(socket.AF_INET, 48, 1)
    got = ring._decode(data, name, ctrl, flags)
    assert _all(got) == _reference(data, name, ctrl, flags, socket.AF_INET, 48)


@settings(max_examples=300, deadline=None)
@given(ctrl=st.binary(max_size=300), name=st.binary(max_size=40))
def test_garbage_never_crashes(speedups: ModuleType, ctrl: bytes, name: bytes) -> None:
    """Arbitrary control and address bytes (short sockaddrs, odd cmsg_len values)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        ring = speedups.Ring(family, 16, 1)
        got = ring._decode(b"x", name, ctrl)
        assert _all(got) == _reference(b"x", name, ctrl, 0, family, 16)


@pytest.mark.parametrize("cl", [0, 1, 15, 17, 255, 257, 2**63, 2**64 - 1, 2**64 - 8])
def test_hostile_cmsg_len(speedups: ModuleType, cl: int) -> None:
    """cmsg_len values that make ``pos + cmsg_len`` wrap: the walk stops, nothing is read
    past the buffer (a first, valid TTL message is still decoded)."""
    ttl = pack_cmsgs([(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("=i", 9))])
    bad = CMSG_HDR.pack(cl, *plat.cmsg_type(CmsgKind.TIMESTAMPNS)) + bytes(16)
    ring = speedups.Ring(socket.AF_INET, 16, 1)
    name = _sockaddr(socket.AF_INET, SRC4_OTHER, 1)
    got = ring._decode(b"", name, ttl + bad)
    assert got.ttl == 9 and got.timestamp_ns == _reference(b"", name, ttl + bad, 0,
                                                           socket.AF_INET, 16)[8]


@pytest.mark.parametrize("sec,nsec", [(2**63 - 1, 999_999_999), (-(2**63), -1), (1, 2)])
def test_timestamp_overflow_is_exact(speedups: ModuleType, sec: int, nsec: int) -> None:
    """A timespec whose nanoseconds overflow 64 bits gives the exact Python int (no
    signed-overflow undefined behaviour; UBSan checks under scripts/asan-batch)."""
    ts = pack_cmsgs([(*plat.cmsg_type(CmsgKind.TIMESTAMPNS), struct.pack("=qq", sec, nsec))])
    ring = speedups.Ring(socket.AF_INET, 16, 1)
    got = ring._decode(b"", _sockaddr(socket.AF_INET, SRC4_OTHER, 1), ts)
    assert got.timestamp_ns == sec * 1_000_000_000 + nsec


@pytest.mark.parametrize("namelen", [0, 1, 2, 15, 16, 27, 28, 32, 33, 128])
def test_sockaddr_lengths(speedups: ModuleType, namelen: int) -> None:
    """Short, exact and over-long (kernel-reported) address lengths, both families, with
    an IPv6 link-local scope id; the one-entry source cache never returns a stale one."""
    v6 = _sockaddr(socket.AF_INET6, "fe80::1", 5000, scope=7) + bytes(200)
    v4 = _sockaddr(socket.AF_INET, lab_host(0, 9), 5001) + bytes(200)
    for family, full in ((socket.AF_INET6, v6), (socket.AF_INET, v4)):
        ring = speedups.Ring(family, 16, 1)
        for name in (full[:namelen], full[:namelen], v4[:16], full[:namelen]):
            got = ring._decode(b"", name, b"")
            assert _all(got) == _reference(b"", name, b"", 0, family, 16)
    ring = speedups.Ring(socket.AF_INET6, 16, 1)
    assert ring._decode(b"", v6[:28], b"").source == "fe80::1%7"


# ------------------------------------------------------------ setup(): layout checks


def _kinds() -> list[tuple[int, int, int]]:
    return [(lv, ty, _io._c.KIND_CODES[k]) for (lv, ty), k in plat.CMSG_KINDS.items()
            if k in _io._c.KIND_CODES]


def _still_works(speedups: ModuleType) -> None:
    """The previous (good) setup survived a refused one."""
    ring = speedups.Ring(socket.AF_INET, 8, 1)
    got = ring._decode(b"abc", _sockaddr(socket.AF_INET, lab_host(0, 3), 7), b"")
    assert type(got) is Datagram and got == Datagram(b"abc", lab_host(0, 3), 7)


class _Borrowed:
    """Datagram's member descriptors on a class whose instances are far smaller: their
    offsets would write past the object (heap overflow) if setup() trusted them."""


for _f in ("data", "source", "port", "group", "interface", "ttl", "truncated", "drops",
           "timestamp_ns", "tos"):
    setattr(_Borrowed, _f, getattr(Datagram, _f))


@dataclasses.dataclass(slots=True)
class _Extra:
    """A Datagram that gained a field the C code does not know."""

    data: bytes
    source: str
    port: int
    group: str | None = None
    interface: int | None = None
    ttl: int | None = None
    truncated: bool = False
    drops: int | None = None
    timestamp_ns: int | None = None
    tos: int | None = None
    hops: int | None = None


class _SubExtra(Datagram):
    __slots__ = ("note",)


class _Prop(_Borrowed):
    @property
    def tos(self) -> int:
        return 0


@dataclasses.dataclass
class _NoSlots:
    data: bytes = b""
    source: str = ""
    port: int = 0
    group: str | None = None
    interface: int | None = None
    ttl: int | None = None
    truncated: bool = False
    drops: int | None = None
    timestamp_ns: int | None = None
    tos: int | None = None


@pytest.mark.parametrize("cls", [_Borrowed, _Extra, _SubExtra, _Prop, _NoSlots, int])
def test_setup_refuses_other_layouts(speedups: ModuleType, cls: type) -> None:
    """setup() refuses any class whose slots are not exactly Datagram's ten, declared by
    the class itself (it used to accept borrowed descriptors and foreign layouts, and
    would then write past objects or leave unknown slots empty), and a refusal keeps the
    working setup."""
    with pytest.raises((TypeError, AttributeError)):
        speedups.setup(cls, _kinds())
    _still_works(speedups)


@pytest.mark.parametrize("kinds", [[[0, 8, 3]], [(0, 8)], [None], 5, [(0, 8, 3)] * 33])
def test_setup_refuses_bad_kinds(speedups: ModuleType, kinds: object) -> None:
    """Malformed kind tables raise TypeError/ValueError (a list item used to raise
    SystemError, which mcastkit._io._c did not catch: the import would have failed)."""
    with pytest.raises((TypeError, ValueError)):
        speedups.setup(Datagram, kinds)
    _still_works(speedups)


def test_setup_accepts_identical_layout(speedups: ModuleType) -> None:
    """A class with exactly Datagram's slots is fine; restore the real one afterwards."""

    @dataclasses.dataclass(slots=True)
    class Twin:
        data: bytes
        source: str
        port: int
        group: str | None = None
        interface: int | None = None
        ttl: int | None = None
        truncated: bool = False
        drops: int | None = None
        timestamp_ns: int | None = None
        tos: int | None = None

    try:
        speedups.setup(Twin, _kinds())
        ring = speedups.Ring(socket.AF_INET, 8, 1)
        got = ring._decode(b"t", _sockaddr(socket.AF_INET, lab_host(0, 3), 7), b"")
        assert type(got) is Twin and got.data == b"t" and got.tos is None
    finally:
        speedups.setup(Datagram, _kinds())
    _still_works(speedups)


# ------------------------------------------------------------ through real sockets


@pytest.mark.kernel
def test_sizes_around_recv_size(netns: Netns, impl: str, mcast_port: int) -> None:
    """0 bytes, recv_size - 1, exactly recv_size (not truncated) and recv_size + 1
    (cut to recv_size, flagged, counted) in one batch, with and without metadata."""
    rs = 100
    for metadata in (False, True):
        rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", recv_size=rs,
                                    metadata=metadata)
        tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
        with rx, tx:
            sizes = [0, rs - 1, rs, rs + 1, 0, 65000]
            for n in sizes:
                tx.send(bytes([n % 251]) * n)
            got = drain(rx, len(sizes), max_count=16)
            assert [len(d.data) for d in got] == [min(n, rs) for n in sizes]
            assert [d.data for d in got] == [bytes([n % 251]) * min(n, rs) for n in sizes]
            assert [d.truncated for d in got] == [n > rs for n in sizes]
            assert rx.stats.truncated == 2 and rx.stats.datagrams == len(sizes)
            assert rx.stats.bytes == sum(min(n, rs) for n in sizes)
            assert all((d.group == G) is metadata for d in got)


@pytest.mark.kernel
@pytest.mark.parametrize("max_count", [1, 1023, 1024, 1025, 5000])
def test_max_count_extremes(netns: Netns, impl: str, mcast_port: int, max_count: int) -> None:
    """max_count 1 takes one at a time; beyond the kernel's 1024 (UIO_MAXIOV) a call
    returns at most 1024 and nothing is lost or repeated."""
    rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", rcvbuf_bytes=8 << 20,
                                metadata=True)
    tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
    total = 1500
    with rx, tx:
        for i in range(total):
            tx.send(b"%06d" % i)
        got: list[bytes] = []
        while len(got) < total:
            batch = rx.recv_batch(max_count, timeout_s=WAIT)
            assert 1 <= len(batch) <= (max_count if impl == "python"
                                       else min(max_count, 1024))
            got += [d.data for d in batch]
        assert got == [b"%06d" % i for i in range(total)]
        assert rx.stats.datagrams == total and rx.stats.kernel_drops == 0


@pytest.mark.kernel
def test_ipv6_link_local_scope(veth_loop: VethLoop, impl: str, mcast_port: int) -> None:
    """An IPv6 link-local source carries %ifindex of the arrival interface, like recv();
    the metadata gives the arrival interface; several batches reuse the cached source."""
    g6 = asm6("5:21")
    rx = mcastkit.open_receiver(f"[{g6}]:{mcast_port}", interface="vb", metadata=True)
    tx = mcastkit.MulticastSocket(6, interface="va", ttl=4)
    with rx, tx:
        for i in range(10):
            tx.sendto(b"ll%d" % i, g6, mcast_port)
        got: list[Datagram] = []
        while len(got) < 10:
            got += rx.recv_batch(3, timeout_s=WAIT)
        want_src = f"{veth_loop.ll_va}%{veth_loop.ifindex_vb}"
        assert {d.source for d in got} == {want_src}
        assert {(d.port, d.group, d.interface, d.ttl) for d in got} == {
            (tx.local_address[1], g6, veth_loop.ifindex_vb, 4)}


@pytest.mark.kernel
def test_metadata_toggled_between_calls(netns: Netns, impl: str, mcast_port: int) -> None:
    """Off, on, off, on: each batch has exactly the metadata its socket options ask for."""
    rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo")
    tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo", ttl=2)
    with rx, tx:
        for on in (False, True, False, True, True, False):
            rx.set_metadata(on, timestamps=on)
            for i in range(5):
                tx.send(b"%d" % i)
            got = drain(rx, 5, max_count=5)
            assert len(got) == 5
            for d in got:
                assert (d.group, d.ttl) == ((G, 2) if on else (None, None))
                assert (d.timestamp_ns is not None) is on
                assert (d.interface is not None) is on


@pytest.mark.kernel
@pytest.mark.parametrize("traffic", [False, True], ids=["idle", "flowing"])
def test_close_from_another_thread(netns: Netns, impl: str, mcast_port: int,
                                   traffic: bool) -> None:
    """close() from another thread while recv_batch blocks (idle) or while it is busy
    reading a stream (flowing): the reader always ends with ClosedError, never a crash,
    a foreign error, or a datagram from a recycled descriptor. Repeated to vary where
    the close lands."""
    for _ in range(20):
        rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", metadata=True)
        tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
        result: list[BaseException] = []
        datas: list[bytes] = []
        started = threading.Event()

        def reader(rx: mcastkit.MulticastSocket = rx, started: threading.Event = started,
                   datas: list[bytes] = datas, result: list[BaseException] = result
                   ) -> None:
            started.set()
            try:
                while True:
                    datas.extend(d.data for d in rx.recv_batch(64, timeout_s=60))
            except BaseException as exc:
                result.append(exc)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        started.wait(WAIT)
        if traffic:
            for i in range(200):
                tx.send(b"s%d" % i)
        rx.close()
        t.join(WAIT)
        tx.close()
        assert not t.is_alive(), "close() did not end the blocked recv_batch"
        assert len(result) == 1 and isinstance(result[0], ClosedError), result
        assert all(d.startswith(b"s") for d in datas)


@pytest.mark.kernel
def test_many_sockets_independent_rings(netns: Netns, impl: str, mcast_port: int) -> None:
    """Forty receivers, each on its own group with its own recv_size: every ring keeps its
    own datagrams, sizes, sources and groups (no shared buffer or cache)."""
    base = mcast_port
    groups = [asm4(6, i + 1) for i in range(40)]
    rxs = [mcastkit.open_receiver(f"{g}:{base}", interface="lo", metadata=True,
                                  recv_size=8 + i, reuse_port=True)
           for i, g in enumerate(groups)]
    txs = [mcastkit.MulticastSocket(4, interface="lo") for _ in range(3)]
    try:
        for rnd in range(3):
            for i, g in enumerate(groups):
                txs[(i + rnd) % 3].sendto(b"%02d:%d:" % (i, rnd) + b"z" * 40, g, base)
            for i, rx in enumerate(rxs):
                (d,) = drain(rx, 1)
                sent = b"%02d:%d:" % (i, rnd) + b"z" * 40
                assert (d.data, d.group, d.truncated) == (sent[:8 + i], groups[i],
                                                          len(sent) > 8 + i)
                assert d.port == txs[(i + rnd) % 3].local_address[1]
                assert rx._rx._batch is not None and rx._rx._batch.impl == impl
    finally:
        for s in [*rxs, *txs]:
            s.close()


@pytest.mark.kernel
def test_sockets_with_rings_are_collected(netns: Netns, impl: str, mcast_port: int) -> None:
    """Sockets that used recv_batch are freed with their rings once unreferenced (closed
    or not); the rings hold no references back; traced memory does not grow."""
    import gc
    import weakref

    def one(close: bool) -> weakref.ref[_io.Reader]:
        rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", metadata=True,
                                    recv_size=4096, reuse_port=True)
        tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
        with tx:
            tx.send(b"gc")
            assert drain(rx, 1)[0].data == b"gc"
        ring = rx._rx._batch
        assert ring is not None
        ref = weakref.ref(ring)
        if close:
            rx.close()
        return ref

    for close in (True, False):
        refs = [one(close) for _ in range(5)]
        gc.collect()
        assert all(r() is None for r in refs)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(30):
            one(True)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 512 * 1024, f"{grown} bytes held after 30 sockets with rings"


@pytest.mark.parametrize("args", [(2, 16, 0), (2, 16, -1), (99, 16, 1), (2, 16, 2**64)])
def test_ring_rejects_bad_arguments(speedups: ModuleType, args: tuple[int, int, int]) -> None:
    """Bad slots / family raise instead of wrapping (-1 used to become 4294967295)."""
    with pytest.raises((ValueError, OverflowError)):
        speedups.Ring(*args)


@pytest.mark.parametrize("max_count", [0, -1, 2**64])
def test_ring_recv_rejects_bad_max_count(speedups: ModuleType, max_count: int) -> None:
    """max_count 0 used to read one datagram; -1 wrapped to 4294967295."""
    ring = speedups.Ring(2, 16, 1)
    with pytest.raises((ValueError, OverflowError)):
        ring.recv(0, max_count)
