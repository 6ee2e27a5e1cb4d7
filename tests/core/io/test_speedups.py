"""The compiled accelerator against the pure-Python path, and implementation selection."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import mcastkit
from mcastkit import Datagram, MulticastSocket, _io
from tests.support.addrs import asm4, asm6
from tests.support.batch import WAIT
from tests.support.netns import Netns

G = asm4(5, 11)
G2 = asm4(5, 12)


def _read_all(sock: MulticastSocket, impl: str) -> list[Datagram]:
    """Everything queued on ``sock``, read by recv_batch with implementation ``impl``."""
    _io.force_impl(impl)
    try:
        out = sock.recv_batch(7, timeout_s=WAIT)  # small batches: many ring refills
        sock.setblocking(False)
        while True:
            try:
                out += sock.recv_batch(7)
            except BlockingIOError:
                return out
    finally:
        _io.force_impl(None)


def _fields(d: Datagram) -> tuple[object, ...]:
    return (d.data, d.source, d.port, d.group, d.interface, d.ttl, d.truncated, d.drops,
            d.tos)


@pytest.mark.kernel
@pytest.mark.parametrize("impl", [i for i in ("c", "ctypes") if i != "python"])
def test_same_datagrams_as_python(netns: Netns, mcast_port: int, impl: str) -> None:
    """Same traffic to two sockets: every field equal (data, source, port, group,
    interface, ttl, truncated, drops, tos), with drops and truncation in the mix."""
    if impl not in _io.available_impls():
        pytest.skip(f"{impl} not available here")
    opts = dict(metadata=True, timestamps=True, reuse_port=True, recv_size=24,
                rcvbuf_bytes=32768)
    a = mcastkit.open_receiver(f"{G}:{mcast_port}", f"{G2}:{mcast_port}", interface="lo",
                               **opts)
    b = mcastkit.open_receiver(f"{G}:{mcast_port}", f"{G2}:{mcast_port}", interface="lo",
                               **opts)
    t1 = mcastkit.MulticastSocket(4, interface="lo", ttl=3)
    t2 = mcastkit.MulticastSocket(4, interface="lo", ttl=5)
    with a, b, t1, t2:
        for i in range(300):  # overflows the tiny queues: same drops on both sockets
            (t1 if i % 3 else t2).sendto(b"%d:" % i + b"y" * (i % 30), G if i % 5 else G2,
                                         mcast_port)
        got = _read_all(a, impl)
        ref = _read_all(b, "python")
        for i in range(20):  # queued after the overflow: these carry the drop count
            t1.sendto(b"after%d" % i, G, mcast_port)
        a.setblocking(True)
        b.setblocking(True)
        got += _read_all(a, impl)
        ref += _read_all(b, "python")
        assert [_fields(d) for d in got] == [_fields(d) for d in ref]
        assert any(d.truncated for d in got) and any(not d.truncated for d in got)
        assert {d.group for d in got} == {G, G2} and {d.ttl for d in got} == {3, 5}
        assert max(d.drops or 0 for d in got) > 0, "the tiny queue should have overflowed"
        assert all(isinstance(d.timestamp_ns, int) and d.timestamp_ns > 0 for d in got)
        assert a.stats == b.stats


@pytest.mark.kernel
def test_c_without_metadata(netns: Netns, mcast_port: int) -> None:
    """Without metadata the compiled ring leaves every metadata field None."""
    if "c" not in _io.available_impls():
        pytest.skip("the accelerator is not built")
    rx = mcastkit.open_receiver(f"{G}:{mcast_port}", interface="lo")
    tx = mcastkit.open_sender(f"{G}:{mcast_port}", interface="lo")
    with rx, tx:
        tx.send(b"one")
        tx.send(b"two")
        got = _read_all(rx, "c")
        assert isinstance(rx._rx._batch, _io._c.CReader)
        assert [d.data for d in got] == [b"one", b"two"]
        assert got[0] == Datagram(b"one", got[0].source, tx.local_address[1])
        assert got[1].source == got[0].source != ""


def test_force_impl_refuses_unknown() -> None:
    with pytest.raises(ValueError, match="not available"):
        _io.force_impl("fortran")
    assert "python" in _io.available_impls()
    assert _io.current_impl() == _io.available_impls()[0] or os.environ.get(
        "MCASTKIT_BATCH")


@pytest.mark.parametrize("name", ["python", "ctypes", "c"])
def test_env_selects(name: str) -> None:
    env = dict(os.environ, MCASTKIT_BATCH=name)
    out = subprocess.run([sys.executable, "-c", "from mcastkit import _io;"
                          "print(_io.current_impl(), ','.join(_io.available_impls()))"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    current, avail = out[0], out[1].split(",")
    assert current == (name if name in avail else avail[0])


@pytest.mark.kernel
def test_g1_recv_batch_filters_by_arrival_interface(veth_loop: object, impl: str,
                                                     mcast_port: int) -> None:
    """Like recv(): an IPv6 datagram for a joined group that arrived on an interface this
    socket did not join it on is dropped and counted (field notes G1)."""
    g = asm6("5:11")
    with MulticastSocket(6, metadata=True, reuse_address=True) as on_va, \
            MulticastSocket(6, metadata=True, reuse_address=True) as on_vb, \
            MulticastSocket(6, interface="va", loopback=False) as out_va, \
            MulticastSocket(6, interface="vb", loopback=False) as out_vb:
        on_va.bind(mcast_port)
        on_vb.bind(mcast_port)
        on_va.join(g, "va")
        on_vb.join(g, "vb")
        out_va.sendto(b"arrives on vb", g, mcast_port)
        assert on_vb.recv(WAIT).data == b"arrives on vb"  # so it is queued on on_va too
        out_vb.sendto(b"sentinel, arrives on va", g, mcast_port)
        got: list[Datagram] = []
        while not got:
            got = on_va.recv_batch(16, timeout_s=WAIT)
        assert [d.data for d in got] == [b"sentinel, arrives on va"]
        assert on_va.stats.filtered == 1 and on_va.stats.datagrams == 1
