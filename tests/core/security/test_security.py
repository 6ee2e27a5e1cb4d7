"""Security goals of field notes §4 against the real kernel: G2 (source filtering is not
authentication), G3 (local by default, scope warnings), G4 (accept only on-link senders
with ``min_ttl``) and G7 (no port hijacking).

Owns: the McastScopeWarning contract (default TTL 1; a TTL above 1 for a link- or
interface-scope group warns, once per socket and cause; a reserved IPv6 scope warns;
matching settings never warn), the multi-user SO_REUSEPORT/SO_REUSEADDR behaviour of a
shared port (a second UID in a child process of the test thread, so in the same
namespace), and what forged source addresses (raw IPv4, IP_HDRINCL) get past.
Must not: prove non-delivery with a sleep (a sentinel from an allowed source follows the
forbidden datagram), forge anything outside 198.18.0.0/15, or leave the namespace.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest

from mcastkit import (
    ErrorCode,
    McastOSError,
    McastScopeWarning,
    McastValueError,
    MulticastSocket,
    open_receiver,
    open_sender,
)
from tests.support.addrs import asm4, asm6, lab_host, ssm4
from tests.support.fixtures import require_or_skip
from tests.support.kernel import WAIT_S, Env, drain, env, group_ssm4
from tests.support.spoof import Spoofer

pytestmark = pytest.mark.kernel
__all__ = ["env"]

NOBODY = 65534


@pytest.fixture
def lo4(netns: object) -> Iterator[None]:
    """IPv4 on the namespace's ``lo``."""
    yield None


def _scope_warnings(ws: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in ws if issubclass(w.category, McastScopeWarning)]


# =========================================================================== G3


def test_g3_default_ttl_is_one(env: Env) -> None:
    with MulticastSocket(env.version, interface=env.ifname) as s:
        assert s.ttl == 1
    with open_sender(f"{env.group()}:5000" if env.version == 4
                     else f"[{env.group()}]:5000", interface=env.ifname) as tx:
        assert tx.ttl == 1


def test_g3_default_ttl_arrives_as_one(env: Env) -> None:
    """A datagram sent with every default carries TTL / hop limit 1 (it stays on the link)."""
    g = env.group()
    with env.rx() as rx, env.tx() as tx:
        rx.join(g)
        tx.sendto(b"x", g, rx.local_address[1])
        assert rx.recv(WAIT_S).ttl == 1


def test_g3_mcast_scope_warning_is_a_public_user_warning() -> None:
    import mcastkit

    assert "McastScopeWarning" in mcastkit.__all__
    assert issubclass(McastScopeWarning, UserWarning)
    assert McastScopeWarning.__doc__


# Mismatches: (family, action, group, ttl); actions are what the user does.
MISMATCH = [
    (4, "connect", "224.0.0.251", 2),
    (4, "connect", "224.0.0.1", 255),
    (4, "connect_then_set_ttl", "224.0.0.251", 5),
    (4, "join", "224.0.0.251", 2),
    (4, "join_then_set_ttl", "224.0.0.252", 64),
    (4, "join_source", "224.0.0.253", 3),
    (4, "join_source_then_set_ttl", "224.0.0.254", 2),
    (6, "connect", "ff02::fb", 2),
    (6, "connect_then_set_ttl", "ff02::1:3", 9),
    (6, "join", "ff02::fb", 2),
    (6, "join_then_set_ttl", "ff02::a:1", 2),
    (6, "join_source", "ff02::a:2", 4),
    (6, "connect", "ff01::5", 2),  # interface-local scope
    (6, "join", "ff10::a:1", 1),  # reserved scope 0: warns whatever the TTL
    (6, "join", "ff1f::a:1", 1),  # reserved scope f
    (6, "connect", "ff13::a:1", 1),  # unassigned scope 3
]

# Matches: no warning at all.
MATCH = [
    (4, "connect", asm4(7, 1), 1),
    (4, "connect", asm4(7, 2), 32),
    (4, "join_then_set_ttl", asm4(7, 3), 255),
    (4, "join_source", ssm4(200, 77, 1), 64),
    (4, "join", "224.0.0.251", 1),  # mDNS-style: TTL 1 on a link-scope group is right
    (4, "join_then_set_ttl", "224.0.0.251", 0),
    (4, "connect_then_set_ttl", "224.0.0.251", 1),
    (6, "connect", asm6("a:7"), 5),
    (6, "join_then_set_ttl", asm6("a:8"), 200),
    (6, "join", "ff02::fb", 1),
    (6, "join_source", "ff35::a:9", 7),
    (6, "connect_then_set_ttl", "ff02::fb", 1),
]


def _do(env: Env, action: str, group: str, ttl: int) -> MulticastSocket:
    """Perform ``action``; the socket's TTL is ``ttl`` afterwards."""
    after = action.endswith("_then_set_ttl")
    base = action.removesuffix("_then_set_ttl")
    s = env.tx(ttl=1 if after else ttl)
    if base == "connect":
        s.connect(group, 5000)
    elif base == "join":
        s.join(group)
    else:
        s.join_source(lab_host(44, 1) if env.version == 4 else "fe80::44", group)
    if after:
        s.set_ttl(ttl)
    return s


def _env_for(request: pytest.FixtureRequest, family: int) -> Env:
    if family == 4:
        request.getfixturevalue("netns")
        return Env(4, "lo")
    request.getfixturevalue("veth_loop")
    return Env(6, "va")


@pytest.mark.parametrize(("family", "action", "group", "ttl"), MISMATCH)
def test_g3_scope_mismatch_warns(request: pytest.FixtureRequest, family: int, action: str,
                                 group: str, ttl: int) -> None:
    e = _env_for(request, family)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        s = _do(e, action, group, ttl)
    try:
        msgs = _scope_warnings(ws)
        assert len(msgs) == 1, msgs
        assert group in msgs[0]
        assert ws[0].filename == __file__  # points at the caller's line, not at mcastkit
        assert s.ttl == ttl  # a warning, not a refusal: the setting stands
    finally:
        s.close()


@pytest.mark.parametrize(("family", "action", "group", "ttl"), MATCH)
def test_g3_scope_match_does_not_warn(request: pytest.FixtureRequest, family: int, action: str,
                                      group: str, ttl: int) -> None:
    e = _env_for(request, family)
    with warnings.catch_warnings():
        warnings.simplefilter("error", McastScopeWarning)
        s = _do(e, action, group, ttl)
    s.close()


def test_g3_warns_once_per_cause(lo4: None) -> None:
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        with MulticastSocket(4, interface="lo") as s:
            s.join("224.0.0.251")
            for t in (2, 3, 4, 255, 1, 2):
                s.set_ttl(t)
            s.join("224.0.0.252")  # a second link-scope group is a second cause
            s.set_ttl(7)
            s.join(asm4(7, 9))  # site scope: fine at any TTL
        with MulticastSocket(4, interface="lo") as other:  # causes are per socket
            other.join("224.0.0.251")
            other.set_ttl(2)
    msgs = _scope_warnings(ws)
    assert len(msgs) == 3, msgs
    assert "224.0.0.251" in msgs[0] and "TTL 2" in msgs[0]
    assert "224.0.0.252" in msgs[1] and "TTL 2" in msgs[1]  # the TTL at join time
    assert "224.0.0.251" in msgs[2]


def test_g3_open_receiver_and_open_sender_warn(lo4: None) -> None:
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        with open_sender("224.0.0.251:5353", interface="lo", ttl=4):
            pass
        with open_receiver("224.0.0.251:5353", interface="lo", ttl=4):
            pass
    assert len(_scope_warnings(ws)) == 2


def test_g3_set_ttl_after_leave_or_disconnect_does_not_warn(lo4: None) -> None:
    with MulticastSocket(4, interface="lo") as s:
        s.join("224.0.0.251")
        s.leave("224.0.0.251")
        s.connect("224.0.0.252", 5353)
        s.disconnect()
        with warnings.catch_warnings():
            warnings.simplefilter("error", McastScopeWarning)
            s.set_ttl(9)
            assert s.ttl == 9


def test_g3_refused_join_does_not_warn(lo4: None) -> None:
    """A join the kernel refuses raises its typed error and issues no warning."""
    with open("/proc/sys/net/ipv4/igmp_max_memberships", "w") as f:
        f.write("1\n")
    with MulticastSocket(4, interface="lo", ttl=2) as s:
        s.join(asm4(7, 20))
        with warnings.catch_warnings():
            warnings.simplefilter("error", McastScopeWarning)
            with pytest.raises(McastOSError) as ei:
                s.join("224.0.0.251")
        assert ei.value.code is ErrorCode.MEMBERSHIP_LIMIT


# =========================================================================== G7

_CHILD = r"""
import os, socket, sys
fam = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
port, uid, opt = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if uid:  # before socket(): the kernel's same-UID rule uses the socket's creator
    try:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        print("DROPFAIL", e)
        sys.exit(3)
s = socket.socket(fam, socket.SOCK_DGRAM)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
if opt in ("port", "both"):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
if opt in ("addr", "both"):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port))
except OSError as e:
    print("ERR", e.errno, os.geteuid())
else:
    print("OK", 0, os.geteuid())
"""


def _child_bind(version: int, port: int, uid: int, opt: str) -> tuple[str, int]:
    """Bind ``port`` in a child process started from the test thread (so it is in the
    test's namespace), after dropping to ``uid`` (0: stay root). Returns (OK|ERR, errno)."""
    r = subprocess.run([sys.executable, "-I", "-S", "-c", _CHILD, str(version), str(port),
                        str(uid), opt], capture_output=True, text=True, timeout=30)
    if r.returncode == 3 or "DROPFAIL" in r.stdout:
        require_or_skip(f"cannot switch to uid {uid} here ({r.stdout.strip()})")
    assert r.returncode == 0, r.stderr
    word, err, euid = r.stdout.split()
    assert int(euid) == uid
    return word, int(err)


def _skip_unless_root() -> None:
    if os.geteuid() != 0:
        require_or_skip("G7 needs root in the namespace to switch to another UID")


def test_g7_other_uid_cannot_share_a_reuse_port_port(env: Env) -> None:
    _skip_unless_root()
    with env.rx(reuse_port=True) as first:
        port = first.local_address[1]
        # the child is in our namespace: without the option it collides
        assert _child_bind(env.version, port, 0, "none") == ("ERR", errno.EADDRINUSE)
        # positive control: same UID, SO_REUSEPORT -> shares
        assert _child_bind(env.version, port, 0, "port") == ("OK", 0)
        # another UID with SO_REUSEPORT -> refused by the kernel's same-UID rule
        assert _child_bind(env.version, port, NOBODY, "port") == ("ERR", errno.EADDRINUSE)
        assert _child_bind(env.version, port, NOBODY, "none") == ("ERR", errno.EADDRINUSE)


def test_g7_same_uid_shares_and_both_receive(env: Env) -> None:
    g = env.group()
    with env.rx(reuse_port=True) as a, env.tx(reuse_port=True, metadata=True) as b, \
            env.tx() as tx:
        port = a.local_address[1]
        assert b.bind(port)[1] == port
        a.join(g)
        b.join(g)
        tx.sendto(b"both", g, port)
        assert a.recv(WAIT_S).data == b"both"
        assert b.recv(WAIT_S).data == b"both"


def test_g7_reuse_address_lets_another_uid_share_the_port(env: Env) -> None:
    """The documented risk: SO_REUSEADDR on UDP has no same-UID rule. A socket opened with
    ``reuse_address=True`` can be joined on its port by any local user."""
    _skip_unless_root()
    with env.rx(reuse_address=True) as first:
        port = first.local_address[1]
        assert _child_bind(env.version, port, NOBODY, "addr") == ("OK", 0)
        assert _child_bind(env.version, port, NOBODY, "port") == ("ERR", errno.EADDRINUSE)


@pytest.mark.parametrize(("first", "second"), [
    ({}, {}), ({"reuse_port": True}, {}), ({}, {"reuse_port": True}),
    ({"reuse_address": True}, {}),
])
def test_g7_second_bind_without_sharing_is_typed_and_names_reuse_port(
        lo4: None, first: dict[str, bool], second: dict[str, bool]) -> None:
    with MulticastSocket(4, interface="lo", **first) as a, \
            MulticastSocket(4, interface="lo", **second) as b:
        port = a.bind(0)[1]
        with pytest.raises(McastOSError) as ei:
            b.bind(port)
        assert ei.value.errno == errno.EADDRINUSE
        assert ei.value.code is ErrorCode.ADDRESS_IN_USE
        assert "reuse_port" in str(ei.value)
        assert b.bind(0)[1] != port  # the refused call left the socket usable


def test_g7_mcastkit_defaults_set_no_reuse_option(lo4: None) -> None:
    with MulticastSocket(4, interface="lo") as s:
        assert s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
        assert s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0


# =========================================================================== G2

FORGED = lab_host(77, 7)
OTHER = lab_host(77, 8)


def test_g2_forged_source_reaches_an_any_source_socket(lo4: None) -> None:
    g = asm4(77, 1)
    with MulticastSocket(4, interface="lo", metadata=True) as rx, Spoofer("lo") as sp:
        port = rx.bind(0)[1]
        rx.join(g)
        sp.send(FORGED, 4242, g, port, b"forged")
        d = rx.recv(WAIT_S)
        assert (d.data, d.source, d.port, d.group) == (b"forged", FORGED, 4242, g)


def test_g2_ssm_socket_joined_to_the_forged_source_accepts_it(lo4: None) -> None:
    """The limit of source filtering: (S,G) filters on a header field anyone can write."""
    g = group_ssm4()
    with MulticastSocket(4, interface="lo", metadata=True) as rx, Spoofer("lo") as sp:
        port = rx.bind(0)[1]
        rx.join_source(FORGED, g)
        sp.send(FORGED, 4242, g, port, b"forged")
        d = rx.recv(WAIT_S)
        assert (d.data, d.source) == (b"forged", FORGED)


def test_g2_ssm_socket_joined_to_another_source_drops_it(lo4: None) -> None:
    g = group_ssm4()
    with MulticastSocket(4, interface="lo", metadata=True) as rx, Spoofer("lo") as sp:
        port = rx.bind(0)[1]
        rx.join_source(OTHER, g)
        sp.send(FORGED, 4242, g, port, b"forbidden")
        sp.send(OTHER, 4242, g, port, b"sentinel")
        d = rx.recv(WAIT_S)
        assert (d.data, d.source) == (b"sentinel", OTHER)
        assert drain(rx) == []
        assert rx.stats.filtered == 0  # the kernel's source filter did it


def test_g2_blocked_forged_source_is_dropped_on_an_any_source_socket(lo4: None) -> None:
    g = asm4(77, 2)
    with MulticastSocket(4, interface="lo") as rx, Spoofer("lo") as sp:
        port = rx.bind(0)[1]
        rx.join(g)
        rx.block_source(FORGED, g)
        sp.send(FORGED, 1, g, port, b"forbidden")
        sp.send(OTHER, 1, g, port, b"sentinel")
        assert rx.recv(WAIT_S).data == b"sentinel"
        assert drain(rx) == []


@pytest.mark.parametrize("ttl", [1, 64, 255])
def test_g2_forged_ttl_is_reported_as_it_arrived(lo4: None, ttl: int) -> None:
    """An on-link sender can forge TTL 255 too: the arrival TTL is reported truthfully
    (for a GTSM-style check by the application, G4), but it proves nothing by itself."""
    g = asm4(77, 3)
    with MulticastSocket(4, interface="lo", metadata=True) as rx, Spoofer("lo") as sp:
        port = rx.bind(0)[1]
        rx.join(g)
        sp.send(FORGED, 9, g, port, b"t", ttl=ttl)
        assert rx.recv(WAIT_S).ttl == ttl


# =========================================================================== G4


@pytest.mark.parametrize("method", ["recv", "recv_batch"])
def test_g4_min_ttl_drops_and_counts_datagrams_below_it(env: Env, method: str) -> None:
    """With ``min_ttl=255`` a datagram that arrives with a smaller TTL / hop limit is
    dropped and counted; the TTL-255 sentinel sent after it is delivered."""
    g = env.group()
    with env.rx(metadata=False, min_ttl=255) as rx, env.tx() as tx:
        assert rx.metadata and rx.min_ttl == 255  # the check needs the received TTL
        rx.join(g)
        port = rx.local_address[1]
        for ttl in (1, 254):
            tx.set_ttl(ttl)
            tx.sendto(b"low ttl %d" % ttl, g, port)
        tx.set_ttl(255)
        tx.sendto(b"sentinel", g, port)
        got = [rx.recv(WAIT_S)] if method == "recv" else rx.recv_batch(16, WAIT_S)
        got += drain(rx)
        assert [(d.data, d.ttl) for d in got] == [(b"sentinel", 255)]
        assert rx.stats.ttl_filtered == 2 and rx.stats.datagrams == 1


def test_g4_min_ttl_off_again_delivers_everything(env: Env) -> None:
    g = env.group()
    with env.rx(min_ttl=2) as rx, env.tx(ttl=1) as tx:
        rx.join(g)
        rx.set_min_ttl(None)
        assert rx.min_ttl is None
        tx.sendto(b"ttl 1", g, rx.local_address[1])
        assert rx.recv(WAIT_S).data == b"ttl 1"
        assert rx.stats.ttl_filtered == 0


@pytest.mark.parametrize("bad", [0, 256, -1, True, "255"])
def test_g4_min_ttl_out_of_range_is_refused(lo4: None, bad: object) -> None:
    with pytest.raises(McastValueError, match="min_ttl"):
        MulticastSocket(4, interface="lo", min_ttl=bad)  # type: ignore[arg-type]
    with MulticastSocket(4, interface="lo") as s:
        with pytest.raises(McastValueError, match="min_ttl"):
            s.set_min_ttl(bad)  # type: ignore[arg-type]
        assert s.min_ttl is None and not s.metadata  # unchanged
