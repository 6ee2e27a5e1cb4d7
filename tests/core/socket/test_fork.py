"""Other descriptors of one socket (issue 14.2 and 14.11): a forked child, a dup, a
descriptor passed to another process over SCM_RIGHTS.

Owns: the rule ``close()`` follows while another descriptor of the same kernel socket is
open — it closes only its own descriptor: the other holder keeps receiving, and the
memberships end when the last descriptor closes — and that a process that did not open
the socket cannot change its memberships (``McastStateError``, ``NOT_OWNER``). Every case
with real sockets on ``lo`` in a fresh namespace; the kernel's ``/proc/net/igmp`` is the
witness for memberships.
Must not: let a forked child return into pytest (children end with ``os._exit``), or
assert timing beyond generous bounds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import mcastkit
from mcastkit import ErrorCode, McastStateError, MulticastSocket
from tests.support import kernelstate
from tests.support.addrs import G4, SRC4_OTHER, fresh_group4
from tests.support.netns import Netns

pytestmark = pytest.mark.kernel

WAIT_S = 5.0


def _joined(group: str) -> bool:
    return any(g == group for _dev, g in kernelstate.igmp_groups())


def _send(group: str, port: int, data: bytes) -> None:
    with MulticastSocket(4, interface="lo") as tx:
        tx.sendto(data, group, port)


def _child(body: object) -> int:
    """Fork; run ``body()`` (returns an exit code) in the child; return its exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            code = int(body())  # type: ignore[operator]
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_childs_close_leaves_the_parent_receiving(netns: Netns,
                                                          mcast_port: int) -> None:
    """The child's ``with`` block ends (close()): no shutdown, no leaving; the parent
    keeps its memberships (kernel and book) and keeps receiving (14.2)."""
    g = fresh_group4(60)
    rx = mcastkit.open_receiver(f"{g}:{mcast_port}", interface="lo")
    with rx:

        def child() -> int:
            with rx:  # the child's copy: closed when the block ends
                pass
            return 0

        assert _child(child) == 0
        assert _joined(g), "the child's close() left the parent's group"
        assert [m.group for m in rx.memberships] == [g]
        _send(g, mcast_port, b"after")
        assert rx.recv(WAIT_S).data == b"after"
    assert not _joined(g)


def test_membership_changes_from_a_forked_child_are_typed_errors(netns: Netns,
                                                                mcast_port: int) -> None:
    """join / leave / source filters / refresh in a process that did not open the socket
    raise McastStateError (NOT_OWNER) and change nothing in the kernel (14.2)."""
    g, g2 = fresh_group4(60), fresh_group4(60)
    with mcastkit.open_receiver(f"{g}:{mcast_port}", interface="lo") as rx:

        def child() -> int:
            calls = (lambda: rx.join(g2), lambda: rx.leave(g),
                     lambda: rx.block_source(SRC4_OTHER, g),
                     lambda: rx.join_source(SRC4_OTHER, g2), rx.refresh_interfaces)
            for call in calls:
                try:
                    call()
                except McastStateError as exc:
                    if exc.code is not ErrorCode.NOT_OWNER or "forked" not in str(exc):
                        return 2
                else:
                    return 1
            return 0

        assert _child(child) == 0
        assert _joined(g) and not _joined(g2)
        assert [m.group for m in rx.memberships] == [g]
        assert not rx.memberships[0].sources  # the block did not happen


def test_the_parents_close_leaves_a_forked_child_receiving(netns: Netns,
                                                          mcast_port: int) -> None:
    """The other way round: the parent closes first, the child still holds the socket
    and keeps receiving; the group is left when the child's descriptor closes too."""
    g = fresh_group4(60)
    rx = mcastkit.open_receiver(f"{g}:{mcast_port}", interface="lo")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(w)
            os.read(r, 1)  # the parent has closed its descriptor
            code = 0 if rx.recv(WAIT_S).data == b"to-child" else 3
        finally:
            os._exit(code)
    os.close(r)
    rx.close()
    assert _joined(g), "the parent's close() left the group its child still receives"
    os.write(w, b"x")
    _send(g, mcast_port, b"to-child")
    _, status = os.waitpid(pid, 0)
    os.close(w)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not _joined(g), "the group outlived the socket's last descriptor"


def test_a_dup_keeps_receiving_after_close(netns: Netns, mcast_port: int) -> None:
    """A dup of the descriptor (same process): close() through MulticastSocket spares
    it; the memberships end when the dup closes too."""
    g = fresh_group4(60)
    rx = mcastkit.open_receiver(f"{g}:{mcast_port}", interface="lo")
    dup = socket.socket(fileno=os.dup(rx.fileno()))
    rx.close()
    assert _joined(g)
    dup.settimeout(WAIT_S)
    _send(g, mcast_port, b"to-dup")
    assert dup.recv(64) == b"to-dup"
    dup.close()
    assert not _joined(g)


def test_a_descriptor_passed_over_scm_rights_keeps_receiving(netns: Netns,
                                                            mcast_port: int) -> None:
    """A descriptor passed to another (unrelated) process over SCM_RIGHTS: the sender's
    close() spares it; the memberships end when the receiving process closes it."""
    g = fresh_group4(60)
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    code = textwrap.dedent("""
        import socket, sys
        end = socket.socket(fileno=int(sys.argv[1]))
        _, fds, _, _ = socket.recv_fds(end, 16, 1)
        s = socket.socket(fileno=fds[0])
        end.send(b"got")
        end.recv(16)  # the owner has closed its descriptor
        s.settimeout(5)
        print(s.recv(64).decode())
    """)
    with subprocess.Popen([sys.executable, "-c", code, str(child_end.fileno())],
                          pass_fds=[child_end.fileno()], stdout=subprocess.PIPE,
                          text=True) as proc:
        child_end.close()
        try:
            rx = mcastkit.open_receiver(f"{g}:{mcast_port}", interface="lo")
            socket.send_fds(parent_end, [b"fd"], [rx.fileno()])
            parent_end.settimeout(WAIT_S)
            assert parent_end.recv(16) == b"got"
            rx.close()
            assert _joined(g)
            parent_end.send(b"closed")
            time.sleep(0.1)  # let the child reach its recv (a datagram would queue anyway)
            _send(g, mcast_port, b"passed")
        except BaseException:
            proc.kill()
            raise
        out, _ = proc.communicate(timeout=WAIT_S * 2)
    parent_end.close()
    assert proc.returncode == 0 and out.strip() == "passed"
    assert not _joined(g)


def test_closing_an_unshared_socket_still_leaves_at_once(netns: Netns,
                                                         mcast_port: int) -> None:
    """No other descriptor can exist (never handed out, no fork): close() leaves and
    shuts down as before, so the sparing above is not a blanket no-op."""
    g = fresh_group4(60)
    rx = MulticastSocket(4, interface="lo")
    rx.bind(mcast_port)
    rx.join(g)
    rx.close()
    assert not _joined(g)


def test_out_of_descriptors_at_open_is_a_typed_error_naming_the_limit(netns: Netns) -> None:
    """EMFILE at MulticastSocket() and open_receiver names RLIMIT_NOFILE and `ulimit -n`
    (14.7, core part). Run in a child: the limit is per process."""
    code = textwrap.dedent(f"""
        import errno, os, resource
        import mcastkit
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        hold = []
        try:
            while True:
                hold.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        for call in (lambda: mcastkit.MulticastSocket(4),
                     lambda: mcastkit.open_receiver("{G4}:0")):
            try:
                call()
            except mcastkit.McastOSError as exc:
                assert exc.errno == errno.EMFILE, exc
                assert "RLIMIT_NOFILE" in str(exc) and "ulimit -n" in str(exc), exc
            else:
                raise AssertionError("no error")
        print("typed")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "typed", r.stderr
