"""Source-specific multicast against the real kernel: field notes A4 and technique #13.

Owns: every SSM/ASM state transition (join source -> leave source, join source -> leave
group, join -> block -> unblock -> leave), the transitions where the kernel's errnos
disagree (EADDRNOTAVAIL, EADDRINUSE, EINVAL), checked through our typed errors, and the
kernel's view in /proc/net/mcfilter(6).
Must not: prove non-delivery with a sleep (a later datagram from the allowed source is
the sentinel).
"""

from __future__ import annotations

import errno
import ipaddress
import socket

import pytest

from mcastkit import (
    AlreadyJoinedError,
    ErrorCode,
    FilterMode,
    ModeConflictError,
    NotJoinedError,
    SourceFilterError,
)
from mcastkit import _platform as plat
from mcastkit._platform import Op
from mcastkit._platform._structs import pack_group_source_req
from tests.support import kernelstate
from tests.support.kernel import WAIT_S, Env, add_sources, drain, env, sender_from, ssm_group

pytestmark = pytest.mark.kernel
__all__ = ["env"]



def _raw(env: Env, op: Op, sock: socket.socket, source: str, group: str) -> None:
    """Set ``op`` directly, behind the membership book's back."""
    req = pack_group_source_req(env.ifindex, ipaddress.ip_address(group),
                                ipaddress.ip_address(source))
    plat.setopt(sock, op, req)


def _filters(env: Env, group: str) -> set[tuple[str, int, int]]:
    """(source, include, exclude) rows of /proc/net/mcfilter(6) for ``group``."""
    return {(s, inc, exc) for dev, g, s, inc, exc in kernelstate.source_filters()
            if dev == env.ifname and g == group}


def _norm(env: Env, addr: str) -> str:
    return addr.split("%")[0]


# --------------------------------------------------------------------------- delivery


def test_ssm_delivers_only_the_joined_source(env: Env) -> None:
    s1, s2 = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx, sender_from(env, s1) as tx1, sender_from(env, s2) as tx2:
        port = rx.local_address[1]
        m = rx.join_source(s1, g)
        assert m.mode is FilterMode.INCLUDE and m.sources == frozenset({s1})
        assert _filters(env, g) == {(s1, 1, 0)}  # INCLUDE entry in /proc/net/mcfilter
        tx2.sendto(b"forbidden", (g, port))
        tx1.sendto(b"sentinel", (g, port))
        d = rx.recv(WAIT_S)
        assert (d.data, _norm(env, d.source)) == (b"sentinel", s1)
        assert drain(rx) == []


def test_block_then_unblock_source(env: Env) -> None:
    s1, s2 = add_sources(env)
    g = env.group()
    with env.rx() as rx, sender_from(env, s1) as tx1, sender_from(env, s2) as tx2:
        port = rx.local_address[1]
        rx.join(g)
        rx.block_source(s2, g)
        assert rx.memberships[0].sources == frozenset({s2})
        assert _filters(env, g) == {(s2, 0, 1)}  # EXCLUDE entry
        tx2.sendto(b"blocked", (g, port))
        tx1.sendto(b"sentinel", (g, port))
        assert rx.recv(WAIT_S).data == b"sentinel"
        assert drain(rx) == []
        rx.unblock_source(s2, g)
        assert _filters(env, g) == set()
        tx2.sendto(b"open again", (g, port))
        d = rx.recv(WAIT_S)
        assert (d.data, _norm(env, d.source)) == (b"open again", s2)
        rx.leave(g)
        assert g not in env.igmp()


# --------------------------------------------------------------------------- transitions


def test_join_source_then_leave_source(env: Env) -> None:
    s1, s2 = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx:
        rx.join_source(s1, g)
        rx.join_source(s2, g)
        assert {s for s, _, _ in _filters(env, g)} == {s1, s2}
        rx.leave_source(s1, g)
        assert rx.memberships[0].sources == frozenset({s2})
        assert _filters(env, g) == {(s2, 1, 0)}
        rx.leave_source(s2, g)  # the last source leaves the group
        assert rx.memberships == ()
        assert g not in env.igmp() and _filters(env, g) == set()


def test_join_source_then_leave_group(env: Env) -> None:
    s1, s2 = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx:
        rx.join_source(s1, g)
        rx.join_source(s2, g)
        rx.leave(g)
        assert rx.memberships == ()
        assert g not in env.igmp() and _filters(env, g) == set()


def test_same_source_twice_is_a_noop(env: Env) -> None:
    s1, _ = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx:
        m1 = rx.join_source(s1, g)
        assert rx.join_source(s1, g) == m1
        assert _filters(env, g) == {(s1, 1, 0)}


def test_kernel_eaddrnotavail_on_source_rejoin_is_source_filter_error(env: Env) -> None:
    """Kernel: the same (S,G) again gives EADDRNOTAVAIL (not EADDRINUSE)."""
    s1, _ = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx:
        _raw(env, Op.JOIN_SOURCE, rx.sock, s1, g)  # behind the book's back
        with pytest.raises(SourceFilterError) as ei:
            rx.join_source(s1, g)
        assert ei.value.errno == errno.EADDRNOTAVAIL
        assert ei.value.code is ErrorCode.SOURCE_FILTER
        assert rx.memberships == ()


def test_asm_join_of_ssm_group_is_mode_conflict(env: Env) -> None:
    s1, _ = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx:
        rx.join_source(s1, g)
        with pytest.raises(ModeConflictError) as ei:
            rx.join(g)
        assert ei.value.code is ErrorCode.MODE_CONFLICT
        assert isinstance(ei.value, ValueError)
        assert rx.memberships[0].mode is FilterMode.INCLUDE
        assert _filters(env, g) == {(s1, 1, 0)}  # nothing reached the kernel


def test_kernel_eaddrinuse_on_asm_over_ssm_is_typed(env: Env) -> None:
    """Kernel: an ASM join of a group held source-specifically gives EADDRINUSE."""
    s1, _ = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx:
        _raw(env, Op.JOIN_SOURCE, rx.sock, s1, g)
        with pytest.raises(AlreadyJoinedError) as ei:
            rx.join(g)
        assert ei.value.errno == errno.EADDRINUSE
        assert ei.value.code is ErrorCode.ALREADY_JOINED


def test_source_join_of_asm_group_is_mode_conflict(env: Env) -> None:
    s1, _ = add_sources(env)
    g = env.group()
    with env.rx() as rx:
        rx.join(g)
        with pytest.raises(ModeConflictError) as ei:
            rx.join_source(s1, g)
        assert ei.value.code is ErrorCode.MODE_CONFLICT
        assert "block_source" in str(ei.value)


def test_leave_source_twice_is_not_joined(env: Env) -> None:
    s1, s2 = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx:
        rx.join_source(s1, g)
        rx.join_source(s2, g)
        rx.leave_source(s1, g)
        with pytest.raises(NotJoinedError) as ei:
            rx.leave_source(s1, g)
        assert ei.value.code is ErrorCode.NOT_JOINED and ei.value.errno == 0


def test_kernel_einval_on_source_leave_again_is_not_joined(env: Env) -> None:
    """Kernel: leaving an SSM source twice gives EINVAL (IPv4) / EADDRNOTAVAIL; both are
    NotJoinedError."""
    s1, s2 = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx:
        rx.join_source(s1, g)
        rx.join_source(s2, g)
        _raw(env, Op.LEAVE_SOURCE, rx.sock, s1, g)
        with pytest.raises(NotJoinedError) as ei:
            rx.leave_source(s1, g)
        assert ei.value.errno in (errno.EINVAL, errno.EADDRNOTAVAIL)
        assert ei.value.code is ErrorCode.NOT_JOINED


def test_kernel_block_twice_is_source_filter_error(env: Env) -> None:
    s1, _ = add_sources(env)
    g = env.group()
    with env.rx() as rx:
        rx.join(g)
        _raw(env, Op.BLOCK_SOURCE, rx.sock, s1, g)
        with pytest.raises(SourceFilterError) as ei:
            rx.block_source(s1, g)
        assert ei.value.errno == errno.EADDRNOTAVAIL
        assert ei.value.code is ErrorCode.SOURCE_FILTER


def test_block_on_ssm_group_is_mode_conflict(env: Env) -> None:
    s1, s2 = add_sources(env)
    g = ssm_group(env)
    with env.rx() as rx:
        rx.join_source(s1, g)
        with pytest.raises(ModeConflictError):
            rx.block_source(s2, g)


def test_block_without_join_is_not_joined(env: Env) -> None:
    s1, _ = add_sources(env)
    with env.rx() as rx, pytest.raises(NotJoinedError) as ei:
        rx.block_source(s1, env.group())
    assert ei.value.code is ErrorCode.NOT_JOINED


def test_unblock_of_unblocked_source_is_a_noop(env: Env) -> None:
    s1, _ = add_sources(env)
    g = env.group()
    with env.rx() as rx:
        rx.join(g)
        rx.unblock_source(s1, g)
        assert rx.memberships[0].sources == frozenset()


def test_close_releases_source_filters(env: Env) -> None:
    s1, s2 = add_sources(env)
    g = ssm_group(env)
    rx = env.rx()
    rx.join_source(s1, g)
    rx.join_source(s2, g)
    rx.close()
    assert _filters(env, g) == set() and g not in env.igmp()
