"""send_batch's fast path (the last target again: the caller's list goes to the
accelerator's sendmmsg as it is) keeps every promise of the full path, and UDP GSO cuts
payloads by their size in bytes.

Owns: that a socket which has already sent to a target (so the next batch takes the
fast path) reports bad input, a closed socket, partial counts and errors exactly as the
first batch does; that the accelerator holds each payload for the call and lets go of
it on every path (bytes by reference, a repeated payload once, other buffers pinned);
that GSO and ``auto`` count sizes in bytes (a memoryview of a wider format has fewer
items than bytes).
Must not: assert speed.
"""

from __future__ import annotations

import array
import errno
import sys

import pytest

import mcastkit
from mcastkit import (
    ClosedError,
    DatagramTooLargeError,
    McastValueError,
    MulticastSocket,
    ReceiveTimeoutError,
    _io,
)
from mcastkit._platform._structs import pack_dest
from tests.support.addrs import asm4, asm6
from tests.support.batch import drain
from tests.support.netns import Netns
from tests.support.topology import VethLoop

pytestmark = pytest.mark.kernel

Payload = bytes | bytearray | memoryview

G = asm4(6, 41)


def _pair(port: int) -> tuple[MulticastSocket, MulticastSocket]:
    rx = mcastkit.open_receiver(f"{G}:{port}", interface="lo", rcvbuf_bytes=4 << 20)
    return rx, MulticastSocket(4, interface="lo")


def _warm(tx: MulticastSocket, rx: MulticastSocket, port: int) -> None:
    """One batch to (G, port): the next batch to the same target takes the fast path."""
    assert tx.send_batch([b"warm-1", b"warm-2"], G, port, method="mmsg") == 2
    assert [d.data for d in drain(rx, 2)] == [b"warm-1", b"warm-2"]


def _quiet(rx: MulticastSocket) -> None:
    with pytest.raises(ReceiveTimeoutError):
        rx.recv(timeout_s=0.2)


@pytest.mark.parametrize("bad_at", [0, 1, 31, 63])
def test_emsgsize_on_the_fast_path(netns: Netns, impl: str, mcast_port: int,
                                   bad_at: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx, tx:
        _warm(tx, rx, mcast_port)
        payloads = [b"%03d" % i for i in range(64)]
        payloads[bad_at] = b"x" * 70000
        with pytest.raises(DatagramTooLargeError) as ei:
            tx.send_batch(payloads, G, mcast_port, method="mmsg")
        assert ei.value.datagrams_sent == bad_at
        assert ei.value.errno == errno.EMSGSIZE
        assert tx.stats.send_errors == 1
        assert [d.data for d in drain(rx, bad_at)] == payloads[:bad_at]
        _quiet(rx)


def test_bad_input_and_close_after_the_target_is_cached(netns: Netns, impl: str,
                                                        mcast_port: int) -> None:
    rx, tx = _pair(mcast_port)
    with rx:
        _warm(tx, rx, mcast_port)
        with pytest.raises(McastValueError, match="method"):
            tx.send_batch([b"a", b"b"], G, mcast_port, method="fast")
        with pytest.raises(McastValueError, match="method"):
            tx.send_batch([b"a"], G, mcast_port, method="fast")
        with pytest.raises(TypeError, match=r"str|bytes-like"):
            tx.send_batch(["text", b"a"], G, mcast_port, method="mmsg")  # type: ignore[list-item]
        assert tx.send_batch([], G, mcast_port, method="mmsg") == 0
        gen = (b"gen-%d" % i for i in range(3))  # not a list: the full path
        assert tx.send_batch(gen, G, mcast_port, method="mmsg") == 3  # type: ignore[arg-type]
        assert [d.data for d in drain(rx, 3)] == [b"gen-0", b"gen-1", b"gen-2"]
        tx.close()
        for payloads in ([], [b"a"], [b"a", b"b"]):
            with pytest.raises(ClosedError):
                tx.send_batch(payloads, G, mcast_port, method="mmsg")
        _quiet(rx)


def test_list_and_tuple_and_over_one_call(netns: Netns, impl: str, mcast_port: int) -> None:
    """A tuple, a list, one payload repeated, and 1500 (over the 1024 of one call)."""
    rx, tx = _pair(mcast_port)
    with rx, tx:
        _warm(tx, rx, mcast_port)
        one = b"same object"
        batches: list[list[bytes] | tuple[bytes, ...]] = [
            (b"t1", b"t2", b"t3"), [one] * 64, [b"%04d" % i for i in range(1500)]]
        for b in batches:
            assert tx.send_batch(b, G, mcast_port, method="mmsg") == len(b)
            assert [d.data for d in drain(rx, len(b), max_count=256)] == list(b)
        _quiet(rx)


def test_holds_are_released(netns: Netns, mcast_port: int) -> None:
    """bytes held by reference, a repeated payload held once, a bytes subclass and other
    buffers pinned: after success, a kernel error and a bad payload, every reference
    count is back and every bytearray can be resized again."""
    if "c" not in _io.available_impls():
        pytest.skip("the accelerator is not built")
    from mcastkit import _speedups as sp

    class Sub(bytes):
        pass

    b1, b2, sub = b"one" * 3, b"two" * 5, Sub(b"subclass")
    ba = bytearray(b"pinned")
    big = b"x" * 70000
    rx, tx = _pair(mcast_port)
    with rx, tx:
        sa = pack_dest((G, mcast_port))
        objs = (b1, b2, sub, ba, big)
        before = [sys.getrefcount(o) for o in objs]
        assert sp.sendmmsg(tx.fileno(), [b1, b1, b1, b2, sub, ba, ba, b1], sa, 0) == 8
        with pytest.raises(OSError) as ei:
            sp.sendmmsg(tx.fileno(), [big, big, b1, ba], sa, 0)
        assert ei.value.errno == errno.EMSGSIZE
        with pytest.raises(TypeError, match="payload 3"):
            sp.sendmmsg(tx.fileno(), [b1, b1, ba, 7], sa, 0)  # type: ignore[list-item]
        assert [sys.getrefcount(o) for o in objs] == before
        ba.extend(b"!")  # no view left behind
        got = [d.data for d in drain(rx, 8)]
        assert got == [b1, b1, b1, b2, b"subclass", b"pinned", b"pinned", b1]
        _quiet(rx)


def _wide() -> memoryview:
    """4 bytes, 2 items: a memoryview of unsigned shorts."""
    return memoryview(array.array("H", [0x4141, 0x4242]))


@pytest.mark.parametrize("method", ["auto", "mmsg"])
def test_sizes_in_bytes_not_items(netns: Netns, impl: str, mcast_port: int,
                                  method: str) -> None:
    """2, 4 and 2 bytes (items: 2, 2, 2): three datagrams, never cut at 2 bytes."""
    rx, tx = _pair(mcast_port)
    with rx, tx:
        payloads: list[Payload] = [b"ab", _wide(), b"cd"]
        assert tx.send_batch(payloads, G, mcast_port, method=method) == 3
        assert [d.data for d in drain(rx, 3)] == [b"ab", b"AABB", b"cd"]
        _quiet(rx)


def test_gso_takes_equal_byte_sizes(netns: Netns, mcast_port: int) -> None:
    """4 bytes each (items: 4, 2, 4): one size for GSO, sent as three datagrams."""
    rx, tx = _pair(mcast_port)
    with rx, tx:
        payloads: list[Payload] = [b"abcd", _wide(), b"efgh"]
        try:
            assert tx.send_batch(payloads, G, mcast_port, method="gso") == 3
        except mcastkit.UnsupportedError:
            pytest.skip("this kernel refuses UDP GSO")
        assert [d.data for d in drain(rx, 3)] == [b"abcd", b"AABB", b"efgh"]
        with pytest.raises(McastValueError, match="one size"):
            tx.send_batch([b"abcd", _wide(), b"efghi"], G, mcast_port, method="gso")
        _quiet(rx)


def test_ipv6_fast_path(veth_loop: VethLoop, impl: str, mcast_port: int) -> None:
    """The packed sockaddr_in6 of the cached target serves the fast path too."""
    g6 = asm6("6:41")
    rx = mcastkit.open_receiver(f"[{g6}]:{mcast_port}", interface="vb")
    tx = MulticastSocket(6, interface="va")
    with rx, tx:
        for round_ in range(3):  # the first fills the cache, the others take the fast path
            payloads = [b"v6-%d-%d" % (round_, i) for i in range(64)]
            assert tx.send_batch(payloads, g6, mcast_port, method="mmsg") == 64
            assert [d.data for d in drain(rx, 64)] == payloads
        _quiet(rx)
