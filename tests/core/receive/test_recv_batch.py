"""recv_batch against recv: same datagrams, metadata, flags, counters and errors."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Callable

import pytest

import mcastkit
from mcastkit import (
    ClosedError,
    McastValueError,
    MulticastSocket,
    ReceiveTimeoutError,
    _io,
)
from mcastkit import _platform as plat
from mcastkit._platform import Op
from tests.support.addrs import asm4, asm6
from tests.support.batch import WAIT, drain, meta, recv_n
from tests.support.fixtures import require_or_skip
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G = asm4(5, 1)
G2 = asm4(5, 2)


def _pair(port: int, **opts: object) -> tuple[MulticastSocket, MulticastSocket]:
    rx = mcastkit.open_receiver(f"{G}:{port}", interface="lo", **opts)
    tx = mcastkit.open_sender(f"{G}:{port}", interface="lo")
    return rx, tx


@pytest.mark.parametrize("metadata", [False, True])
def test_same_datagrams_in_order(netns: Netns, impl: str, mcast_port: int,
                                 metadata: bool) -> None:
    rx, tx = _pair(mcast_port, metadata=metadata, rcvbuf_bytes=1 << 20)
    with rx, tx:
        sent = [b"d%04d" % i for i in range(300)]
        for p in sent:
            tx.send(p)
        got = drain(rx, len(sent))
        assert [d.data for d in got] == sent
        assert rx.stats.datagrams == 300
        assert rx.stats.bytes == sum(map(len, sent))


@pytest.mark.parametrize("timestamps", [False, True])
def test_metadata_equals_recv(netns: Netns, impl: str, mcast_port: int,
                              timestamps: bool) -> None:
    opts = dict(metadata=True, timestamps=timestamps, reuse_port=True)
    a = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", **opts)
    b = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", **opts)
    tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo", ttl=3)
    with a, b, tx:
        for i in range(50):
            tx.send(b"m%d" % i)
        one = recv_n(a, 50)
        many = drain(b, 50)
        assert [meta(d) for d in many] == [meta(d) for d in one]
        assert many[0].group == G and many[0].ttl == 3 and many[0].interface is not None
        if timestamps:
            assert all(d.timestamp_ns is not None and d.timestamp_ns > 0 for d in many)
        else:
            assert all(d.timestamp_ns is None for d in many)
        assert a.stats == b.stats


def test_irregular_batch_mixed_ttl(netns: Netns, impl: str, mcast_port: int) -> None:
    """Messages whose metadata differ within one batch take the per-message path."""
    rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", metadata=True)
    t1 = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo", ttl=1)
    t2 = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo", ttl=7)
    with rx, t1, t2:
        for i in range(20):
            (t1 if i % 2 else t2).send(b"%d" % i)
        got = drain(rx, 20)
        assert [d.ttl for d in got] == [1 if i % 2 else 7 for i in range(20)]
        ports = {t1.local_address[1], t2.local_address[1]}
        assert {d.port for d in got} == ports


def test_truncation_flags_and_count(netns: Netns, impl: str, mcast_port: int) -> None:
    a = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", recv_size=16,
                               reuse_port=True)
    b = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo", recv_size=16,
                               reuse_port=True)
    tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
    with a, b, tx:
        sizes = [10, 100, 16, 17, 5]
        for n in sizes:
            tx.send(b"z" * n)
        got = drain(b, len(sizes))
        ref = recv_n(a, len(sizes))
        assert [d.truncated for d in got] == [n > 16 for n in sizes]
        assert [d.data for d in got] == [d.data for d in ref]
        assert [len(d.data) for d in got] == [min(n, 16) for n in sizes]
        assert b.stats.truncated == 2 == a.stats.truncated


def test_drop_accounting(netns: Netns, impl: str, mcast_port: int) -> None:
    """Every datagram is received or counted as a kernel drop."""
    rx, tx = _pair(mcast_port, metadata=True, rcvbuf_bytes=4096)
    with rx, tx:
        sent = 400
        for i in range(sent):
            tx.send(b"%d" % i)
        tx.send(b"end")  # delivered or dropped; read the live counter afterwards
        got: list[mcastkit.Datagram] = []
        rx.setblocking(False)
        while True:
            try:
                got += rx.recv_batch(64)
            except BlockingIOError:
                break
        live = rx.kernel_drops()
        assert live > 0, "the tiny buffer should have overflowed"
        assert len(got) + live == sent + 1
        assert rx.stats.datagrams == len(got)
        # SO_RXQ_OVFL counts drops up to the last queued datagram
        assert rx.stats.kernel_drops <= live
        assert rx.stats.kernel_drops == max(d.drops or 0 for d in got)


def test_filtered_group_counted_like_recv(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port, metadata=True, reuse_port=True)
    other = mcastkit.open_receiver(f"{G2}:{mcast_port}", interface="lo", reuse_port=True)
    with rx, tx, other:
        # let the kernel hand rx groups joined by other sockets (escape hatch)
        plat.setopt(rx.sock, Op.MULTICAST_ALL, 1)
        tx.sendto(b"foreign", G2, mcast_port)
        tx.sendto(b"sentinel", G, mcast_port)
        got = drain(rx, 1)
        assert [d.data for d in got] == [b"sentinel"]
        assert rx.stats.filtered == 1
        assert rx.stats.datagrams == 1


def test_max_count_respected(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        for i in range(10):
            tx.send(b"%d" % i)
        sizes = []
        total = 0
        while total < 10:
            got = rx.recv_batch(3, timeout_s=WAIT)
            assert 1 <= len(got) <= 3
            sizes.append(len(got))
            total += len(got)
        assert total == 10


def test_waits_for_the_first(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        ready = threading.Event()

        def later() -> None:
            ready.wait(WAIT)
            tx.send(b"late")

        t = threading.Thread(target=later)
        t.start()
        ready.set()
        got = rx.recv_batch(64, timeout_s=WAIT)
        t.join()
        assert [d.data for d in got] == [b"late"]


def test_timeout(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        with pytest.raises(ReceiveTimeoutError) as ei:
            rx.recv_batch(timeout_s=0.05)
        assert isinstance(ei.value, TimeoutError)


def test_nonblocking_empty(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port, blocking=False)
    with rx, tx:
        with pytest.raises(BlockingIOError):
            rx.recv_batch()
        tx.send(b"x")
        # the datagram is queued synchronously on loopback; wait for it anyway
        rx.setblocking(True)
        assert [d.data for d in rx.recv_batch(timeout_s=WAIT)] == [b"x"]


def test_closed(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    tx.close()
    rx.close()
    with pytest.raises(ClosedError):
        rx.recv_batch()


@pytest.mark.parametrize("bad", [0, -1, 1 << 21])
def test_bad_max_count(netns: Netns, mcast_port: int, bad: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx, pytest.raises(McastValueError):
        rx.recv_batch(bad)


def test_metadata_toggled_mid_stream(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        tx.send(b"a")
        assert drain(rx, 1)[0].group is None
        rx.set_metadata(True)
        tx.send(b"b")
        assert drain(rx, 1)[0].group == G


def test_source_cache_is_bounded(netns: Netns, mcast_port: int,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Many distinct senders: state stays bounded (G6) and every source stays right (the
    ctypes backend's source cache; the accelerator caches only the last source)."""
    if "ctypes" not in _io.available_impls():
        require_or_skip("the ctypes backend is not available here")
    monkeypatch.setattr(_io._mmsg, "_CACHE_MAX", 4)
    _io.force_impl("ctypes")
    rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo")
    senders = [mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo") for _ in range(12)]
    try:
        for s in senders:
            s.send(b"p")
        got = drain(rx, 12)
        assert sorted(d.port for d in got) == sorted(s.local_address[1] for s in senders)
        r = rx._rx._batch
        assert r is not None
        assert len(r._src) <= 4
    finally:
        rx.close()
        for s in senders:
            s.close()
        _io.force_impl(None)


def test_memory_flat(netns: Netns, impl: str, mcast_port: int) -> None:
    """Receiving many datagrams allocates nothing that stays (traced bytes, no timing)."""
    rx, tx = _pair(mcast_port, metadata=True, rcvbuf_bytes=1 << 20)
    payload = [b"q" * 64] * 64
    with rx, tx:
        tx.send_batch(payload, G, mcast_port)
        drain(rx, 64)  # warm up: ring buffers and caches exist now
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(100):
                tx.send_batch(payload, G, mcast_port)
                drain(rx, 64)
            grown = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert grown < 256 * 1024, f"{grown} bytes still held after 6400 datagrams"


def test_ipv6_on_veth(veth_loop: object, impl: str, mcast_port: int) -> None:
    g6 = asm6("5:1")
    a = mcastkit.open_receiver(f"[{g6}]:{mcast_port}", interface="vb", metadata=True,
                               reuse_port=True)
    b = mcastkit.open_receiver(f"[{g6}]:{mcast_port}", interface="vb", metadata=True,
                               reuse_port=True)
    tx = mcastkit.MulticastSocket(6, interface="va", ttl=2)
    with a, b, tx:
        for i in range(20):
            tx.sendto(b"six%d" % i, g6, mcast_port)
        ref = recv_n(a, 20)
        got = drain(b, 20)
        assert [meta(d) for d in got] == [meta(d) for d in ref]
        assert got[0].group == g6 and got[0].ttl == 2
        assert "%" in got[0].source  # link-local source keeps its scope like recv()


def test_python_fallback_is_used_when_forced(netns: Netns, mcast_port: int) -> None:
    _io.force_python(True)
    try:
        rx, tx = _pair(mcast_port)
        with rx, tx:
            tx.send(b"f")
            drain(rx, 1)
            assert isinstance(rx._rx._batch, _io.PyReader)
    finally:
        _io.force_python(False)
    if "ctypes" in _io.available_impls():
        rx, tx = _pair(mcast_port)
        with rx, tx:
            tx.send(b"m")
            drain(rx, 1)
            assert isinstance(rx._rx._batch, _io._mmsg.MmsgReader | _io._c.CReader)


@pytest.mark.kernel
def test_recv_batch_from_two_threads_reads_every_datagram_once(
    netns: object, impl: str, mcast_port: int
) -> None:
    """Two threads call recv_batch on one socket at once (the ctypes ring releases the GIL
    around recvmmsg; its buffers must not be refilled under the kernel): every datagram
    arrives intact and exactly once on every implementation."""
    group = asm4(77, 1)
    rx = mcastkit.open_receiver(f"{group}:{mcast_port}", interface="lo",
                                rcvbuf_bytes=1 << 22)
    tx = mcastkit.open_sender(f"{group}:{mcast_port}", interface="lo")
    total = 4000
    seen: list[bytes] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader(n: int) -> None:
        while not done.is_set():
            try:
                seen.extend(d.data for d in rx.recv_batch(n, timeout_s=0.05))
            except mcastkit.ReceiveTimeoutError:
                continue
            except BaseException as exc:  # any other error fails the test
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader, args=(n,)) for n in (7, 64)]
    for t in threads:
        t.start()
    try:
        for i in range(total):
            tx.send(b"%06d" % i + b"." * (i % 50))
        deadline_ok = _wait(lambda: len(seen) >= total or bool(errors))
    finally:
        done.set()
        for t in threads:
            t.join(10)
        rx.close()
        tx.close()
    assert not errors, errors
    assert deadline_ok
    assert sorted(seen) == sorted(b"%06d" % i + b"." * (i % 50) for i in range(total))


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()
