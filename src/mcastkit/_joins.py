"""The memberships part of :class:`~mcastkit.MulticastSocket`.

Owns: the :class:`~mcastkit._membership.MembershipBook` of the socket and every change to
it: join / leave (any-source), join_source / leave_source (SSM), block / unblock of
sources on an any-source join, picking the interface of a membership, leaving by
interface index, leaving everything at close, and re-joining name-chosen memberships
after an interface came back (field notes B3, B4). The kernel is asked first; the book
records only what it accepted.
Must not: send or receive, or keep membership state outside the book; set send options
(it asks :class:`~mcastkit._options.SendOptions` for the default interface and the G3
scope warnings, and, in ``refresh_interfaces``, to re-apply a default interface that
was re-created).
"""

from __future__ import annotations

import contextlib
import socket

from ._addr import Group, IPAddress, parse_ip
from ._errors import (
    ErrOp,
    ErrorCode,
    InterfaceError,
    McastError,
    McastValueError,
    NotJoinedError,
)
from ._handle import Handle
from ._interfaces import Interface, resolve_interface, route_interface
from ._membership import FilterMode, Membership, MembershipBook
from ._options import SendOptions
from ._platform import Op
from ._platform._structs import pack_group_req, pack_group_source_req
from ._sockbase import InterfaceArg

__all__ = ["Memberships"]

GroupArg = str | IPAddress | Group


class Memberships:
    """Joins, leaves and source filters of one socket, recorded in its book.

    Args:
        h: the socket's handle.
        book: the book this part alone changes (others only read it).
        opts: the send options, for the default interface and the G3 warnings.
    """

    def __init__(self, h: Handle, book: MembershipBook, opts: SendOptions) -> None:
        self._h = h
        self._book = book
        self._opts = opts
        # memberships taken out by a refresh whose re-join the kernel refused: not held
        # (their old kernel entry is gone), re-joined by the next refresh (issue 14.4)
        self._retry: list[Membership] = []

    def __len__(self) -> int:
        return len(self._book)

    def held(self) -> tuple[Membership, ...]:
        """The memberships held, as committed after the kernel accepted them."""
        return tuple(self._book)

    # ------------------------------------------------------------------ arguments

    def _group(self, group: GroupArg) -> Group:
        g = Group.parse(group)
        self._h.check_family(g.address, "group")
        return g

    def _source(self, source: str | IPAddress) -> IPAddress:
        s = parse_ip(source, what="source") if isinstance(source, str) else source
        self._h.check_family(s, "source")
        if s.is_multicast or s.is_unspecified:
            raise McastValueError(f"source {s} must be a unicast sender address",
                                  code=ErrorCode.BAD_ADDRESS)
        return s

    def _join_iface(self, g: Group, interface: InterfaceArg | None
                    ) -> tuple[Interface, str | int | None]:
        if interface is not None:
            spec = interface if isinstance(interface, str | int) else None
            return resolve_interface(interface), spec
        if self._opts.iface is not None:
            return self._opts.iface, self._opts.iface_spec
        return route_interface(g.address), None

    def _lookup_iface(self, g: Group, interface: InterfaceArg | None) -> tuple[int, str]:
        """Find the membership's interface without requiring the interface still exists."""
        key = str(g)
        if interface is None:
            held = [m for m in self._book if m.group == key]
            if len(held) == 1:
                return held[0].ifindex, held[0].ifname
            if self._opts.iface is not None:
                return self._opts.iface.index, self._opts.iface.name
            if not held:
                iface = route_interface(g.address)
                return iface.index, iface.name
            raise McastValueError(
                f"{g} is joined on {len(held)} interfaces "
                f"({', '.join(m.ifname for m in held)}); pass interface=",
                code=ErrorCode.BAD_VALUE, group=key,
            )
        if isinstance(interface, str | int) and not isinstance(interface, bool):
            for m in self._book:
                if m.group == key and (m.ifname == interface or m.ifindex == interface
                                       or str(m.ifindex) == interface):
                    return m.ifindex, m.ifname
        iface = resolve_interface(interface)
        return iface.index, iface.name

    # ------------------------------------------------------------------ any-source

    def join(self, group: GroupArg, interface: InterfaceArg | None = None) -> Membership:
        """Join ``group`` (any source) on ``interface`` (joins go by interface index).

        Joining again is a no-op that returns the existing membership.

        Args:
            group: the group address (``"239.255.0.1"``, ``"ff15::1"``) or a
                :class:`~mcastkit.Group`.
            interface: the interface (name, index, local address or
                :class:`~mcastkit.Interface`); None: the socket's default interface, else
                the one the routing table picks for the group.

        Returns:
            The membership as the kernel accepted it (interface name and index).

        Raises:
            McastValueError: not a multicast address (``NOT_MULTICAST``), or the wrong IP
                version for this socket (``WRONG_FAMILY``).
            ModeConflictError: the group is joined source-specifically on this interface
                (``MODE_CONFLICT``).
            InterfaceNotFoundError: no such interface (``INTERFACE_NOT_FOUND``).
            InterfaceError: no route to choose an interface from (``NO_ROUTE``).
            MembershipLimitError: over ``net.ipv4.igmp_max_memberships`` (named, with its
                value; ``MEMBERSHIP_LIMIT``); the memberships already held stay intact.
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._h.check_open()
        self._h.check_owner("join")
        g = self._group(group)
        iface, spec = self._join_iface(g, interface)
        key = str(g)
        if not self._book.check_join(iface.index, key, iface.name):
            m = self._book.get(iface.index, key)
            assert m is not None
            return m
        self._h.setopt(Op.JOIN, pack_group_req(iface.index, g.address), ErrOp.JOIN,
                       group=key, interface=iface.name, held=len(self._book))
        m = self._book.commit_join(iface.index, key, iface.name, spec)
        self._opts.warn_scope(g)  # G3
        return m

    def leave(self, group: GroupArg, interface: InterfaceArg | None = None) -> None:
        """Leave an any-source or source-specific membership (all its sources).

        Args:
            group: the group address or :class:`~mcastkit.Group`.
            interface: the interface of the membership; None: the only interface
                ``group`` is joined on (or the socket's default interface).

        Raises:
            NotJoinedError: this socket holds no such membership (``NOT_JOINED``).
            McastValueError: ``group`` is joined on several interfaces and ``interface``
                is None, or not a multicast address of this socket's IP version.
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._h.check_open()
        self._h.check_owner("leave")
        g = self._group(group)
        idx, name = self._lookup_iface(g, interface)
        self._book.check_leave(idx, str(g), name)
        self._leave_index(idx, g.address, name)
        self._book.commit_leave(idx, str(g))

    def _leave_index(self, ifindex: int, group: IPAddress, ifname: str) -> None:
        # InterfaceError: the interface is gone, and the kernel dropped the membership (B3)
        with contextlib.suppress(InterfaceError):
            self._h.setopt(Op.LEAVE, pack_group_req(ifindex, group), ErrOp.LEAVE,
                           group=str(group), interface=ifname)

    def _drop(self, ifindex: int, g: Group) -> None:
        m = self._book.get(ifindex, str(g))
        if m is not None:
            self._leave_index(ifindex, g.address, m.ifname)
            self._book.commit_leave(ifindex, str(g))

    def forget_all(self) -> None:
        """Close while another descriptor may hold the socket: forget the book, leave
        nothing (the memberships end with the socket's last descriptor, 14.2)."""
        self._book.clear()
        self._retry.clear()

    def leave_all(self) -> None:
        """Leave every group (close): never raises, an interface may be gone (B3, G11).
        Newest first: the kernel keeps a socket's memberships newest first and searches
        that list on every leave, so join order would make closing quadratic."""
        self._retry.clear()
        for m in reversed(self._book.clear()):
            # closing drops the kernel's memberships anyway; leaving first is tidiness
            with contextlib.suppress(OSError, McastValueError):
                self._leave_index(m.ifindex, Group.parse(m.group).address, m.ifname)

    # ------------------------------------------------------------------ source-specific

    def join_source(self, source: str | IPAddress, group: GroupArg,
                    interface: InterfaceArg | None = None) -> Membership:
        """Source-specific join: receive ``group`` only from ``source`` (RFC 4607).

        A further source adds to the membership; adding the same source again is a no-op.

        Args:
            source: the unicast address of the sender to receive.
            group: the group address or :class:`~mcastkit.Group`.
            interface: the interface (name, index, local address or
                :class:`~mcastkit.Interface`); None: the socket's default interface, else
                the one the routing table picks for the group.

        Returns:
            The membership with its sources, as the kernel accepted it.

        Raises:
            McastValueError: ``source`` is not a unicast address (``BAD_ADDRESS``), or the
                group is not multicast / of the wrong IP version.
            ModeConflictError: the group is joined any-source on this interface
                (``MODE_CONFLICT``).
            SourceFilterError: over ``igmp_max_msf`` / ``mld_max_msf`` (named;
                ``SOURCE_FILTER``).
            InterfaceNotFoundError: no such interface (``INTERFACE_NOT_FOUND``).
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._h.check_open()
        self._h.check_owner("join_source")
        g = self._group(group)
        s = self._source(source)
        iface, spec = self._join_iface(g, interface)
        key = str(g)
        if not self._book.check_join_source(iface.index, key, str(s), iface.name):
            m = self._book.get(iface.index, key)
            assert m is not None
            return m
        err = ErrOp.JOIN_SOURCE if self._book.get(iface.index, key) else ErrOp.JOIN_GROUP_SOURCE
        self._h.setopt(Op.JOIN_SOURCE, pack_group_source_req(iface.index, g.address, s), err,
                       group=key, source=str(s), interface=iface.name)
        m = self._book.commit_join_source(iface.index, key, str(s), iface.name, spec)
        self._opts.warn_scope(g)  # G3
        return m

    def leave_source(self, source: str | IPAddress, group: GroupArg,
                     interface: InterfaceArg | None = None) -> None:
        """Drop one source of a source-specific join (the last one leaves the group).

        Args:
            source: the source to drop.
            group: the group address or :class:`~mcastkit.Group`.
            interface: the interface of the membership; None: the only interface
                ``group`` is joined on (or the socket's default interface).

        Raises:
            NotJoinedError: no source-specific membership of ``group`` with ``source``
                here, also when the group is joined any-source (``NOT_JOINED``).
            McastValueError: a bad source or group address.
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._h.check_open()
        self._h.check_owner("leave_source")
        g = self._group(group)
        s = self._source(source)
        idx, name = self._lookup_iface(g, interface)
        self._book.check_leave_source(idx, str(g), str(s), name)
        with contextlib.suppress(InterfaceError):
            self._h.setopt(Op.LEAVE_SOURCE, pack_group_source_req(idx, g.address, s),
                           ErrOp.LEAVE_SOURCE, group=str(g), source=str(s), interface=name)
        self._book.commit_leave_source(idx, str(g), str(s))

    def block_source(self, source: str | IPAddress, group: GroupArg,
                     interface: InterfaceArg | None = None) -> None:
        """Stop receiving ``source`` on an any-source join (EXCLUDE filter).

        Blocking a source already blocked is a no-op.

        Args:
            source: the sender to stop receiving.
            group: the group address or :class:`~mcastkit.Group`, joined any-source.
            interface: the interface of the membership; None: the only interface
                ``group`` is joined on (or the socket's default interface).

        Raises:
            NotJoinedError: the group is not joined here (``NOT_JOINED``).
            ModeConflictError: the group is joined source-specifically (``MODE_CONFLICT``).
            SourceFilterError: over ``igmp_max_msf`` / ``mld_max_msf`` (``SOURCE_FILTER``).
            McastValueError: a bad source or group address.
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._filter(source, group, interface, block=True)

    def unblock_source(self, source: str | IPAddress, group: GroupArg,
                       interface: InterfaceArg | None = None) -> None:
        """Undo :meth:`block_source`: receive ``source`` again (a no-op when it is not
        blocked).

        Args:
            source: the blocked sender.
            group: the group address or :class:`~mcastkit.Group`, joined any-source.
            interface: the interface of the membership; None: the only interface
                ``group`` is joined on (or the socket's default interface).

        Raises:
            NotJoinedError: the group is not joined here (``NOT_JOINED``).
            ModeConflictError: the group is joined source-specifically (``MODE_CONFLICT``).
            McastValueError: a bad source or group address.
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._filter(source, group, interface, block=False)

    def _filter(self, source: str | IPAddress, group: GroupArg,
                interface: InterfaceArg | None, *, block: bool) -> None:
        self._h.check_open()
        self._h.check_owner("block_source" if block else "unblock_source")
        g = self._group(group)
        s = self._source(source)
        idx, name = self._lookup_iface(g, interface)
        if not self._book.check_block(idx, str(g), str(s), name, block):
            return
        op, err = ((Op.BLOCK_SOURCE, ErrOp.BLOCK_SOURCE) if block
                   else (Op.UNBLOCK_SOURCE, ErrOp.UNBLOCK_SOURCE))
        self._h.setopt(op, pack_group_source_req(idx, g.address, s), err, group=str(g),
                       source=str(s), interface=name)
        self._book.commit_block(idx, str(g), str(s), block)

    # ------------------------------------------------------------------ interface changes

    def _rejoin(self, m: Membership, g: Group) -> None:
        """Join ``m`` again by its spec, with all its sources (SSM) or blocked sources."""
        spec = m.interface_spec
        assert isinstance(spec, str)
        if m.mode is FilterMode.EXCLUDE:
            self.join(g, spec)
            for src in sorted(m.sources):
                self.block_source(src, g, spec)
        else:
            for src in sorted(m.sources):
                self.join_source(src, g, spec)

    def refresh_interfaces(self) -> list[Membership]:
        """Re-join memberships made by interface *name* or *address* whose interface was
        re-created.

        A re-created interface has a new index (field notes B3); every source (SSM) and
        blocked source is applied again. Memberships whose interface is still missing are
        kept and retried on the next call; so is one whose re-join the kernel refused (the
        error is raised, and it is no longer listed as held: issue 14.4).

        Returns:
            The memberships re-joined (empty when nothing changed).

        Raises:
            McastError: a re-join the kernel refused (as :meth:`join`); the next call
                retries it.
            McastStateError: called from a process that did not open the socket
                (``NOT_OWNER``).
            ClosedError: the socket is closed (``CLOSED``).
        """
        self._h.check_open()
        self._h.check_owner("refresh_interfaces")
        done: list[Membership] = []
        for m in [*self._retry, *self._book]:
            if not isinstance(m.interface_spec, str):
                continue
            try:
                idx = resolve_interface(m.interface_spec).index
            except McastError:
                continue  # still missing: keep it, retry next time
            pending = m in self._retry
            if idx == m.ifindex and not pending:
                continue
            g = Group.parse(m.group)
            if not pending:
                # the kernel may still list the old index for this socket, or not (B3)
                with contextlib.suppress(NotJoinedError):
                    self._leave_index(m.ifindex, g.address, m.ifname)
                self._book.commit_leave(m.ifindex, m.group)
                self._retry.append(m)
            try:
                self._rejoin(m, g)
            except McastError:
                # undo what the re-join did; the spec stays queued for the next call
                with contextlib.suppress(McastError):
                    self._drop(idx, g)
                raise
            self._retry.remove(m)
            nm = self._book.get(idx, m.group)
            assert nm is not None
            done.append(nm)
        opts = self._opts
        if opts.iface is not None and isinstance(opts.iface_spec, str):
            try:
                if socket.if_nametoindex(opts.iface_spec) != opts.iface.index:
                    opts.set_interface(opts.iface_spec)
            except (OSError, McastValueError):
                pass
        return done
