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
from collections.abc import Iterable
from itertools import repeat
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
        self._dmv = memoryview(self._data)
        self._nmv = memoryview(self._names)
        self._cmv = memoryview(self._ctrl)
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
        """Datagrams of the first ``n`` slots, built column by column (``map``, no
        per-message Python loop); each distinct control block is decoded once."""
        st = MMSGHDR.size // 4
        hv = self._hv
        lens = hv[MMSG_LEN_OFFSET // 4: n * st: st].tolist()
        flags = hv[MSG_FLAGS_OFFSET // 4: n * st: st].tolist()
        clens = hv[(MSG_CONTROLLEN_OFFSET + _HI) // 4: n * st: st].tolist()
        rs = self._rs
        dmv = self._dmv
        datas = [dmv[o: o + ln].tobytes() for o, ln in zip(range(0, n * rs, rs), lens,
                                                            strict=False)]
        nbytes = sum(lens)
        srcs, ports = self._sources(n)
        trunc = [bool(f & _TRUNC) for f in flags] if any(flags) else repeat(False, n)
        ntrunc = sum(1 for f in flags if f & _TRUNC)
        metas = self._metas(n, clens)
        if isinstance(metas, tuple):  # one control block for the whole batch
            m = metas
            cols: list[Iterable[object]] = [repeat(v, n) for v in m]
            summary: Summary | None = (m[0], m[1], m[3], nbytes, ntrunc)
        else:
            cols = [list(c) for c in zip(*metas, strict=True)]
            summary = None
        group, iface, ttl, drops, ts, tos = cols
        return list(map(Datagram, datas, srcs, ports, group, iface, ttl, trunc, drops, ts,
                        tos)), summary

    def _sources(self, n: int) -> tuple[Iterable[str], Iterable[int]]:
        kl = self._keylen
        names = self._nmv[: n * NAME_SIZE].tobytes()
        src = self._src
        if names == names[:NAME_SIZE] * n:  # one sender for the whole batch (common)
            key = names[:kl]
            host, port = src.get(key) or self._source(key)
            return repeat(host, n), repeat(port, n)
        pairs = [src.get(k) or self._source(k)
                 for k in [names[o: o + kl] for o in range(0, n * NAME_SIZE, NAME_SIZE)]]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def _metas(self, n: int, clens: list[int]) -> _Meta | list[_Meta]:
        """The decoded control block of each slot, or one tuple when all are the same."""
        cmv = self._cmv
        meta = self._meta
        cl = min(clens[0], CTRL_SIZE)
        if clens.count(clens[0]) == n:
            if cl == 0:
                return _NO_META
            raws = cmv[: n * CTRL_SIZE].tobytes()
            first = raws[:cl]
            if all(raws.startswith(first, o) for o in range(CTRL_SIZE, n * CTRL_SIZE,
                                                             CTRL_SIZE)):
                return meta.get(first) or self._decode(first)
        out: list[_Meta] = []
        for i, c in enumerate(clens):
            c = min(c, CTRL_SIZE)
            if not c:
                out.append(_NO_META)
                continue
            raw = cmv[i * CTRL_SIZE: i * CTRL_SIZE + c].tobytes()
            out.append(meta.get(raw) or self._decode(raw))
        return out

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
