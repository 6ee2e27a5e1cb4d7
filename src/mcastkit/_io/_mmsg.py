"""The ctypes backend's receiver: ``recvmmsg(2)`` into a ring allocated once per socket.

Owns: :class:`MmsgReader`, its preallocated message ring (``mmsghdr`` / ``iovec`` / name
and control buffers; layouts from ``mcastkit._platform._structs``) and its bounded
caches of decoded sources and control blocks (G6). Metadata is decoded by the reference
decoder (``mcastkit._packet.decode_ancillary``), once per distinct control block.
Must not: wait, translate errors, or decode control messages itself.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from typing import Final

from .. import _platform as plat
from .._packet import Datagram, decode_ancillary, format_source
from .._platform._structs import (
    CTRL_SIZE,
    IOVEC,
    MMSG_LEN_OFFSET,
    MMSGHDR,
    MSG_CONTROLLEN_OFFSET,
    MSG_FLAGS_OFFSET,
    NAME_SIZE,
    pack_mmsghdr,
    parse_cmsgs,
    unpack_sockaddr,
)
from . import _libc
from ._base import Summary

__all__ = ["MAX_VLEN", "RING_BYTES", "MmsgReader"]

MAX_VLEN: Final = 1024  # UIO_MAXIOV: the kernel clamps vlen to this
RING_BYTES: Final = 16 << 20  # cap on one ring's payload buffer
_CACHE_MAX: Final = 1024  # bounded per-source / per-control-block state (G6)
_TRUNC: Final = int(socket.MSG_TRUNC)
_HI: Final = 4 if sys.byteorder == "big" and struct.calcsize("@N") == 8 else 0  # size_t low word
_Meta = tuple[str | None, int | None, int | None, int | None, int | None, int | None]
_NO_META: Final[_Meta] = (None, None, None, None, None, None)


class MmsgReader:
    """Reader of the ``"ctypes"`` backend (one ring, grown on demand, never shrunk)."""

    impl = "ctypes"

    def __init__(self, family: int, recv_size: int, slots: int) -> None:
        self._family = family
        self._rs = recv_size
        self._keylen = 28 if family == socket.AF_INET6 else 16
        self.slots = 0
        self._src: dict[bytes, tuple[str, int]] = {}
        self._meta: dict[bytes, _Meta] = {}
        # ctypes releases the GIL around recvmmsg: without this lock a second thread
        # could refill or replace the buffers the kernel is writing into
        self._lock = threading.Lock()
        self._alloc(slots)

    def _alloc(self, slots: int) -> None:
        slots = max(1, min(slots, MAX_VLEN, max(1, RING_BYTES // self._rs)))
        if slots <= self.slots:
            return
        rs = self._rs
        self._data = bytearray(slots * rs)
        self._names = bytearray(slots * NAME_SIZE)
        self._ctrl = bytearray(slots * CTRL_SIZE)
        self._iov = bytearray(slots * IOVEC.size)
        self._hdr = bytearray(slots * MMSGHDR.size)
        d, n = _libc.addr_of(self._data), _libc.addr_of(self._names)
        c, iov = _libc.addr_of(self._ctrl), _libc.addr_of(self._iov)
        self._hdr_addr = _libc.addr_of(self._hdr)
        for i in range(slots):
            IOVEC.pack_into(self._iov, i * IOVEC.size, d + i * rs, rs)
        self._template = b"".join(
            pack_mmsghdr(n + i * NAME_SIZE, NAME_SIZE, iov + i * IOVEC.size, 1,
                         c + i * CTRL_SIZE, CTRL_SIZE) for i in range(slots))
        self._hv = memoryview(self._hdr).cast("I")  # u32 words of the fields the kernel sets
        self.slots = slots

    def read(self, sock: socket.socket, max_count: int) -> tuple[list[Datagram], Summary | None]:
        """One ``recvmmsg(MSG_DONTWAIT)`` of up to ``max_count`` (BlockingIOError: none)."""
        with self._lock:  # held from the syscall until the Datagrams are built
            if max_count > self.slots:
                self._alloc(max_count)
            n = min(max_count, self.slots)
            size = n * MMSGHDR.size
            self._hdr[:size] = self._template[:size]
            got: int = _libc.recvmmsg(sock.fileno(), self._hdr_addr, n,
                                      socket.MSG_DONTWAIT, None)
            if got < 0:
                _libc.raise_errno()
            return self._build(got)

    def _build(self, n: int) -> tuple[list[Datagram], Summary | None]:
        st = MMSGHDR.size // 4
        hv = self._hv
        lens = hv[MMSG_LEN_OFFSET // 4: n * st: st].tolist()
        flags = hv[MSG_FLAGS_OFFSET // 4: n * st: st].tolist()
        clens = hv[(MSG_CONTROLLEN_OFFSET + _HI) // 4: n * st: st].tolist()
        rs = self._rs
        data, names, ctrl = self._data, self._names, self._ctrl
        kl = self._keylen
        src, meta = self._src, self._meta
        out: list[Datagram] = []
        first: _Meta | None = None
        same = True
        nbytes = ntrunc = 0
        for i in range(n):
            ln = min(lens[i], rs)
            key = bytes(names[i * NAME_SIZE: i * NAME_SIZE + kl])
            s = src.get(key) or self._source(key)
            cl = min(clens[i], CTRL_SIZE)
            m = _NO_META
            if cl:
                raw = bytes(ctrl[i * CTRL_SIZE: i * CTRL_SIZE + cl])
                m = meta.get(raw) or self._decode(raw)
            if first is None:
                first = m
            elif m is not first:
                same = False
            trunc = bool(flags[i] & _TRUNC)
            nbytes += ln
            ntrunc += trunc
            out.append(Datagram(bytes(data[i * rs: i * rs + ln]), s[0], s[1], m[0], m[1],
                                m[2], trunc, m[3], m[4], m[5]))
        summary = (first[0], first[1], first[3], nbytes, ntrunc) if same and first else None
        return out, summary

    def _source(self, key: bytes) -> tuple[str, int]:
        host, port, scope = unpack_sockaddr(key)
        v = (format_source(host, scope), port)
        if len(self._src) >= _CACHE_MAX:
            self._src.clear()
        self._src[key] = v
        return v

    def _decode(self, raw: bytes) -> _Meta:
        d = Datagram(b"", "", 0)
        decode_ancillary(d, parse_cmsgs(raw), plat.CMSG_KINDS)
        v = (d.group, d.interface, d.ttl, d.drops, d.timestamp_ns, d.tos)
        if len(self._meta) >= _CACHE_MAX:
            self._meta.clear()
        self._meta[raw] = v
        return v
