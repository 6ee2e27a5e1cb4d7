"""Group memberships of :class:`~mcastkit.MulticastSocket`.

Owns: join / leave (any-source), join_source / leave_source (SSM), block / unblock of
sources on an any-source join, picking the interface of a membership, leaving by
interface index, and re-joining name-chosen memberships after an interface came back
(field notes B3, B4). The kernel is asked first; the book records only what it accepted.
Must not: send or receive, or keep membership state outside the MembershipBook.
"""

from __future__ import annotations

import contextlib
import socket

from . import _platform as plat
from ._addr import Group, IPAddress
from ._errors import ErrorCode, InterfaceError, McastError, McastValueError, translate
from ._interfaces import Interface, resolve_interface, route_interface
from ._membership import Membership
from ._options import _OptionsMixin
from ._platform import Op
from ._platform._structs import pack_group_req, pack_group_source_req
from ._sockbase import InterfaceArg


class _JoinsMixin(_OptionsMixin):
    """Memberships (part of MulticastSocket). Built on the options for the default
    interface and the TTL the G3 scope warnings compare against."""

    def _join_iface(
        self, g: Group, interface: InterfaceArg | None
    ) -> tuple[Interface, str | int | None]:
        if interface is not None:
            spec = interface if isinstance(interface, str | int) else None
            return resolve_interface(interface), spec
        if self._iface is not None:
            return self._iface, self._iface_spec
        return route_interface(g.address), None

    def join(self, group: str | IPAddress | Group, interface: InterfaceArg | None = None
             ) -> Membership:
        """Join ``group`` (any source) on ``interface`` (by index). Joining again is a no-op
        that returns the existing membership.

        Raises:
            McastValueError: not a multicast address, or the wrong IP version.
            ModeConflictError: the group is joined source-specifically on this interface.
            InterfaceNotFoundError / InterfaceError: no such interface, or no route.
            MembershipLimitError: over ``net.ipv4.igmp_max_memberships`` (named, with its
                value); the memberships already held stay intact.
        """
        self._check_open()
        g = self._group(group)
        iface, spec = self._join_iface(g, interface)
        key = str(g)
        if not self._book.check_join(iface.index, key, iface.name):
            m = self._book.get(iface.index, key)
            assert m is not None
            return m
        with translate("join", group=key, interface=iface.name, family=self._family):
            plat.setopt(self._sock, Op.JOIN, pack_group_req(iface.index, g.address))
        m = self._book.commit_join(iface.index, key, iface.name, spec)
        self._warn_scope(g, self.ttl)  # G3
        return m

    def leave(self, group: str | IPAddress | Group, interface: InterfaceArg | None = None) -> None:
        """Leave an any-source or source-specific membership (all its sources).

        Raises:
            NotJoinedError: this socket holds no such membership.
        """
        self._check_open()
        g = self._group(group)
        idx, name = self._lookup_membership_iface(g, interface)
        self._book.check_leave(idx, str(g), name)
        self._leave_index(idx, g.address, name)
        self._book.commit_leave(idx, str(g))

    def _lookup_membership_iface(self, g: Group, interface: InterfaceArg | None) -> tuple[int, str]:
        """Find the membership's interface without requiring the interface still exists."""
        key = str(g)
        if interface is None:
            held = [m for m in self._book if m.group == key]
            if len(held) == 1:
                return held[0].ifindex, held[0].ifname
            if self._iface is not None:
                return self._iface.index, self._iface.name
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

    def _drop_membership(self, ifindex: int, g: Group) -> None:
        m = self._book.get(ifindex, str(g))
        if m is not None:
            self._leave_index(ifindex, g.address, m.ifname)
            self._book.commit_leave(ifindex, str(g))

    def _leave_index(self, ifindex: int, group: IPAddress, ifname: str) -> None:
        try:
            with translate("leave", group=str(group), interface=ifname, family=self._family):
                plat.setopt(self._sock, Op.LEAVE, pack_group_req(ifindex, group))
        except InterfaceError:
            pass  # the interface is gone, and the kernel dropped the membership with it (B3)

    def join_source(
        self,
        source: str | IPAddress,
        group: str | IPAddress | Group,
        interface: InterfaceArg | None = None,
    ) -> Membership:
        """Source-specific join: receive ``group`` only from ``source`` (RFC 4607).
        Adding the same source again is a no-op.

        Raises:
            ModeConflictError: the group is joined any-source on this interface.
            SourceFilterError: over ``igmp_max_msf`` / ``mld_max_msf`` (named).
        """
        self._check_open()
        g = self._group(group)
        s = self._source(source)
        iface, spec = self._join_iface(g, interface)
        key = str(g)
        if not self._book.check_join_source(iface.index, key, str(s), iface.name):
            m = self._book.get(iface.index, key)
            assert m is not None
            return m
        op = "join_source" if self._book.get(iface.index, key) else "join_group_source"
        with translate(op, group=key, source=str(s), interface=iface.name,
                       family=self._family):
            plat.setopt(self._sock, Op.JOIN_SOURCE,
                        pack_group_source_req(iface.index, g.address, s))
        m = self._book.commit_join_source(iface.index, key, str(s), iface.name, spec)
        self._warn_scope(g, self.ttl)  # G3
        return m

    def leave_source(
        self,
        source: str | IPAddress,
        group: str | IPAddress | Group,
        interface: InterfaceArg | None = None,
    ) -> None:
        """Drop one source of a source-specific join (the last one leaves the group)."""
        self._check_open()
        g = self._group(group)
        s = self._source(source)
        idx, name = self._lookup_membership_iface(g, interface)
        self._book.check_leave_source(idx, str(g), str(s), name)
        try:
            with translate("leave_source", group=str(g), source=str(s), interface=name,
                           family=self._family):
                plat.setopt(self._sock, Op.LEAVE_SOURCE,
                            pack_group_source_req(idx, g.address, s))
        except InterfaceError:
            pass
        self._book.commit_leave_source(idx, str(g), str(s))

    def block_source(
        self,
        source: str | IPAddress,
        group: str | IPAddress | Group,
        interface: InterfaceArg | None = None,
    ) -> None:
        """Stop receiving ``source`` on an any-source join (EXCLUDE filter)."""
        self._filter(source, group, interface, block=True)

    def unblock_source(
        self,
        source: str | IPAddress,
        group: str | IPAddress | Group,
        interface: InterfaceArg | None = None,
    ) -> None:
        """Undo :meth:`block_source`."""
        self._filter(source, group, interface, block=False)

    def _filter(self, source: str | IPAddress, group: str | IPAddress | Group,
                interface: InterfaceArg | None, *, block: bool) -> None:
        self._check_open()
        g = self._group(group)
        s = self._source(source)
        idx, name = self._lookup_membership_iface(g, interface)
        if not self._book.check_block(idx, str(g), str(s), name, block):
            return
        op = Op.BLOCK_SOURCE if block else Op.UNBLOCK_SOURCE
        with translate(op.value, group=str(g), source=str(s), interface=name,
                       family=self._family):
            plat.setopt(self._sock, op, pack_group_source_req(idx, g.address, s))
        self._book.commit_block(idx, str(g), str(s), block)

    def refresh_interfaces(self) -> list[Membership]:
        """Re-join memberships made by interface *name* whose interface was re-created
        (new index; field notes B3). Returns the memberships re-joined. Memberships whose
        interface is still missing are kept and retried on the next call."""
        self._check_open()
        done: list[Membership] = []
        for m in self._book:
            if not m.by_name:
                continue
            assert isinstance(m.interface_spec, str)
            try:
                idx = socket.if_nametoindex(m.interface_spec)
            except OSError:
                continue
            if idx == m.ifindex:
                continue
            g = Group.parse(m.group)
            self._leave_index(m.ifindex, g.address, m.ifname)
            self._book.commit_leave(m.ifindex, m.group)
            try:
                if m.mode.value == "exclude":
                    nm = self.join(g, m.interface_spec)
                    for src in m.sources:
                        self.block_source(src, g, m.interface_spec)
                else:
                    for src in m.sources:
                        nm = self.join_source(src, g, m.interface_spec)
            except McastError:
                # undo what the re-join did, keep the old record so the next call retries
                with contextlib.suppress(McastError):
                    self._drop_membership(idx, g)
                self._book.restore(m)
                raise
            done.append(nm)
        if self._iface is not None and isinstance(self._iface_spec, str):
            try:
                if socket.if_nametoindex(self._iface_spec) != self._iface.index:
                    self.set_interface(self._iface_spec)
            except (OSError, McastValueError):
                pass
        return done
