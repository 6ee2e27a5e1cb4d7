"""Named network namespaces for tests: create, enter (per thread), run commands, delete.

Everything here works inside the sandbox that ``make test`` builds (``unshare --net
--mount`` with a private tmpfs on /run), rootless under ``unshare -Urnm``, and directly
as root on a host. Namespace names always carry a per-process prefix
(``mk<pid>-``) so concurrent runs never collide, and every namespace this process made
is deleted at exit even if a test forgot to. Nothing here creates an interface outside
a namespace that this module created: all ``ip`` calls use ``ip -n <ours>``.

``Netns.enter()`` moves only the *calling thread* (``setns(2)``). Sockets created while
inside stay in that namespace after the ``with`` block ends. Threads and child
processes started inside inherit the namespace. Per-thread /proc views: use
``/proc/thread-self/net/...`` (see tests/support/kernelstate.py); ``/proc/net`` follows the
process's main thread only.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

CLONE_NEWNET = 0x40000000
PREFIX = f"mk{os.getpid()}"
NETNS_DIR = "/run/netns"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int
PR_SET_PDEATHSIG = 1

_counter = itertools.count(1)
_live: dict[str, Netns] = {}
_lock = threading.Lock()

T = TypeVar("T")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Move the calling thread into the namespace referred to by ``fd``."""
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def current_netns_id() -> tuple[int, int]:
    """(st_dev, st_ino) of the calling thread's network namespace."""
    st = os.stat("/proc/thread-self/ns/net")
    return (st.st_dev, st.st_ino)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip`` with the given arguments (callers always pass ``-n <ours>``)."""
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that.

    Raises TimeoutError after ``timeout`` seconds. Use it to wait for something to
    *happen*; never use a timeout to prove that something did not happen (send a
    sentinel along the same path instead).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout:.1f}s: {what or predicate!r}")
        time.sleep(interval)


class Netns:
    """A named network namespace ``<PREFIX>-<name>`` with ``lo`` up and DAD off."""

    def __init__(self, name: str) -> None:
        self.short = name
        self.name = f"{PREFIX}-{name}"
        self.path = f"{NETNS_DIR}/{self.name}"
        self.deleted = False
        r = ip("netns", "add", self.name, check=False)
        if r.returncode != 0:
            raise OSError(f"ip netns add {self.name} failed: {r.stderr.strip()}")
        with _lock:
            _live[self.name] = self
        try:
            # Before any interface exists, so no address is ever tentative.
            self.sysctl("net.ipv6.conf.all.accept_dad", 0)
            self.sysctl("net.ipv6.conf.default.accept_dad", 0)
            self.ip("link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise

    @classmethod
    def fresh(cls, tag: str = "t") -> Netns:
        """A new namespace with a unique name (``<PREFIX>-<tag><n>``)."""
        return cls(f"{tag}{next(_counter)}")

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    # --- running things inside -------------------------------------------------
    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ip -n <this> ...``"""
        r = ip("-n", self.name, *args, check=False)
        if check and r.returncode != 0:
            raise subprocess.CalledProcessError(r.returncode, r.args, r.stdout, r.stderr)
        return r

    def run(
        self, *cmd: str, check: bool = True, timeout: float | None = 60.0, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside via ``ip netns exec`` (text output captured)."""
        kw.setdefault("capture_output", True)
        r: subprocess.CompletedProcess[str] = subprocess.run(
            ["ip", "netns", "exec", self.name, *cmd], text=True, timeout=timeout, **kw
        )
        if check and r.returncode != 0:
            raise subprocess.CalledProcessError(r.returncode, r.args, r.stdout, r.stderr)
        return r

    def popen(self, *cmd: str, die_with_parent: bool = True, **kw: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` inside. ``ip netns exec`` execs it, so ``.pid`` is its own PID.

        With ``die_with_parent`` the child gets SIGTERM when the thread that started it
        exits (PR_SET_PDEATHSIG), so a crashed test run cannot leave daemons behind."""
        if die_with_parent:
            kw.setdefault("preexec_fn", _pdeathsig)
        return subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kw)

    @contextlib.contextmanager
    def enter(self) -> Iterator[Netns]:
        """Move the current thread into this namespace for the ``with`` block."""
        if self.deleted:
            raise RuntimeError(f"{self.name} was deleted")
        orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(target)
            finally:
                os.close(target)
            try:
                yield self
            finally:
                setns(orig)
        finally:
            os.close(orig)

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM,
               proto: int = 0) -> socket.socket:
        """A socket that lives in this namespace (the caller's thread is unaffected)."""
        with self.enter():
            return socket.socket(family, type, proto)

    def sysctl(self, key: str, value: int | str) -> None:
        """Set a per-namespace sysctl (written through /proc/sys from inside)."""
        path = "/proc/sys/" + key.replace(".", "/")
        with self.enter(), open(path, "w") as f:
            f.write(f"{value}\n")

    def read_sysctl(self, key: str) -> str:
        with self.enter(), open("/proc/sys/" + key.replace(".", "/")) as f:
            return f.read().strip()

    def ifindex(self, ifname: str) -> int:
        with self.enter():
            return socket.if_nametoindex(ifname)

    def links(self) -> list[str]:
        with self.enter():
            return [n for _, n in socket.if_nameindex()]

    def addr_add(self, ifname: str, cidr: str) -> None:
        self.ip("addr", "add", cidr, "dev", ifname)

    def route_add(self, *spec: str) -> None:
        self.ip("route", "add", *spec)

    def link_local(self, ifname: str, timeout: float = 10.0) -> str:
        """The non-tentative IPv6 link-local address of ``ifname`` (waits for it)."""

        def probe() -> str:
            out = self.ip("-6", "-o", "addr", "show", "dev", ifname, "scope", "link").stdout
            for line in out.splitlines():
                if "tentative" not in line:
                    return line.split()[3].split("/")[0]
            return ""

        return wait_until(probe, timeout, what=f"link-local address on {self.name}:{ifname}")

    # --- teardown ----------------------------------------------------------------
    def delete(self) -> None:
        """Delete the name. The namespace itself dies when nothing references it."""
        if self.deleted:
            return
        self.deleted = True
        with _lock:
            _live.pop(self.name, None)
        ip("netns", "delete", self.name, check=False)


def _pdeathsig() -> None:  # runs in the child between fork and exec
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def veth(ns_a: Netns, if_a: str, ns_b: Netns, if_b: str, up: bool = True) -> None:
    """Create a veth pair with ``if_a`` in ``ns_a`` and ``if_b`` in ``ns_b`` (may be equal)."""
    ns_a.ip("link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b.name)
    if up:
        ns_a.ip("link", "set", if_a, "up")
        ns_b.ip("link", "set", if_b, "up")


def our_namespaces() -> list[str]:
    """Names in /run/netns that belong to this process (should be [] after cleanup)."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(PREFIX + "-"))
    except FileNotFoundError:
        return []


def cleanup_all() -> None:
    """Delete every namespace this process created and has not deleted yet."""
    with _lock:
        live = list(_live.values())
    for ns in live:
        ns.delete()


atexit.register(cleanup_all)
