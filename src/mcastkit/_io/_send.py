"""Batched sending: ``sendmmsg(2)`` (accelerator or ctypes) and UDP GSO.

Owns: :class:`BatchSender`: its ctypes ring (``mmsghdr`` / ``iovec`` arrays and one
payload buffer, reused, guarded by a lock because ctypes releases the GIL during the
call: issue 14.1), the packed destination, the accelerator's sendmmsg while the ``c``
backend is selected (``cmmsg``, which the send path calls straight), the per-socket UDP
GSO probe result, and the byte size of a payload (:func:`nbytes`).
Must not: retry, count or translate errors (the send path does), or wait.
"""

from __future__ import annotations

import errno
import itertools
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Final

from .. import _platform as plat
from .._platform import Op
from .._platform._structs import IOVEC, MMSGHDR, NAME_SIZE, pack_dest, pack_mmsghdr
from . import _c, _libc, _select
from ._mmsg import MAX_VLEN

__all__ = ["BatchSender", "Dest", "Payload", "nbytes"]

Payload = bytes | bytearray | memoryview
Dest = tuple[str, int] | tuple[str, int, int, int]
_GSO_MAX_SEGMENTS: Final = 64  # UDP_MAX_SEGMENTS on every kernel that has UDP_SEGMENT
_GSO_MAX_BYTES: Final = 65507 - 8  # stay under the IPv4 datagram limit
_GSO_UNSUPPORTED: Final = (errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.ENOTSUP)


def nbytes(p: Payload) -> int:
    """The size in bytes of payload ``p`` (what goes on the wire): ``len()`` counts
    items, not bytes, for a memoryview or array of a wider format."""
    t = type(p)
    if t is bytes or t is bytearray:
        return len(p)
    return memoryview(p).nbytes


class BatchSender:
    """sendmmsg(2) with a preallocated ring, plus the UDP GSO path and its probe.

    The sendmmsg path follows :func:`~mcastkit._io.current_impl`: ``"c"`` calls the
    accelerator (iovecs point into the payloads, nothing copied; up to 1024 per call),
    ``"ctypes"`` joins the payloads into one buffer and packs the iovecs in Python (up to
    ``slots`` per call); ``"python"`` has no sendmmsg (:attr:`python` is True: the send
    path loops ``sendto``). A change through ``force_impl`` is picked up at the next call.
    """

    def __init__(self, family: int, slots: int = 256) -> None:
        self.family = family
        self.gso_ok: bool | None = None  # None: not probed on this socket yet
        self._gso_bad_sizes: set[int] = set()
        self._want_slots = max(1, min(slots, MAX_VLEN))
        self.slots = 0  # payloads per sendmmsg() call
        self._ring_slots = 0  # messages the ctypes ring holds (allocated on first use)
        self._namelen = 16 if family == socket.AF_INET else 28
        self._name = bytearray(NAME_SIZE)  # the ctypes ring's destination
        self._name_key: Dest | None = None
        self._sa: tuple[Dest | None, bytes] = (None, b"")  # last destination, packed
        self._lock = threading.Lock()  # the ctypes ring is shared by every caller
        self.gen = -1  # the backend generation this sender picked its path in
        self.impl = ""
        #: the accelerator's sendmmsg(fd, payloads, sockaddr, flags) while ``impl`` is
        #: "c" (valid while ``gen`` is the current generation), else None
        self.cmmsg: Callable[[int, Sequence[Payload], bytes, int], int] | None = None
        self._select()

    @property
    def python(self) -> bool:
        """True when this sender has no sendmmsg (the pure-Python backend)."""
        if self.gen != _select.generation():
            self._select()
        return self.impl == "python"

    def _select(self) -> None:
        self.gen = _select.generation()
        impl = _select.current_impl()
        self.cmmsg = None
        if impl == "c" and _c.sendmmsg is not None:
            self.impl, self.slots, self.cmmsg = "c", MAX_VLEN, _c.sendmmsg
        elif impl in ("c", "ctypes") and _libc.sendmmsg is not None:
            with self._lock:
                self._alloc(self._want_slots)
            self.impl, self.slots = "ctypes", self._ring_slots
        else:
            self.impl, self.slots = "python", 0

    def _alloc(self, slots: int) -> None:
        slots = max(1, min(slots, MAX_VLEN))
        if slots <= self._ring_slots:
            return
        self._iov = bytearray(slots * IOVEC.size)
        self._hdr = bytearray(slots * MMSGHDR.size)
        self._buf = bytearray(0)
        name, iov = _libc.addr_of(self._name), _libc.addr_of(self._iov)
        self._hdr_addr = _libc.addr_of(self._hdr)
        self._hdr[:] = b"".join(
            pack_mmsghdr(name, self._namelen, iov + i * IOVEC.size, 1, 0, 0)
            for i in range(slots))
        self._iov_structs: dict[int, struct.Struct] = {}
        self._ring_slots = slots

    def _packed(self, dest: Dest) -> bytes:
        """``dest`` as sockaddr bytes (one cached entry, replaced atomically)."""
        key, raw = self._sa
        if key != dest:
            raw = pack_dest(dest)
            self._sa = (dest, raw)
        return raw

    def sendmmsg(self, fd: int, payloads: Sequence[Payload], dest: Dest, flags: int = 0
                 ) -> int:
        """Send ``payloads`` (at most ``slots``) to ``dest`` in one sendmmsg call.

        Returns:
            How many were sent (may be fewer than given: the kernel stopped early).

        Raises:
            BlockingIOError: nothing sent, the buffer is full (non-blocking send).
            OSError: nothing sent; the first message failed with this errno.
            TypeError: a payload is not a bytes-like object.
        """
        if self.gen != _select.generation():
            self._select()
        if self.cmmsg is not None:
            return self.cmmsg(fd, payloads, self._packed(dest), flags)
        raw = self._packed(dest)
        with self._lock:  # 14.1: one caller at a time packs and sends the shared ring
            if dest != self._name_key:
                self._name[: len(raw)] = raw
                self._name_key = dest
            return self._sendmmsg_ctypes(fd, payloads, flags)

    def _sendmmsg_ctypes(self, fd: int, payloads: Sequence[Payload], flags: int) -> int:
        n = len(payloads)
        if n > self._ring_slots:
            self._alloc(n)
        lens = [nbytes(p) for p in payloads]
        total = sum(lens)
        if len(self._buf) < total:
            self._buf = bytearray(max(total, 2 * len(self._buf)))
        buf = self._buf
        buf[:total] = b"".join(payloads)
        base = _libc.addr_of(buf)
        vals: list[int] = [0] * (2 * n)
        vals[0::2] = [base + o for o in itertools.accumulate(lens, initial=0)][:n]
        vals[1::2] = lens
        s = self._iov_structs.get(n)
        if s is None:
            s = self._iov_structs[n] = struct.Struct("@" + "PN" * n)
        s.pack_into(self._iov, 0, *vals)
        got: int = _libc.sendmmsg(fd, self._hdr_addr, n, flags)
        if got < 0:
            _libc.raise_errno()
        return got

    def gso_size_ok(self, size: int) -> bool:
        """Worth trying GSO for payloads of ``size`` bytes on this socket?"""
        return (self.gso_ok is not False and 0 < 2 * size <= _GSO_MAX_BYTES
                and size not in self._gso_bad_sizes)

    def gso_send(self, sock: socket.socket, payloads: Sequence[Payload], dest: Dest,
                 flags: int = 0) -> tuple[int, OSError | None]:
        """Send equal-size ``payloads`` (the last may be shorter) as UDP GSO super-datagrams.

        Returns:
            (datagrams sent, the error that stopped it or None). After an error the caller
            sends the rest another way (which also reports the error properly). GSO that
            the kernel refuses (EIO, ENOPROTOOPT, EOPNOTSUPP) is remembered as unsupported
            for this socket; EINVAL (e.g. segment over the MTU) for this size only.
        """
        seg = nbytes(payloads[0])
        per = max(1, min(_GSO_MAX_SEGMENTS, _GSO_MAX_BYTES // seg))
        row = plat.lookup(self.family, Op.UDP_SEGMENT)
        cmsg = [(row.level, row.name, struct.pack("@H", seg))]
        sent = 0
        n = len(payloads)
        while sent < n:
            chunk = payloads[sent: sent + per]
            try:
                if len(chunk) == 1:
                    sock.sendto(chunk[0], flags, dest)
                else:
                    sock.sendmsg([b"".join(chunk)], cmsg, flags, dest)
            except OSError as exc:
                if exc.errno in _GSO_UNSUPPORTED and not self.gso_ok:
                    self.gso_ok = False
                elif exc.errno == errno.EINVAL:
                    self._gso_bad_sizes.add(seg)
                return sent, exc
            if len(chunk) > 1:
                self.gso_ok = True
            sent += len(chunk)
        return sent, None
