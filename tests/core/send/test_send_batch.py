"""send_batch: counts, order, every path delivers the same bytes, errors translated."""

from __future__ import annotations

import pytest

import mcastkit
from mcastkit import (
    ClosedError,
    DatagramTooLargeError,
    McastValueError,
    MulticastSocket,
    _io,
)
from tests.support.addrs import asm4, asm6
from tests.support.batch import drain
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

G = asm4(6, 1)


def _pair(port: int) -> tuple[MulticastSocket, MulticastSocket]:
    rx = mcastkit.open_receiver(f"{G}:{port}", interface="lo", rcvbuf_bytes=1 << 20)
    tx = mcastkit.MulticastSocket(4, interface="lo")
    return rx, tx


@pytest.mark.parametrize("method", ["auto", "gso", "mmsg", "loop"])
@pytest.mark.parametrize("size", [1, 64, 1400])
def test_every_path_delivers_identical_payloads(netns: Netns, mcast_port: int, method: str,
                                                size: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        payloads = [bytes([i % 256]) * size for i in range(150)]
        try:
            n = tx.send_batch(payloads, G, mcast_port, method=method)
        except mcastkit.UnsupportedError:
            pytest.skip("this kernel refuses UDP GSO")  # still tested: auto falls back
        assert n == 150
        assert [d.data for d in drain(rx, 150)] == payloads
        assert tx.stats.send_errors == 0


def test_gso_was_really_used_on_loopback(netns: Netns, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        tx.send_batch([b"g" * 100] * 10, G, mcast_port)
        assert tx._tx._batch is not None
        assert tx._tx._batch.gso_ok in (True, False)  # probed once, remembered
        drain(rx, 10)


def test_unequal_sizes_use_sendmmsg(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        payloads = [b"x" * (i + 1) for i in range(40)]
        assert tx.send_batch(payloads, G, mcast_port) == 40
        assert [d.data for d in drain(rx, 40)] == payloads


def test_last_may_be_shorter_for_gso(netns: Netns, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        payloads = [b"a" * 50] * 9 + [b"end"]
        assert tx.send_batch(payloads, G, mcast_port, method="auto") == 10
        assert [d.data for d in drain(rx, 10)] == payloads


def test_gso_refuses_unequal_sizes(netns: Netns, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx, pytest.raises(McastValueError):
        tx.send_batch([b"a", b"bbb", b"c"], G, mcast_port, method="gso")


def test_more_than_one_ring(netns: Netns, impl: str, mcast_port: int) -> None:
    """More payloads than the sendmmsg ring holds: several calls, order kept."""
    rx, tx = _pair(mcast_port)
    with rx, tx:
        payloads = [b"%05d" % i + b"-" * (i % 3) for i in range(700)]
        assert tx.send_batch(payloads, G, mcast_port, method="mmsg") == 700
        assert [d.data for d in drain(rx, 700, max_count=256)] == payloads


def test_buffer_types(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        payloads: list[bytes | bytearray | memoryview] = [
            b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview")]
        assert tx.send_batch(payloads, G, mcast_port) == 3
        assert [d.data for d in drain(rx, 3)] == [bytes(p) for p in payloads]


def test_empty_batch(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        assert tx.send_batch([], G, mcast_port) == 0


@pytest.mark.parametrize("method", ["auto", "mmsg", "loop"])
def test_emsgsize_translated_with_partial_count(netns: Netns, impl: str, mcast_port: int,
                                                 method: str) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        payloads = [b"ok1", b"ok2", b"x" * 70000, b"never"]
        with pytest.raises(DatagramTooLargeError) as ei:
            tx.send_batch(payloads, G, mcast_port, method=method)
        assert ei.value.datagrams_sent == 2
        assert tx.stats.send_errors == 1
        tx.sendto(b"sentinel", G, mcast_port)
        assert [d.data for d in drain(rx, 3)] == [b"ok1", b"ok2", b"sentinel"]


def test_emsgsize_first(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        with pytest.raises(DatagramTooLargeError) as ei:
            tx.send_batch([b"y" * 70000] * 3, G, mcast_port)
        assert ei.value.datagrams_sent == 0


def test_closed(netns: Netns, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    rx.close()
    tx.close()
    with pytest.raises(ClosedError):
        tx.send_batch([b"a"], G, mcast_port)


def test_bad_method(netns: Netns, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx, pytest.raises(McastValueError):
        tx.send_batch([b"a"], G, mcast_port, method="fast")


def test_generator_payloads(netns: Netns, impl: str, mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        assert tx.send_batch((b"%d" % i for i in range(5)), G, mcast_port) == 5  # type: ignore[arg-type]
        assert [d.data for d in drain(rx, 5)] == [b"%d" % i for i in range(5)]


def test_fallback_sender_forced(netns: Netns, mcast_port: int) -> None:
    _io.force_python(True)
    try:
        rx, tx = _pair(mcast_port)
        with rx, tx:
            assert tx.send_batch([b"p"] * 4, G, mcast_port, method="mmsg") == 4
            assert tx._tx._batch is not None and tx._tx._batch.python
            assert len(drain(rx, 4)) == 4
    finally:
        _io.force_python(False)


def test_ipv6_send_batch_on_veth(veth_loop: object, impl: str, mcast_port: int) -> None:
    g6 = asm6("6:1")
    rx = mcastkit.open_receiver(f"[{g6}]:{mcast_port}", interface="vb")
    tx = mcastkit.MulticastSocket(6, interface="va")
    with rx, tx:
        payloads = [b"v6-%d" % i for i in range(30)]
        assert tx.send_batch(payloads, g6, mcast_port, method="mmsg") == 30
        assert [d.data for d in drain(rx, 30)] == payloads
        same = [b"s" * 200] * 20
        assert tx.send_batch(same, g6, mcast_port) == 20
        assert [d.data for d in drain(rx, 20)] == same
