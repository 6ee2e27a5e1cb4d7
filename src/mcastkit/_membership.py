"""Membership bookkeeping: which (interface, group) pairs a socket holds, in which mode.

Owns: the rules checked *before* any syscall (field notes A1, A3, A4): a second join is
a no-op, leaving what was not joined is :class:`NotJoinedError`, any-source and
source-specific modes never mix on one (interface, group). The book changes only
after the kernel said yes (``commit_*``), so a refused call leaves it unchanged.
Must not: touch sockets or import the platform layer.
Also owns the G1 rule (:meth:`MembershipBook.admits`): which arriving groups it holds,
and whether broadcasts are admitted (only with ``broadcast``; which addresses are
broadcasts is asked of an injected ``is_broadcast`` once per address and remembered).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from ._addr import is_multicast_text
from ._errors import ErrorCode, McastValueError, NotJoinedError

__all__ = ["FilterMode", "Membership", "MembershipBook", "ModeConflictError"]


class FilterMode(enum.Enum):
    """EXCLUDE = any-source join (minus blocked sources); INCLUDE = source-specific."""

    EXCLUDE = "exclude"
    INCLUDE = "include"


class ModeConflictError(McastValueError):
    """Any-source and source-specific joins of one group on one interface were mixed."""

    code = ErrorCode.MODE_CONFLICT


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    """One (interface, group) membership as the socket holds it.

    Attributes:
        group: the group address, as text.
        ifindex: the index of the interface it is joined on.
        ifname: that interface's name.
        mode: ``FilterMode.EXCLUDE`` (any-source) or ``FilterMode.INCLUDE``
            (source-specific).
        sources: the included sources (INCLUDE mode) or the blocked ones (EXCLUDE mode).
        interface_spec: what the user asked for (a name is re-resolved when the
            interface is re-created), or None (an address, an Interface, the default).
    """

    group: str
    ifindex: int
    ifname: str
    mode: FilterMode
    sources: frozenset[str] = field(default_factory=frozenset)
    interface_spec: str | int | None = None

    @property
    def by_name(self) -> bool:
        """True when the interface was given by name (re-resolved if it is re-created)."""
        return isinstance(self.interface_spec, str)


_Key = tuple[int, str]
_MEMO_MAX: Final = 256  # destination addresses remembered as broadcast or not


def _limited_only(addr: str) -> bool:
    return addr == "255.255.255.255"


def _not_joined(what: str, group: str, ifname: str) -> NotJoinedError:
    return NotJoinedError(
        0, f"{what} {group} on {ifname}: not joined on this socket", op=what, group=group,
        interface=ifname,
    )


_VERDICTS_MAX = 4096


class MembershipBook:
    """The desired-and-applied membership state of one socket."""

    def __init__(self) -> None:
        self._m: dict[_Key, Membership] = {}
        # how many interfaces hold each group, kept in step with _m's keys one change at a
        # time (rebuilding a set per join made thousands of joins quadratic)
        self._groups: dict[str, int] = {}
        self.broadcast = False  # admit broadcasts (the socket's broadcast=True)
        #: tells a broadcast destination from a unicast one (the socket injects the
        #: interface table's; this module makes no syscalls)
        self.is_broadcast: Callable[[str], bool] = _limited_only
        self._bcast: dict[str, bool] = {}
        # admits() answers by (group, arrival interface), dropped when the keys change:
        # one dict lookup per datagram however many groups are joined (bounded: G6)
        self.verdicts: dict[tuple[str, int | None], bool] = {}

    def __len__(self) -> int:
        return len(self._m)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._m.values()))

    def get(self, ifindex: int, group: str) -> Membership | None:
        return self._m.get((ifindex, group))

    @property
    def groups(self) -> frozenset[str]:
        """The groups held on any interface (a snapshot; the per-datagram check uses the
        kept counts directly)."""
        return frozenset(self._groups)

    def admits(self, group: str, ifindex: int | None) -> bool:
        """The G1 group rule of every receive path: False for a multicast ``group`` this
        socket did not join, or did not join on the arrival interface ``ifindex`` (None:
        unknown, any interface counts). IPv6 sockets get a joined group from *any*
        interface some other socket joined it on (the kernel's per-socket check ignores
        the ifindex): security goal G1. A broadcast destination (the limited broadcast
        or a local subnet's) is admitted only when :attr:`broadcast` is on."""
        if not is_multicast_text(group):
            if self.broadcast:
                ok = True
            else:
                known = self._bcast.get(group)
                if known is None:
                    if len(self._bcast) >= _MEMO_MAX:
                        self._bcast.clear()  # addresses change: remembering is bounded
                    known = self._bcast[group] = self.is_broadcast(group)
                ok = not known
        elif ifindex is None:
            ok = group in self._groups
        else:
            ok = (ifindex, group) in self._m
        v = self.verdicts
        if len(v) >= _VERDICTS_MAX:
            v.clear()
        v[(group, ifindex)] = ok
        return ok

    def _added(self, group: str) -> None:
        self._groups[group] = self._groups.get(group, 0) + 1
        self.verdicts = {}

    def _removed(self, group: str) -> None:
        n = self._groups[group] - 1
        if n:
            self._groups[group] = n
        else:
            del self._groups[group]
        self.verdicts = {}

    def _put(self, key: _Key, m: Membership) -> None:
        """Store ``m`` under ``key``, counting the group when the key is new."""
        if key not in self._m:
            self._added(key[1])
        self._m[key] = m

    # -- checks (raise before the syscall) ----------------------------------------------

    def check_join(self, ifindex: int, group: str, ifname: str) -> bool:
        """Return False when the any-source join already exists (a no-op)."""
        m = self._m.get((ifindex, group))
        if m is None:
            return True
        if m.mode is FilterMode.INCLUDE:
            raise ModeConflictError(
                f"join {group} on {ifname}: the group is joined source-specifically on this "
                "socket; leave its sources first, or use another socket for any-source",
                group=group, interface=ifname,
            )
        return False

    def check_join_source(self, ifindex: int, group: str, source: str, ifname: str) -> bool:
        """Return False when (source, group) is already included (a no-op)."""
        m = self._m.get((ifindex, group))
        if m is None:
            return True
        if m.mode is FilterMode.EXCLUDE:
            raise ModeConflictError(
                f"join_source ({source}, {group}) on {ifname}: the group is joined any-source "
                "on this socket; use block_source() to exclude senders, or leave it first",
                group=group, source=source, interface=ifname,
            )
        return source not in m.sources

    def check_leave(self, ifindex: int, group: str, ifname: str) -> Membership:
        m = self._m.get((ifindex, group))
        if m is None:
            raise _not_joined("leave", group, ifname)
        return m

    def check_leave_source(self, ifindex: int, group: str, source: str, ifname: str) -> None:
        m = self._m.get((ifindex, group))
        if m is None or m.mode is not FilterMode.INCLUDE or source not in m.sources:
            raise _not_joined("leave_source", f"({source}, {group})", ifname)

    def check_block(self, ifindex: int, group: str, source: str, ifname: str, block: bool) -> bool:
        """Return False if the block/unblock would change nothing."""
        m = self._m.get((ifindex, group))
        op = "block_source" if block else "unblock_source"
        if m is None:
            raise _not_joined(op, group, ifname)
        if m.mode is not FilterMode.EXCLUDE:
            raise ModeConflictError(
                f"{op} {source} on {group}: only any-source joins have blocked sources; "
                "this group is joined source-specifically",
                group=group, source=source, interface=ifname,
            )
        return (source not in m.sources) if block else (source in m.sources)

    # -- commits (after the kernel accepted) --------------------------------------------

    def commit_join(
        self, ifindex: int, group: str, ifname: str, spec: str | int | None
    ) -> Membership:
        m = Membership(group=group, ifindex=ifindex, ifname=ifname, mode=FilterMode.EXCLUDE,
                       interface_spec=spec)
        self._put((ifindex, group), m)
        return m

    def commit_join_source(
        self, ifindex: int, group: str, source: str, ifname: str, spec: str | int | None
    ) -> Membership:
        old = self._m.get((ifindex, group))
        if old is None:
            m = Membership(group=group, ifindex=ifindex, ifname=ifname, mode=FilterMode.INCLUDE,
                           sources=frozenset({source}), interface_spec=spec)
        else:
            m = replace(old, sources=old.sources | {source})
        self._put((ifindex, group), m)
        return m

    def commit_leave(self, ifindex: int, group: str) -> None:
        if self._m.pop((ifindex, group), None) is not None:
            self._removed(group)

    def commit_leave_source(self, ifindex: int, group: str, source: str) -> None:
        m = self._m[(ifindex, group)]
        rest = m.sources - {source}
        if rest:
            self._m[(ifindex, group)] = replace(m, sources=rest)
        else:  # the kernel drops the group with its last included source
            del self._m[(ifindex, group)]
            self._removed(group)

    def commit_block(self, ifindex: int, group: str, source: str, block: bool) -> None:
        m = self._m[(ifindex, group)]
        srcs = m.sources | {source} if block else m.sources - {source}
        self._m[(ifindex, group)] = replace(m, sources=srcs)

    def restore(self, m: Membership) -> None:
        """Put back a record taken out by a refresh whose re-join failed (retried later)."""
        self._put((m.ifindex, m.group), m)

    def clear(self) -> list[Membership]:
        out = list(self._m.values())
        self._m.clear()
        self._groups.clear()
        self.verdicts = {}
        return out
