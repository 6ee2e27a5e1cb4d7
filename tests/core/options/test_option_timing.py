"""Options at different points of a socket's life (technique #23) and metadata toggled
mid-stream while the TTL changes (technique #14), against the real kernel.

Owns: TTL, loopback, outgoing interface and joins applied before bind, after bind,
after the first send and after the first receive, each giving the same observable
result; ``set_metadata`` on/off/on between datagrams, where every datagram's metadata
fields are present exactly when metadata is on (with ``recv`` and ``recv_batch``).
Must not: prove non-delivery with a sleep (a sentinel from a second sender follows).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from mcastkit import Datagram, MulticastSocket
from tests.support.kernel import WAIT_S, Env, drain, env

pytestmark = pytest.mark.kernel
__all__ = ["env"]

STAGES = ["before_bind", "after_bind", "after_first_send", "after_first_recv"]
OPTIONS = ["ttl", "loopback", "interface", "join"]


def _local(env: Env) -> str:
    return "127.0.0.1" if env.version == 4 else "::1"


def _unicast_sink(env: Env) -> socket.socket:
    fam = socket.AF_INET if env.version == 4 else socket.AF_INET6
    sink = socket.socket(fam, socket.SOCK_DGRAM)
    sink.bind((_local(env), 0))
    sink.settimeout(WAIT_S)
    return sink


def _life(env: Env, s: MulticastSocket, stage: str, apply: Callable[[], object]) -> None:
    """Bring ``s`` to ``stage`` (with unicast traffic over lo, which needs no multicast
    option), apply the option there, and leave ``s`` bound."""
    if stage == "before_bind":
        apply()
        s.bind(0)
        return
    s.bind(0)
    if stage == "after_first_send":
        with _unicast_sink(env) as sink:
            s.sendto(b"first", _local(env), sink.getsockname()[1])
            assert sink.recv(100) == b"first"
    elif stage == "after_first_recv":
        with _unicast_sink(env) as peer:
            peer.sendto(b"first", (_local(env), s.local_address[1]))
            assert s.recv(WAIT_S).data == b"first"
    apply()


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("option", OPTIONS)
def test_option_gives_the_same_result_at_every_stage(env: Env, option: str, stage: str
                                                     ) -> None:
    g = env.group()
    with env.rx() as rx, env.tx() as other, \
            MulticastSocket(env.version, metadata=True,
                            interface=None if option == "interface" else env.ifname) as s:
        rx.join(g)
        port = rx.local_address[1]
        if option == "ttl":
            _life(env, s, stage, lambda: s.set_ttl(7))
            assert s.ttl == 7
            s.sendto(b"ttl", g, port)
            d = rx.recv(WAIT_S)
            assert (d.data, d.ttl) == (b"ttl", 7)
        elif option == "loopback":
            _life(env, s, stage, lambda: s.set_loopback(False))
            assert s.loopback is False
            s.sendto(b"forbidden", g, port)
            other.sendto(b"sentinel", g, port)
            got = [rx.recv(WAIT_S).data]
            while got[-1] != b"sentinel":
                got.append(rx.recv(WAIT_S).data)
            got += [d.data for d in drain(rx)]
            # on lo the wire itself is local (C5): one copy whatever the setting
            want = [b"forbidden", b"sentinel"] if env.ifname == "lo" else [b"sentinel"]
            assert got == want
        elif option == "interface":
            _life(env, s, stage, lambda: s.set_interface(env.ifname))
            assert s.interface is not None and s.interface.name == env.ifname
            s.sendto(b"iface", g, port)
            d = rx.recv(WAIT_S)
            assert (d.data, d.interface) == (b"iface", env.ifindex)
        else:
            g2 = env.group()

            def join() -> None:
                s.join(g2)

            _life(env, s, stage, join)
            assert [m.group for m in s.memberships] == [g2]
            assert g2 in env.igmp()
            other.sendto(b"join", g2, s.local_address[1])
            d = s.recv(WAIT_S)
            assert (d.data, d.group) == (b"join", g2)
        assert drain(rx) == [] and drain(s) == []


# =========================================================================== #14

ROUNDS = 12


def _receive(s: MulticastSocket, method: str) -> Datagram:
    if method == "recv_batch":
        got = s.recv_batch(8, WAIT_S)
        assert len(got) == 1
        return got[0]
    return s.recv(WAIT_S)


@pytest.mark.parametrize("method", ["recv", "recv_batch"])
def test_metadata_toggled_mid_stream_while_the_ttl_changes(env: Env, method: str) -> None:
    g = env.group()
    with env.rx(metadata=False) as rx, env.tx() as tx:
        rx.join(g)
        port = rx.local_address[1]
        for i in range(ROUNDS):
            on = i % 3 != 1  # on, off, on, on, off, on...
            rx.set_metadata(on)
            assert rx.metadata is on
            ttl = 1 + (i * 37) % 255
            tx.set_ttl(ttl)
            tx.sendto(i.to_bytes(2, "big"), g, port)
            d = _receive(rx, method)
            assert d.data == i.to_bytes(2, "big")
            if on:
                assert (d.group, d.interface, d.ttl) == (g, env.ifindex, ttl)
            else:
                assert (d.group, d.interface, d.ttl, d.drops) == (None, None, None, None)
            assert d.source and d.port  # always there
        assert rx.stats.datagrams == ROUNDS and rx.stats.filtered == 0
