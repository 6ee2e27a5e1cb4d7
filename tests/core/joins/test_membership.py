"""Field notes §2 group A (membership API) against the real kernel, one namespace each.

Owns: A1-A3, A5-A12 (A4, the SSM transitions, is in test_ssm.py). Each test asserts the
library's promised behaviour *and* the typed error class and :class:`ErrorCode`.
Must not: prove non-delivery with a sleep (see tests/support/kernel.py), or use an
interface outside the test's namespace.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

import pytest

from mcastkit import (
    AlreadyJoinedError,
    ErrorCode,
    InterfaceError,
    InterfaceNotFoundError,
    McastOSError,
    McastValueError,
    MembershipLimitError,
    MulticastSocket,
    NotJoinedError,
    SourceFilterError,
)
from mcastkit import _platform as plat
from mcastkit._errors import ErrOp
from mcastkit._platform import Op
from mcastkit._platform._structs import pack_group_req, pack_group_source_req
from mcastkit._translate import from_oserror
from tests.support import kernelstate
from tests.support.addrs import ASM_NET4, G4, G6, SRC4, SSM4, UNICAST4, asm6, lab_host, ssm4
from tests.support.kernel import WAIT_S, Env, drain, env, group4, group6, groups_on
from tests.support.netns import Netns
from tests.support.topology import VethLoop, VethPair

pytestmark = pytest.mark.kernel
__all__ = ["env"]  # the fixture is used by parameter name

# --------------------------------------------------------------------------- A1


def test_a1_second_join_is_a_noop(env: Env) -> None:
    g = env.group()
    with env.rx() as rx, env.tx() as tx:
        m1 = rx.join(g)
        m2 = rx.join(g)
        assert m1 == m2 and len(rx.memberships) == 1
        assert g in env.igmp()
        tx.sendto(b"once", g, rx.local_address[1])
        assert rx.recv(WAIT_S).data == b"once"
        assert drain(rx) == []  # one membership, one copy
        rx.leave(g)  # one leave undoes both joins: no double bookkeeping
        assert g not in env.igmp()
        with pytest.raises(NotJoinedError):
            rx.leave(g)


def test_a1_kernel_eaddrinuse_becomes_already_joined(env: Env) -> None:
    """Behind the book's back (raw setsockopt) the kernel says EADDRINUSE; the library
    turns it into AlreadyJoinedError and its book stays empty."""
    g = env.group()
    with env.rx() as rx:
        plat.setopt(rx.sock, Op.JOIN, pack_group_req(env.ifindex, _ip(g)))
        with pytest.raises(AlreadyJoinedError) as ei:
            rx.join(g)
        assert ei.value.code is ErrorCode.ALREADY_JOINED
        assert ei.value.errno == errno.EADDRINUSE
        assert g in str(ei.value) and "already joined" in str(ei.value)
        assert rx.memberships == ()


# --------------------------------------------------------------------------- A2


@pytest.mark.parametrize("leaver", ["first", "second"])
def test_a2_second_socket_keeps_receiving_after_the_other_leaves(env: Env, leaver: str) -> None:
    g = env.group()
    with env.rx(reuse_address=True) as a, env.tx() as tx:
        port = a.local_address[1]
        with env.tx(reuse_address=True, metadata=True) as b:
            b.bind(port)
            a.join(g)
            b.join(g)
            tx.sendto(b"both", g, port)
            assert a.recv(WAIT_S).data == b"both"
            assert b.recv(WAIT_S).data == b"both"
            gone, stays = (a, b) if leaver == "first" else (b, a)
            gone.leave(g)
            assert g in env.igmp()  # the kernel still counts the other socket
            tx.sendto(b"after", g, port)
            assert stays.recv(WAIT_S).data == b"after"
            assert drain(gone) == []  # same delivery pass: it would be queued by now
            stays.leave(g)
            assert g not in env.igmp()


# --------------------------------------------------------------------------- A3


def test_a3_leave_never_joined_is_not_joined_before_any_syscall(env: Env) -> None:
    g = env.group()
    with env.rx() as rx:
        with pytest.raises(NotJoinedError) as ei:
            rx.leave(g)
        assert ei.value.code is ErrorCode.NOT_JOINED
        assert ei.value.errno == 0  # decided by the book, not the kernel
        assert g in str(ei.value)


def test_a3_kernel_eaddrnotavail_becomes_not_joined(env: Env) -> None:
    """The kernel forgot the group (raw leave behind the book): its EADDRNOTAVAIL maps
    to NotJoinedError, never a raw OSError."""
    g = env.group()
    with env.rx() as rx:
        rx.join(g)
        plat.setopt(rx.sock, Op.LEAVE, pack_group_req(env.ifindex, _ip(g)))
        with pytest.raises(NotJoinedError) as ei:
            rx.leave(g)
        assert ei.value.errno == errno.EADDRNOTAVAIL
        assert ei.value.code is ErrorCode.NOT_JOINED


# --------------------------------------------------------------------------- A5


@pytest.mark.parametrize("limit", [20, 5])
def test_a5_membership_limit_names_the_sysctl_and_keeps_state(netns: Netns, limit: int) -> None:
    netns.sysctl("net.ipv4.igmp_max_memberships", limit)
    groups = [group4() for _ in range(limit + 1)]
    with MulticastSocket(4, interface="lo", metadata=True) as rx, \
            MulticastSocket(4, interface="lo") as tx:
        port = rx.bind(0)[1]
        for g in groups[:limit]:
            rx.join(g)
        with pytest.raises(MembershipLimitError) as ei:
            rx.join(groups[limit])
        e = ei.value
        assert e.code is ErrorCode.MEMBERSHIP_LIMIT and e.errno == errno.ENOBUFS
        assert f"net.ipv4.igmp_max_memberships={limit}" in str(e)
        assert groups[limit] in str(e)
        assert len(rx.memberships) == limit  # state unchanged
        for g in groups[:limit]:  # the first `limit` still receive
            tx.sendto(g.encode(), g, port)
            d = rx.recv(WAIT_S)
            assert d.data == g.encode() and d.group == g
        # the documented way out: a second socket takes the overflow
        with MulticastSocket(4, interface="lo", reuse_address=True) as more:
            more.join(groups[limit])
            assert groups[limit] in groups_on("lo", kernelstate.igmp_groups())


def test_a5_first_source_of_a_new_group_over_the_limit_is_a_membership_limit(
    netns: Netns,
) -> None:
    # the kernel answers ENOBUFS for both limits; a new group means the membership count
    netns.sysctl("net.ipv4.igmp_max_memberships", 2)
    netns.sysctl("net.ipv4.igmp_max_msf", 10)
    with MulticastSocket(4, interface="lo") as s:
        s.join_source(UNICAST4, ssm4(200, 251, 1))
        s.join_source(UNICAST4, ssm4(200, 251, 2))
        with pytest.raises(MembershipLimitError) as ei:
            s.join_source(UNICAST4, ssm4(200, 251, 3))
        assert ei.value.errno == errno.ENOBUFS
        assert "net.ipv4.igmp_max_memberships=2" in str(ei.value)
        s.join_source(lab_host(5, 2), ssm4(200, 251, 1))  # a source on a held group still works
        assert len(s.memberships) == 2


# --------------------------------------------------------------------------- A6


def test_a6_source_limit_v4_join_source(netns: Netns) -> None:
    netns.sysctl("net.ipv4.igmp_max_msf", 3)
    g = ssm4(200, 250, 1)
    with MulticastSocket(4, interface="lo") as s:
        for i in range(3):
            s.join_source(lab_host(5, i + 1), g)
        with pytest.raises(SourceFilterError) as ei:
            s.join_source(lab_host(5, 4), g)
        assert ei.value.code is ErrorCode.SOURCE_FILTER and ei.value.errno == errno.ENOBUFS
        assert "net.ipv4.igmp_max_msf=3" in str(ei.value)
        assert len(s.memberships[0].sources) == 3


def test_a6_source_limit_v4_block_source(netns: Netns) -> None:
    netns.sysctl("net.ipv4.igmp_max_msf", 2)
    g = group4()
    with MulticastSocket(4, interface="lo") as s:
        s.join(g)
        s.block_source(UNICAST4, g)
        s.block_source(lab_host(5, 2), g)
        with pytest.raises(SourceFilterError) as ei:
            s.block_source(lab_host(5, 3), g)
        assert ei.value.code is ErrorCode.SOURCE_FILTER
        assert "net.ipv4.igmp_max_msf=2" in str(ei.value)
        assert s.memberships[0].sources == frozenset({UNICAST4, lab_host(5, 2)})


def test_a6_source_limit_v6_names_mld_max_msf(veth_loop: VethLoop) -> None:
    """mld_max_msf (64) is global (init namespace only), so it is left at its default."""
    g = asm6("a:ffff")
    with MulticastSocket(6, interface="va") as s:
        n = 0
        with pytest.raises(SourceFilterError) as ei:
            for n in range(1, 200):
                s.join_source(f"fe80::{n:x}", g)
        assert ei.value.code is ErrorCode.SOURCE_FILTER and ei.value.errno == errno.ENOBUFS
        assert "net.ipv6.mld_max_msf" in str(ei.value)
        assert n == 65
        assert len(s.memberships[0].sources) == 64


# --------------------------------------------------------------------------- A7


def test_a7_ipv6_option_memory_limit(veth_loop: VethLoop) -> None:
    veth_loop.ns.sysctl("net.core.optmem_max", 4096)
    joined: list[str] = []
    with MulticastSocket(6, interface="va", metadata=True) as rx, \
            MulticastSocket(6, interface="va") as tx:
        port = rx.bind(0)[1]
        with pytest.raises(MembershipLimitError) as ei:
            for _ in range(5000):
                g = group6()
                rx.join(g)
                joined.append(g)
        e = ei.value
        assert e.code is ErrorCode.MEMBERSHIP_LIMIT and e.errno == errno.ENOMEM
        assert "net.core.optmem_max=4096" in str(e)
        assert 0 < len(joined) == len(rx.memberships)
        for g in (joined[0], joined[-1]):  # earlier joins intact
            tx.sendto(b"x", g, port)
            assert rx.recv(WAIT_S).group == g


# --------------------------------------------------------------------------- A8


@pytest.mark.parametrize(
    ("version", "group", "code"),
    [
        (4, SRC4, ErrorCode.NOT_MULTICAST),
        (4, "0.0.0.0", ErrorCode.NOT_MULTICAST),
        (4, "255.255.255.255", ErrorCode.NOT_MULTICAST),
        (4, G6, ErrorCode.WRONG_FAMILY),
        (6, "::1", ErrorCode.NOT_MULTICAST),
        (6, "fe80::1", ErrorCode.NOT_MULTICAST),
        (6, G4, ErrorCode.WRONG_FAMILY),
    ],
)
def test_a8_non_multicast_group_rejected_before_syscall(
    netns: Netns, version: int, group: str, code: ErrorCode
) -> None:
    before = kernelstate.memberships()
    with MulticastSocket(version, interface="lo") as s:
        with pytest.raises(McastValueError) as ei:
            s.join(group)
        assert isinstance(ei.value, ValueError)
        assert ei.value.code is code
        assert group in str(ei.value)
        assert s.memberships == ()
    assert kernelstate.memberships() == before


def test_a8_garbage_group_text(netns: Netns) -> None:
    with MulticastSocket(4, interface="lo") as s, pytest.raises(McastValueError) as ei:
        s.join("not-an-address")
    assert "not-an-address" in str(ei.value)


def test_a8_multicast_source_rejected(netns: Netns) -> None:
    with MulticastSocket(4, interface="lo") as s, pytest.raises(McastValueError) as ei:
        s.join_source(G4, ssm4(200, 250, 2))
    assert ei.value.code is ErrorCode.BAD_ADDRESS


# --------------------------------------------------------------------------- A9


@pytest.mark.parametrize("spec", ["nope0", 9999, "9999", lab_host(77, 77)])
def test_a9_unknown_interface_on_join(netns: Netns, spec: str | int) -> None:
    with MulticastSocket(4) as s:
        with pytest.raises(InterfaceNotFoundError) as ei:
            s.join(group4(), spec)
        e = ei.value
        assert e.code is ErrorCode.INTERFACE_NOT_FOUND
        assert isinstance(e, ValueError) and isinstance(e, InterfaceError)
        assert str(spec) in str(e) and "lo" in str(e)  # lists what exists
        assert s.memberships == ()


def test_a9_unknown_interface_in_constructor(netns: Netns) -> None:
    with pytest.raises(InterfaceNotFoundError) as ei:
        MulticastSocket(4, interface="nope0")
    assert ei.value.code is ErrorCode.INTERFACE_NOT_FOUND


# --------------------------------------------------------------------------- A10


def test_a10_no_route_and_no_interface_is_a_typed_error(netns: Netns) -> None:
    with MulticastSocket(4) as s:
        with pytest.raises(InterfaceError) as ei:
            s.join(group4())
        assert ei.value.code is ErrorCode.NO_ROUTE
        assert "interface=" in str(ei.value)
        assert s.memberships == ()


def test_a10_default_join_uses_the_route_and_reports_it(veth_pair: VethPair) -> None:
    with veth_pair.b.enter():
        veth_pair.b.route_add(ASM_NET4, "dev", "eth0")
        g = group4()
        with MulticastSocket(4) as s:
            m = s.join(g)
            assert (m.ifname, m.ifindex) == ("eth0", veth_pair.ifindex_b)
            assert groups_on("eth0", kernelstate.igmp_groups()) >= {g}
            assert g not in groups_on("lo", kernelstate.igmp_groups())


def test_a10_default_join_v6_is_deterministic(veth_loop: VethLoop) -> None:
    g = group6()
    with MulticastSocket(6) as s:
        m = s.join(g)
        assert m.ifname in ("va", "vb")
        holders = {d for d, grp in kernelstate.igmp6_groups() if grp == g}
        assert holders == {m.ifname}


# --------------------------------------------------------------------------- A11


def test_a11_struct_sizes_match_the_kernel_abi() -> None:
    # struct group_req / group_source_req on LP64: u32 + pad + sockaddr_storage(s)
    assert len(pack_group_req(1, ipaddress.ip_address(G4))) == 136
    assert len(pack_group_source_req(1, ipaddress.ip_address(SSM4),
                                     ipaddress.ip_address(lab_host(1, 1)))) == 264
    assert len(pack_group_req(1, ipaddress.ip_address(G6))) == 136


def test_a11_short_buffer_is_einval_and_typed(netns: Netns) -> None:
    with MulticastSocket(4, interface="lo") as s:
        with pytest.raises(OSError) as raw:
            s.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, b"\xef\xff\x00")
        assert raw.value.errno == errno.EINVAL
        typed = from_oserror(raw.value, ErrOp.JOIN, group=G4, interface="lo")
        assert type(typed) is McastOSError and typed.errno == errno.EINVAL
        assert G4 in str(typed)


def test_a11_every_packed_request_is_accepted(env: Env) -> None:
    """join, block, unblock, leave, join_source, leave_source: the kernel takes each."""
    g = env.group()
    src = lab_host(5, 9) if env.version == 4 else "fe80::9"
    ssm = ssm4(200, 250, 3) if env.version == 4 else "ff35::a:1"
    with env.rx() as s:
        s.join(g)
        s.block_source(src, g)
        s.unblock_source(src, g)
        s.leave(g)
        s.join_source(src, ssm)
        s.leave_source(src, ssm)
        assert s.memberships == ()
        assert g not in env.igmp() and ssm not in env.igmp()


# --------------------------------------------------------------------------- A12


def test_a12_v6_socket_binds_beside_a_v4_wildcard(netns: Netns) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4:
        v4.bind(("0.0.0.0", 0))
        port = v4.getsockname()[1]
        with MulticastSocket(6) as s6:
            assert s6.bind(port) == ("::", port)
            assert s6.sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


def test_a12_v4_binds_beside_our_v6_wildcard(netns: Netns) -> None:
    with MulticastSocket(6) as s6:
        port = s6.bind(0)[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4:
            v4.bind(("0.0.0.0", port))


def test_a12_control_dual_stack_socket_collides(netns: Netns) -> None:
    """Positive control: without V6ONLY the same bind fails, so the test above means it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4, \
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as v6:
        v4.bind(("0.0.0.0", 0))
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        with pytest.raises(OSError) as ei:
            v6.bind(("::", v4.getsockname()[1]))
        assert ei.value.errno == errno.EADDRINUSE


def test_a12_bind_collision_is_typed_and_names_reuse_port(netns: Netns) -> None:
    with MulticastSocket(4) as a, MulticastSocket(4) as b:
        port = a.bind(0)[1]
        with pytest.raises(McastOSError) as ei:
            b.bind(port)
        assert ei.value.errno == errno.EADDRINUSE
        assert ei.value.code is ErrorCode.ADDRESS_IN_USE
        assert "reuse_port" in str(ei.value)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)
