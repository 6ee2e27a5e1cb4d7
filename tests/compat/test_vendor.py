"""The vendor's names and settings that code ported from ``ipworks.MCast`` relies on
(issue 8 item 5), checked against the real kernel in a fresh namespace.

IPWorksMcastError, AbsoluteTimeout as a boolean, InBufferSize / OutBufferSize read back as
integers in every state and never refused for a size the kernel cannot take, local_host
reading back a real address, and a join with receive_interface "" when the group's route
names a device but has no source address.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mcastkit
from mcastkit.compat import IPWorksError, MCast, MCastError
from mcastkit.compat._settings import SETTINGS, Row
from tests.support.addrs import SRC4, asm4
from tests.support.compat import Recorder, pump, run_python
from tests.support.netns import Netns
from tests.support.topology import VethPair

G = asm4(13, 1)
Make = Callable[..., MCast]


# ------------------------------------------------------------------ names and types


def test_ipworks_mcast_error_is_exported_everywhere() -> None:
    code = ("from mcastkit.compat import *\n"
            "import mcastkit\n"
            "assert IPWorksMcastError is MCastError is IPWorksError\n"
            "assert mcastkit.IPWorksMcastError is MCastError\n"
            "try:\n"
            "    MCast().send(b'x')\n"
            "except IPWorksMcastError as e:\n"
            "    print(e.code)\n")
    assert run_python(code) == "109"
    assert mcastkit.IPWorksMcastError is IPWorksError  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "want"), [("True", "True"), ("false", "False"), ("1", "True"),
                                            ("0", "False")])
def test_absolute_timeout_is_a_boolean(text: str, want: str) -> None:
    mc = MCast()
    assert mc.config("AbsoluteTimeout") == "False"
    mc.config(f"AbsoluteTimeout={text}")
    assert mc.config("AbsoluteTimeout") == want


def test_absolute_timeout_refuses_a_number_of_seconds() -> None:
    mc = MCast()
    with pytest.raises(MCastError) as ei:
        mc.config("AbsoluteTimeout=30")
    assert ei.value.code == 121 and "True or False" in ei.value.message
    assert mc.config("AbsoluteTimeout") == "False"


# ------------------------------------------------------------------ buffer sizes

def _default(kind: str) -> int:
    with open(f"/proc/sys/net/core/{kind}_default") as f:
        return int(f.read())


def test_buffer_sizes_read_back_as_integers_in_every_state(netns: Netns, make: Make) -> None:
    mc = make()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        rcv = plain.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        snd = plain.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    assert (rcv, snd) == (_default("rmem"), _default("wmem"))
    assert mc.config("InBufferSize") == str(rcv)  # unset and inactive: the kernel's default
    assert mc.config("OutBufferSize") == str(snd)
    mc.active = True
    raw = mc._s.core.sock  # type: ignore[union-attr]  # the kernel's view, for comparison
    assert mc.config("InBufferSize") == str(raw.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    assert mc.config("OutBufferSize") == str(raw.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    mc.active = False
    assert mc.config("InBufferSize") == str(rcv)


@pytest.mark.parametrize("size", ["0", "1", str((1 << 31) - 1)])
def test_a_size_the_kernel_cannot_take_is_clamped_not_refused(
        netns: Netns, make: Make, size: str) -> None:
    rmem_max = int(netns.read_sysctl("net.core.rmem_max"))
    mc = make()
    mc.config(f"InBufferSize={size}")  # inactive: accepted as the request
    assert mc.config("InBufferSize") == size
    mc.active = True  # never an exception: the kernel's value is what reads back
    raw = mc._s.core.sock  # type: ignore[union-attr]
    applied = raw.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert mc.config("InBufferSize") == str(applied)
    assert applied <= 2 * rmem_max  # capped at rmem_max (doubled by Linux)
    mc.config(f"InBufferSize={size}")  # the same while active
    assert mc.config("InBufferSize") == str(raw.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


@pytest.mark.parametrize("text", ["-1", "lots", "1.5"])
def test_buffer_size_that_is_not_a_size_raises_121(text: str) -> None:
    mc = MCast()
    before = mc.config("OutBufferSize")
    with pytest.raises(MCastError) as ei:
        mc.config(f"OutBufferSize={text}")
    assert ei.value.code == 121
    assert mc.config("OutBufferSize") == before


# ------------------------------------------------------------------ local_host


def test_local_host_reads_back_the_interface_in_use_on_veth(
        veth_pair: VethPair, make: Make) -> None:
    with veth_pair.a.enter():
        mc = make(interface="eth0")
        assert mc.local_host == ""
        mc.active = True
        assert mc.local_host == veth_pair.addr_a
        assert mc.config("LocalHost") == veth_pair.addr_a
        mc.local_host = ""  # the value assigned: not a change
        mc.active = False
        assert mc.local_host == ""


def test_local_host_without_any_interface_is_a_real_address(netns: Netns) -> None:
    mc = MCast()
    mc.active = True
    try:
        assert mc.local_host == "127.0.0.1"  # nothing configured or joined: loopback
    finally:
        mc.active = False


# ------------------------------------------------------------------ join by the route's device


def test_join_follows_a_route_without_source_address(veth_pair: VethPair) -> None:
    """In b, ``224.0.0.0/4 dev eth0`` and eth0 has no IPv4 address: the empty
    receive_interface joins on eth0 (the vendor's "system's choice"), not 10051."""
    b = veth_pair.b
    b.ip("-4", "addr", "flush", "dev", "eth0")
    b.ip("route", "add", "224.0.0.0/4", "dev", "eth0")
    rec = Recorder()
    with b.enter():
        rx = rec.attach(MCast())
        rx.config("SelectWaitMillis=5")
        rx.multicast_group = G
        rx.active = True
    try:
        assert rx.memberships == (f"{G} on eth0",)
        with veth_pair.a.enter(), mcastkit.MulticastSocket(4, interface="eth0") as tx:
            tx.sendto(b"from-a", G, rx.local_port)
        pump([rx], lambda: bool(rec.data))
        assert rec.payloads == [b"from-a"]
        assert rec.data[0].source_address == veth_pair.addr_a
    finally:
        rx.active = False


# ------------------------------------------------------------------ every row's parser

_WRITABLE = [r for r in SETTINGS if not r.read_only]


@pytest.mark.parametrize("row", _WRITABLE, ids=[r.name for r in _WRITABLE])
@given(text=st.one_of(st.text(max_size=12), st.integers(-(1 << 33), 1 << 33).map(str),
                      st.sampled_from(["True", "off", "", " 7 ", "0x10", "Voice", "::1",
                                       SRC4, "65001"])))
def test_each_row_parses_or_refuses_and_reads_back_what_it_parsed(row: Row, text: str) -> None:
    """Any text either raises MCastError (121/123: nothing changes) or gives a value that
    reads back as text which parses to the same value."""
    try:
        value = row.kind.parse(row.name, text)
    except MCastError as exc:
        assert exc.code in (121, 123) and row.name in exc.message
        return
    assert row.kind.parse(row.name, row.kind.fmt(value)) == value
