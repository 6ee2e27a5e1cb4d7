"""Leak checks (technique #10) and a membership soak (technique #11) against the kernel.

Owns: N open/join/join_source/leave/close cycles after which file descriptors,
``/proc/net/igmp(6)`` and ``mcfilter(6)`` entries, threads and tracemalloc'd memory are
back at their baseline (also along the typed-error paths); and seeded random walks of
join/leave/join_source/leave_source/block/unblock over three sockets, up to the
namespace's ``igmp_max_memberships`` / ``igmp_max_msf`` (set low), after every step of
which the kernel's state equals the union of the sockets' ``memberships`` and only
typed errors were raised.
Must not: sleep, assert timing, or change a sysctl outside the test namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import gc
import os
import random
import socket
import struct
import threading
import tracemalloc
from collections import Counter

import pytest

from mcastkit import FilterMode, McastError, MulticastSocket
from tests.support import kernelstate
from tests.support.addrs import asm4, asm6, lab_host
from tests.support.kernel import Env, env
from tests.support.structs_ref import MCAST_MSFILTER

pytestmark = pytest.mark.kernel
__all__ = ["env"]

CYCLES = 200


def _pool(env: Env, n: int) -> list[str]:
    return [asm4(99, i) if env.version == 4 else asm6(f"99:{i:x}") for i in range(1, n + 1)]


def _sources(env: Env, n: int) -> list[str]:
    return [lab_host(99, i) if env.version == 4 else f"fe80::99:{i:x}" for i in range(1, n + 1)]


def _filters(env: Env, pool: set[str]) -> set[tuple[str, str, int, int]]:
    """(group, source, include, exclude) rows of /proc/net/mcfilter(6) for our groups."""
    return {(g, s.split("%")[0], inc, exc) for dev, g, s, inc, exc in kernelstate.source_filters()
            if dev == env.ifname and g in pool}


def _snapshot(env: Env, pool: set[str]) -> tuple[int, frozenset[str], frozenset[object], int]:
    gc.collect()
    return (len(os.listdir("/proc/self/fd")), frozenset(env.igmp() & pool),
            frozenset(_filters(env, pool)), threading.active_count())


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_MAX_SRC = 16


def socket_filter(sock: MulticastSocket, ifindex: int, group: str
                  ) -> tuple[FilterMode, frozenset[str]] | None:
    """The kernel's per-socket filter for (ifindex, group): (mode, sources), or None when
    the socket holds no such membership. ``getsockopt(MCAST_MSFILTER)`` with a
    ``struct group_filter`` (LP64 layout: 4 + pad 4, sockaddr_storage group, fmode,
    numsrc, sockaddr_storage sources[]); Python's getsockopt cannot pass an input buffer."""
    v6 = ":" in group
    ss = bytearray(128)
    if v6:
        struct.pack_into("=H", ss, 0, socket.AF_INET6)
        ss[8:24] = socket.inet_pton(socket.AF_INET6, group)
    else:
        struct.pack_into("=H", ss, 0, socket.AF_INET)
        ss[4:8] = socket.inet_aton(group)
    req = struct.pack("=I4x", ifindex) + bytes(ss) + struct.pack("=II", 0, _MAX_SRC)
    req += bytes(128 * _MAX_SRC)
    buf = ctypes.create_string_buffer(req, len(req))
    size = ctypes.c_uint32(len(req))
    level = socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP
    if _libc.getsockopt(sock.fileno(), level, MCAST_MSFILTER, buf, ctypes.byref(size)) != 0:
        err = ctypes.get_errno()
        if err == errno.EADDRNOTAVAIL:
            return None
        raise OSError(err, os.strerror(err))
    fmode, num = struct.unpack_from("=II", buf.raw, 136)
    srcs = set()
    for i in range(min(num, _MAX_SRC)):
        off = 144 + 128 * i
        srcs.add(str(socket.inet_ntop(socket.AF_INET6, buf.raw[off + 8:off + 24])) if v6
                 else socket.inet_ntoa(buf.raw[off + 4:off + 8]))
    return (FilterMode.INCLUDE if fmode == 1 else FilterMode.EXCLUDE), frozenset(srcs)


# =========================================================================== leaks


def _cycle(env: Env, asm: str, ssm: str, src: str, explicit: bool) -> None:
    s = MulticastSocket(env.version, interface=env.ifname, metadata=True)
    s.bind(0)
    s.join(asm)
    s.join_source(src, ssm)
    s.block_source(_sources(env, 2)[1], asm)
    s.leave(asm)
    if explicit:
        s.leave_source(src, ssm)
    s.close()


@pytest.mark.parametrize("explicit", [True, False], ids=["leave-all", "close-leaves"])
def test_open_join_leave_close_cycles_leak_nothing(env: Env, explicit: bool) -> None:
    pool = _pool(env, 4)
    src = _sources(env, 1)[0]
    for i in range(5):  # warm-up: imports, caches, first-use allocations
        _cycle(env, pool[i % 2], pool[2 + i % 2], src, explicit)
    base = _snapshot(env, set(pool))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(CYCLES):
            _cycle(env, pool[i % 2], pool[2 + i % 2], src, explicit)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert _snapshot(env, set(pool)) == base
    assert base[1] == frozenset() and base[2] == frozenset()  # nothing of ours in the kernel
    assert growth < 64 * 1024, f"{growth} bytes retained after {CYCLES} cycles"


def test_typed_error_paths_leak_nothing(env: Env) -> None:
    """Refused calls (not joined, mode conflict, over the limit) leave nothing behind."""
    if env.version == 4:
        with open("/proc/sys/net/ipv4/igmp_max_memberships", "w") as f:
            f.write("2\n")
    pool = _pool(env, 4)
    src = _sources(env, 1)[0]

    def cycle() -> int:
        errors = 0
        with MulticastSocket(env.version, interface=env.ifname) as s:
            s.bind(0)
            s.join(pool[0])
            for call in (lambda: s.leave(pool[3]),  # never joined
                         lambda: s.join_source(src, pool[0]),  # ASM held: mode conflict
                         lambda: s.unblock_source(src, pool[0]),  # not blocked: no-op
                         lambda: s.leave_source(src, pool[1])):  # not joined
                try:
                    call()
                except McastError:
                    errors += 1
            s.join(pool[1])
            if env.version == 4:
                try:
                    s.join(pool[2])  # the third: over igmp_max_memberships=2
                except McastError:
                    errors += 1
        return errors

    for _ in range(5):
        cycle()
    base = _snapshot(env, set(pool))
    fds = base[0]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        errors = sum(cycle() for _ in range(CYCLES))
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert errors == CYCLES * (4 if env.version == 4 else 3)
    assert _snapshot(env, set(pool)) == base and base[0] == fds
    assert growth < 64 * 1024, f"{growth} bytes retained after {CYCLES} error cycles"


# =========================================================================== soak

OPS = ("join", "leave", "join_source", "leave_source", "block_source", "unblock_source")
STEPS = 400


def _expected(env: Env, socks: list[MulticastSocket]
              ) -> tuple[set[str], set[tuple[str, str, int, int]]]:
    groups: set[str] = set()
    inc: Counter[tuple[str, str]] = Counter()
    exc: Counter[tuple[str, str]] = Counter()
    for s in socks:
        for m in s.memberships:
            assert m.ifname == env.ifname
            groups.add(m.group)
            for src in m.sources:
                (inc if m.mode is FilterMode.INCLUDE else exc)[(m.group, src)] += 1
    rows = {(g, src, inc[(g, src)], exc[(g, src)]) for g, src in set(inc) | set(exc)}
    return groups, rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_membership_walk_matches_the_kernel(env: Env, seed: int) -> None:
    if env.version == 4:  # per namespace: low limits so the walk runs into them
        for key, val in (("igmp_max_memberships", 4), ("igmp_max_msf", 3)):
            with open(f"/proc/sys/net/ipv4/{key}", "w") as f:
                f.write(f"{val}\n")
    rnd = random.Random(seed)
    pool = _pool(env, 6)
    srcs = _sources(env, 4)
    socks = [MulticastSocket(env.version, interface=env.ifname) for _ in range(3)]
    errors: Counter[str] = Counter()
    done: Counter[str] = Counter()
    try:
        for s in socks:
            s.bind(0)
        for step in range(STEPS):
            s = rnd.choice(socks)
            op = rnd.choice(OPS)
            g = rnd.choice(pool)
            args = (g,) if op in ("join", "leave") else (rnd.choice(srcs), g)
            try:
                getattr(s, op)(*args)
                done[op] += 1
            except McastError as e:  # typed errors only; anything else fails the test
                errors[type(e).__name__] += 1
            groups, rows = _expected(env, socks)
            assert env.igmp() & set(pool) == groups, (step, op, args)
            # /proc/net/mcfilter hides a device's rows whenever the group joined last on it
            # has no sources (the kernel's seq iterator looks only at the list head), so
            # it must show a subset; the per-socket filter (MCAST_MSFILTER) must be exact.
            assert _filters(env, set(pool)) <= rows, (step, op, args)
            for sock in socks:
                book = {m.group: (m.mode, m.sources) for m in sock.memberships}
                for grp in pool:
                    assert socket_filter(sock, env.ifindex, grp) == book.get(grp), (
                        step, op, args, grp)
    finally:
        for s in socks:
            s.close()
    assert env.igmp() & set(pool) == set() and _filters(env, set(pool)) == set()
    assert sum(done.values()) > STEPS // 4, done  # the walk did real work...
    assert {"NotJoinedError", "ModeConflictError"} <= set(errors), errors  # ...and refusals
    if env.version == 4:
        assert errors["MembershipLimitError"] + errors["SourceFilterError"] > 0, errors


def test_proc_mcfilter_shows_a_device_only_when_its_newest_group_has_sources(env: Env) -> None:
    """Kernel quirk found by the soak: ``/proc/net/mcfilter(6)`` starts each device at the
    head of its group list (the group joined last) and skips the whole device when that
    group has no sources. The per-socket ``MCAST_MSFILTER`` view is always right."""
    pool = _pool(env, 2)
    src = _sources(env, 1)[0]
    with MulticastSocket(env.version, interface=env.ifname) as s:
        s.bind(0)
        s.join(pool[0])
        s.block_source(src, pool[0])
        assert _filters(env, set(pool)) == {(pool[0], src, 0, 1)}
        s.join(pool[1])  # newest group, no sources: the device's rows vanish from /proc
        assert _filters(env, set(pool)) == set()
        assert socket_filter(s, env.ifindex, pool[0]) == (FilterMode.EXCLUDE, frozenset({src}))
        s.leave(pool[1])
        assert _filters(env, set(pool)) == {(pool[0], src, 0, 1)}
