"""Batched datagram I/O: ``recvmmsg(2)`` / ``sendmmsg(2)`` through ctypes, and UDP GSO.

Owns: the preallocated per-socket message rings (``struct mmsghdr`` / ``iovec`` / name and
control buffers, built once and reused), the byte layouts of those structs (checked
against ctypes in tests), the control-message walker, the choice between the three
receive implementations (``"c"``: the optional compiled ring in ``mcastkit._speedups``;
``"ctypes"``: recvmmsg through ctypes; ``"python"``: a recvmsg loop; the best available
one unless :func:`force_impl` or ``MCASTKIT_BATCH=c|ctypes|python`` says otherwise), and
the UDP GSO probe. :class:`~mcastkit.MulticastSocket` wraps these in ``recv_batch`` /
``send_batch``; statistics, filtering and error translation stay in the socket core.

Must not: import the socket core (it sits beside it), keep global state beyond the libc
handle and the implementation switch, hold per-source state without a bound (G6), or
translate errors (it raises plain :class:`OSError` / ``TimeoutError`` /
``BlockingIOError``; the core translates).

Platform notes: Linux only (recvmmsg since 2.6.33, sendmmsg since 3.0, UDP_SEGMENT since
4.18). Elsewhere :func:`mmsg_available` is False and the fallbacks run.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import itertools
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final, TypeVar

from . import _platform as plat
from ._packet import CmsgKind, Datagram, decode_ancillary
from ._platform import Op
from ._platform._structs import pack_sockaddr

__all__ = [
    "CMSG_HDR",
    "MMSGHDR",
    "BatchReceiver",
    "BatchSender",
    "CReceiver",
    "MmsgReceiver",
    "PyReceiver",
    "Summary",
    "available_impls",
    "current_impl",
    "force_impl",
    "force_python",
    "mmsg_available",
    "new_receiver",
    "pack_cmsgs",
    "pack_dest",
    "pack_iovec",
    "pack_mmsghdr",
    "parse_cmsgs",
    "using_python",
]

_T = TypeVar("_T")
#: (group, interface, drops, bytes, truncated) of a batch in which every datagram has the
#: same group, interface and drop count: lets the core count and filter without a loop
Summary = tuple[str | None, int | None, int | None, int, int]

# --------------------------------------------------------------------------- layouts


class IOVec(ctypes.Structure):
    """``struct iovec`` (the reference layout for the packers below)."""

    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class MsgHdr(ctypes.Structure):
    """``struct msghdr`` as glibc declares it on Linux."""

    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class MMsgHdr(ctypes.Structure):
    """``struct mmsghdr``: one msghdr plus the byte count the kernel filled in."""

    _fields_ = [("msg_hdr", MsgHdr), ("msg_len", ctypes.c_uint)]


# Native-aligned struct formats; "0P" pads to pointer alignment like the C compiler does
# at the end of the embedded msghdr and of mmsghdr.
MMSGHDR: Final = struct.Struct("@PIPNPNi0PI0P")
IOVEC: Final = struct.Struct("@PN")
CMSG_HDR: Final = struct.Struct("@Nii")  # cmsg_len (size_t), cmsg_level, cmsg_type
_ALIGN: Final = struct.calcsize("@N")  # CMSG_ALIGN unit on Linux (sizeof(size_t))
_NAME_SIZE: Final = 32  # >= sizeof(struct sockaddr_in6) == 28, kept 8-aligned
_CTRL_SIZE: Final = 256  # room for timestamp + overflow + pktinfo + ttl + tos
_MAX_VLEN: Final = 1024  # UIO_MAXIOV: the kernel clamps vlen to this
_RING_BYTES: Final = 16 << 20  # cap on one ring's payload buffer
_SRC_CACHE_MAX: Final = 4096  # bounded per-source state (G6)
_META_CACHE_MAX: Final = 1024
_GSO_MAX_SEGMENTS: Final = 64  # UDP_MAX_SEGMENTS on every kernel that has UDP_SEGMENT
_GSO_MAX_BYTES: Final = 65507 - 8  # stay under the IPv4 datagram limit
_SO_TIMESTAMPNS: Final = 35


def pack_mmsghdr(name: int, namelen: int, iov: int, iovlen: int, control: int,
                 controllen: int, flags: int = 0, msg_len: int = 0) -> bytes:
    """Bytes of one ``struct mmsghdr`` (pointers given as integer addresses)."""
    return MMSGHDR.pack(name, namelen, iov, iovlen, control, controllen, flags, msg_len)


def pack_iovec(base: int, length: int) -> bytes:
    """Bytes of one ``struct iovec``."""
    return IOVEC.pack(base, length)


def _cmsg_align(n: int) -> int:
    return (n + _ALIGN - 1) & ~(_ALIGN - 1)


def pack_cmsgs(items: Sequence[tuple[int, int, bytes]]) -> bytes:
    """Lay control messages out as the kernel does (each padded to CMSG_SPACE)."""
    out = bytearray()
    for level, ctype, data in items:
        length = CMSG_HDR.size + len(data)
        out += CMSG_HDR.pack(length, level, ctype) + data
        out += b"\0" * (_cmsg_align(length) - length)
    return bytes(out)


def parse_cmsgs(buf: bytes, start: int = 0, length: int | None = None
                ) -> list[tuple[int, int, bytes]]:
    """Walk the control messages in ``buf[start:start+length]`` (CMSG_FIRSTHDR/NXTHDR).

    A truncated or malformed header ends the walk; what was read so far is returned
    (never raises on kernel or hostile input).
    """
    end = len(buf) if length is None else min(len(buf), start + length)
    out: list[tuple[int, int, bytes]] = []
    pos = start
    hdr = CMSG_HDR.size
    while pos + hdr <= end:
        clen, level, ctype = CMSG_HDR.unpack_from(buf, pos)
        if clen < hdr or pos + clen > end:
            break
        out.append((level, ctype, bytes(buf[pos + hdr:pos + clen])))
        pos += _cmsg_align(clen)
    return out


# --------------------------------------------------------------------------- libc

_libc: ctypes.CDLL | None = None
_recvmmsg = None
_sendmmsg = None
_IMPLS: Final = ("c", "ctypes", "python")
_env_impl = os.environ.get("MCASTKIT_BATCH", "").lower()
_ENV_IMPL: Final = _env_impl if _env_impl in _IMPLS else None
_forced: str | None = _ENV_IMPL
_generation = 0  # bumped by force_impl(): a BatchSender re-picks its path when it changes


def _load() -> None:
    global _libc, _recvmmsg, _sendmmsg
    if _libc is not None or sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        rx = libc.recvmmsg
        tx = libc.sendmmsg
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return
    rx.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    rx.restype = ctypes.c_int
    tx.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    tx.restype = ctypes.c_int
    _libc, _recvmmsg, _sendmmsg = libc, rx, tx


_load()

_Ring: type | None
try:
    from ._speedups import Ring as _Ring
    from ._speedups import setup as _setup

    _CODES: Final = {CmsgKind.PKTINFO4: 1, CmsgKind.PKTINFO6: 2, CmsgKind.TTL: 3,
                     CmsgKind.HOPLIMIT: 3, CmsgKind.RXQ_OVFL: 4, CmsgKind.TIMESTAMPNS: 5,
                     CmsgKind.TOS: 6, CmsgKind.TCLASS: 6}
    _setup(Datagram, [(lv, ty, _CODES[k]) for (lv, ty), k
                      in plat.CMSG_KINDS.items() if k in _CODES])
except Exception:  # not built, or a mismatch: the accelerator must never break the import
    _Ring = None

_csendmmsg: Callable[[int, Sequence[bytes | bytearray | memoryview], bytes, int], int] | None
_csendmmsg = None
if _Ring is not None:
    try:
        from ._speedups import sendmmsg as _csendmmsg
    except ImportError:  # an accelerator built before it had sendmmsg: ctypes sends
        _csendmmsg = None


def mmsg_available() -> bool:
    """True when recvmmsg/sendmmsg can be called through ctypes."""
    return _recvmmsg is not None and _sendmmsg is not None


def available_impls() -> list[str]:
    """The receive implementations usable here, best first (``"python"`` always)."""
    out = ["c"] if _Ring is not None else []
    if mmsg_available():
        out.append("ctypes")
    return [*out, "python"]


def force_impl(name: str | None) -> None:
    """Use ``name`` (``"c"``, ``"ctypes"`` or ``"python"``) for new rings; None restores
    the default (``MCASTKIT_BATCH`` if set, else the best available).

    Raises:
        ValueError: an unknown or unavailable implementation.
    """
    global _forced, _generation
    if name is not None and name not in available_impls():
        raise ValueError(f"batch implementation {name!r} is not available here; "
                         f"available: {', '.join(available_impls())}")
    _forced = _ENV_IMPL if name is None else name
    _generation += 1


def force_python(on: bool) -> None:
    """Force the pure-Python fallbacks (True) or go back to the default (False)."""
    force_impl("python" if on else None)


def current_impl() -> str:
    """The implementation new rings use: the forced one if available, else the best.
    (Sending: ``"c"`` is the accelerator's sendmmsg, ``"ctypes"`` sendmmsg through ctypes,
    ``"python"`` a sendto loop.)"""
    avail = available_impls()
    return _forced if _forced in avail else avail[0]


def using_python() -> bool:
    """True when new rings will use the pure-Python fallbacks."""
    return current_impl() == "python"


def _addr_of(buf: bytearray) -> int:
    return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))


def _wait_readable(fd_of: socket.socket, wait: float | None, deadline: float | None) -> None:
    """Block until ``fd_of`` is readable, or raise TimeoutError at ``deadline``.

    Polls in slices of at most one second so a socket closed by another thread is noticed
    (its fileno becomes -1) instead of blocking forever.
    """
    while True:
        fd = fd_of.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        if deadline is None:
            slice_ms = 1000
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(errno.ETIMEDOUT, f"no datagram within {wait} s")
            slice_ms = max(1, min(1000, int(left * 1000 + 0.999)))
        p = select.poll()
        p.register(fd, select.POLLIN)
        if p.poll(slice_ms):
            return


# --------------------------------------------------------------------------- receive


class BatchReceiver:
    """Common part of both receivers: the source and metadata decoders (bounded caches).

    Args:
        family: ``socket.AF_INET`` or ``AF_INET6``.
        recv_size: bytes kept per datagram; longer ones are cut and flagged truncated.
    """

    python: bool = False
    impl: str = "ctypes"
    #: after each receive: the batch's :data:`Summary` when every datagram had the same
    #: group, interface and drop count, else None
    summary: Summary | None = None

    def __init__(self, family: int, recv_size: int) -> None:
        self.family = family
        self.recv_size = recv_size
        self._src: dict[bytes, tuple[str, int]] = {}
        self._meta: dict[bytes, tuple[str | None, int | None, int | None, int | None,
                                      int | None]] = {}

    def receive(self, sock: socket.socket, max_count: int, wait: float | None
                ) -> list[Datagram]:  # pragma: no cover - abstract
        """Wait for the first datagram (``wait``: None forever, 0 not at all, else seconds),
        then take up to ``max_count`` without waiting.

        Raises:
            BlockingIOError: ``wait == 0`` and nothing is queued.
            TimeoutError: nothing arrived within ``wait`` seconds.
            OSError: the receive failed (the caller translates it).
        """
        raise NotImplementedError

    def _decode_meta(self, raw: bytes
                     ) -> tuple[str | None, int | None, int | None, int | None, int | None]:
        d = Datagram(b"", "", 0)
        decode_ancillary(d, parse_cmsgs(raw), plat.CMSG_KINDS)
        v = (d.group, d.interface, d.ttl, d.drops, d.tos)
        if len(self._meta) >= _META_CACHE_MAX:
            self._meta.clear()
        self._meta[raw] = v
        return v


def _drain_wait(sock: socket.socket, wait: float | None) -> float | None:
    return None if wait is None else time.monotonic() + wait


class MmsgReceiver(BatchReceiver):
    """recvmmsg(2) receiver: one ring of ``slots`` messages, allocated once, reused."""

    def __init__(self, family: int, recv_size: int, slots: int = 64) -> None:
        super().__init__(family, recv_size)
        self.slots = 0
        # ctypes releases the GIL around recvmmsg: without this lock a second thread
        # could refill or replace the buffers the kernel is writing into
        self._lock = threading.Lock()
        self._alloc(slots)

    def _alloc(self, slots: int) -> None:
        slots = max(1, min(slots, _MAX_VLEN, max(1, _RING_BYTES // self.recv_size)))
        if slots <= self.slots:
            return
        rs = self.recv_size
        self._data = bytearray(slots * rs)
        self._names = bytearray(slots * _NAME_SIZE)
        self._ctrl = bytearray(slots * _CTRL_SIZE)
        self._iov = bytearray(slots * IOVEC.size)
        self._hdr = bytearray(slots * MMSGHDR.size)
        d, n, c = _addr_of(self._data), _addr_of(self._names), _addr_of(self._ctrl)
        iov = _addr_of(self._iov)
        self._hdr_addr = _addr_of(self._hdr)
        for i in range(slots):
            IOVEC.pack_into(self._iov, i * IOVEC.size, d + i * rs, rs)
        self._template = b"".join(
            pack_mmsghdr(n + i * _NAME_SIZE, _NAME_SIZE, iov + i * IOVEC.size, 1,
                         c + i * _CTRL_SIZE, _CTRL_SIZE) for i in range(slots))
        self._hdr[:] = self._template
        self._dmv = memoryview(self._data)
        self._nmv = memoryview(self._names)
        self._cmv = memoryview(self._ctrl)
        self._cv32 = memoryview(self._ctrl).cast("I")
        self._cv64 = memoryview(self._ctrl).cast("q")
        # u32 views of the header fields the kernel writes (all 4-aligned on Linux ABIs)
        self._hv = memoryview(self._hdr).cast("I")
        self._stride = MMSGHDR.size // 4
        hi = 4 if sys.byteorder == "big" and ctypes.sizeof(ctypes.c_size_t) == 8 else 0
        self._i_len = MMsgHdr.msg_len.offset // 4
        self._i_flags = MsgHdr.msg_flags.offset // 4
        self._i_clen = (MsgHdr.msg_controllen.offset + hi) // 4
        self.slots = slots

    def _syscall(self, fd: int, n: int) -> int:
        assert _recvmmsg is not None
        self._hdr[: n * MMSGHDR.size] = self._template[: n * MMSGHDR.size]
        got: int = _recvmmsg(fd, self._hdr_addr, n, socket.MSG_DONTWAIT, None)
        if got < 0:
            e = ctypes.get_errno()
            if e == errno.EAGAIN:
                raise BlockingIOError(e, os.strerror(e))
            raise OSError(e, os.strerror(e))
        return got

    def receive(self, sock: socket.socket, max_count: int, wait: float | None
                ) -> list[Datagram]:
        deadline = _drain_wait(sock, wait)
        while True:
            fd = sock.fileno()
            if fd < 0:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            try:
                with self._lock:  # held from the syscall until the Datagrams are built
                    if max_count > self.slots:
                        self._alloc(max_count)
                    return self._now(fd, min(max_count, self.slots))
            except BlockingIOError:
                if wait == 0:
                    raise
                _wait_readable(sock, wait, deadline)
                continue
            except InterruptedError:  # pragma: no cover - MSG_DONTWAIT does not sleep
                continue

    def _now(self, fd: int, n: int) -> list[Datagram]:
        """One non-waiting recvmmsg of up to ``n`` messages, as Datagrams."""
        return self._build(self._syscall(fd, n))

    def _build(self, n: int) -> list[Datagram]:
        """Turn the first ``n`` filled slots into Datagrams.

        Fast path: when every message of the batch has the same control-message layout
        (the steady state), each metadata field is read for the whole batch at once from
        strided views of the control buffer, and Datagrams are made by ``map`` without a
        Python-level loop. The result is checked against :func:`decode_ancillary` on the
        first message; any mismatch or irregular batch takes the per-message path.
        """
        st = self._stride
        hv = self._hv
        lens = hv[self._i_len: n * st: st].tolist()
        flags = hv[self._i_flags: n * st: st].tolist()
        clens = hv[self._i_clen: n * st: st].tolist()
        rs = self.recv_size
        dmv = self._dmv
        offs = range(0, n * rs, rs)
        datas = [dmv[o: o + ln].tobytes() for o, ln in zip(offs, lens, strict=False)]
        self.summary = None
        srcs, ports = self._sources(n)
        if any(flags):
            trunc = int(socket.MSG_TRUNC)
            truncs: Iterable[bool] = [bool(f & trunc) for f in flags]
            ntrunc = sum(1 for f in flags if f & trunc)
        else:
            truncs = itertools.repeat(False, n)
            ntrunc = 0
        nbytes = sum(lens)
        cl = clens[0]
        if cl == 0 and clens.count(0) == n:
            rep = itertools.repeat
            self.summary = (None, None, None, nbytes, ntrunc)
            return list(map(Datagram, datas, srcs, ports, rep(None, n), rep(None, n),
                            rep(None, n), truncs))
        if clens.count(cl) == n:
            cols = self._meta_columns(n, cl)
            if cols is not None:
                group, iface, ttl, drops, ts, tos, uni = cols
                if uni is not None:
                    self.summary = (*uni, nbytes, ntrunc)
                return list(map(Datagram, datas, srcs, ports, group, iface, ttl, truncs,
                                drops, ts, tos))
        return self._build_slow(n, datas, srcs, ports, list(truncs), clens)

    def _sources(self, n: int) -> tuple[Iterable[str], Iterable[int]]:
        names = self._nmv[: n * _NAME_SIZE].tobytes()
        kend = 28 if self.family == socket.AF_INET6 else 8
        first = names[:_NAME_SIZE]
        if names == first * n:  # one sender for the whole batch (the common case)
            s = self._src.get(first[2:kend]) or self._source(first[2:kend])
            return itertools.repeat(s[0], n), itertools.repeat(s[1], n)
        src = self._src
        pairs = [src.get(k) or self._source(k)
                 for k in [names[o + 2: o + kend] for o in range(0, n * _NAME_SIZE, _NAME_SIZE)]]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def _meta_columns(self, n: int, cl: int) -> tuple[
            Iterable[str | None], Iterable[int | None], Iterable[int | None],
            Iterable[int | None], Iterable[int | None], Iterable[int | None],
            tuple[str | None, int | None, int | None] | None] | None:
        """Read every metadata field of a uniform batch column-wise; None if irregular."""
        ctrl = self._ctrl
        cs = _CTRL_SIZE
        first = bytes(ctrl[:cl])
        items = parse_cmsgs(first)
        u32 = self._cv32
        end4 = n * cs // 4
        s4 = cs // 4
        # a column is a list (one value per message) or a 1-tuple (the same for all)
        group: Sequence[str | None] = (None,)
        iface: Sequence[int | None] = (None,)
        ttl: Sequence[int | None] = (None,)
        drops: Sequence[int | None] = (None,)
        ts: Sequence[int | None] = (None,)
        tos: Sequence[int | None] = (None,)
        pos = 0
        kinds = plat.CMSG_KINDS
        for level, ctype, raw in items:
            # every message must carry the same header at the same place
            for word in (pos // 4 + 2, pos // 4 + 3):
                col = u32[word: end4: s4].tolist()
                if col.count(col[0]) != n:
                    return None
            d = pos + CMSG_HDR.size
            kind = kinds.get((level, ctype))
            ln = len(raw)
            if kind is CmsgKind.PKTINFO4 and ln >= 12:
                iface = self._col(u32, d // 4, end4, s4, n, signed=True)
                addrs = u32[d // 4 + 2: end4: s4].tolist()
                gmap = {a: socket.inet_ntop(socket.AF_INET, a.to_bytes(4, sys.byteorder))
                        for a in set(addrs)}
                group = (gmap[addrs[0]],) if len(gmap) == 1 else [gmap[a] for a in addrs]
            elif kind is CmsgKind.PKTINFO6 and ln >= 20:
                cb = self._cmv[: n * cs].tobytes()
                keys = [cb[o: o + 16] for o in range(d, n * cs, cs)]
                g6 = {k: socket.inet_ntop(socket.AF_INET6, k) for k in set(keys)}
                group = (g6[keys[0]],) if len(g6) == 1 else [g6[k] for k in keys]
                iface = self._col(u32, (d + 16) // 4, end4, s4, n, signed=True)
            elif (kind is CmsgKind.TTL or kind is CmsgKind.HOPLIMIT) and ln >= 4:
                ttl = self._col(u32, d // 4, end4, s4, n, signed=True)
            elif (kind is CmsgKind.TOS or kind is CmsgKind.TCLASS) and ln >= 1:
                if ln >= 4:
                    tos = self._col(u32, d // 4, end4, s4, n, signed=True)
                else:
                    tos = self._cmv[d: n * cs: cs].tolist()
            elif kind is CmsgKind.RXQ_OVFL and ln >= 4:
                dl: list[int | None] = list(u32[d // 4: end4: s4].tolist())
                drops = (dl[0],) if dl.count(dl[0]) == n else dl
            elif kind is CmsgKind.TIMESTAMPNS and ln >= 16:
                q = self._cv64
                secs = q[d // 8: n * cs // 8: cs // 8].tolist()
                nsecs = q[d // 8 + 1: n * cs // 8: cs // 8].tolist()
                ts = [a * 1_000_000_000 + b for a, b in zip(secs, nsecs, strict=False)]
            elif kind is not None:
                return None  # a field we know but did not expect: take the careful path
            pos += _cmsg_align(CMSG_HDR.size + ln)
        cols = (group, iface, ttl, drops, ts, tos)
        # cross-check message 0 against the core decoder
        ref = Datagram(b"", "", 0)
        decode_ancillary(ref, items, kinds)
        if tuple(c[0] for c in cols) != (ref.group, ref.interface, ref.ttl, ref.drops,
                                         ref.timestamp_ns, ref.tos):
            return None
        uni = ((group[0], iface[0], drops[0])
               if isinstance(group, tuple) and isinstance(iface, tuple)
               and isinstance(drops, tuple) else None)
        return (_expand(group, n), _expand(iface, n), _expand(ttl, n), _expand(drops, n),
                _expand(ts, n), _expand(tos, n), uni)

    @staticmethod
    def _col(u32: memoryview, word: int, end4: int, s4: int, n: int, *, signed: bool
             ) -> Sequence[int | None]:
        col = u32[word: end4: s4].tolist()
        if signed:
            col = [v - (1 << 32) if v >= 1 << 31 else v for v in col] if max(col) >= 1 << 31 \
                else col
        return (col[0],) if col.count(col[0]) == n else col

    def _build_slow(self, n: int, datas: list[bytes], srcs: Iterable[str],
                    ports: Iterable[int], truncs: list[bool], clens: list[int]
                    ) -> list[Datagram]:
        """Per-message metadata decoding (irregular batches), cached by the raw bytes."""
        ctrl = self._cmv[: n * _CTRL_SIZE].tobytes()
        meta = self._meta
        ts_hdr = CMSG_HDR.pack(CMSG_HDR.size + 16, socket.SOL_SOCKET, _SO_TIMESTAMPNS)
        hl = len(ts_hdr)
        ts_space = _cmsg_align(CMSG_HDR.size + 16)
        out: list[Datagram] = []
        append = out.append
        for i, (data, s, port) in enumerate(zip(datas, srcs, ports, strict=False)):
            co = i * _CTRL_SIZE
            cl = clens[i]
            ts: int | None = None
            if cl:
                if ctrl[co: co + hl] == ts_hdr:
                    sec, nsec = struct.unpack_from("@qq", ctrl, co + hl)
                    ts = sec * 1_000_000_000 + nsec
                    raw = ctrl[co + ts_space: co + cl]
                else:
                    raw = ctrl[co: co + cl]
                m = meta.get(raw)
                if m is None:
                    m = self._decode_meta(raw)
                append(Datagram(data, s, port, m[0], m[1], m[2], truncs[i], m[3], ts, m[4]))
            else:
                append(Datagram(data, s, port, None, None, None, truncs[i]))
        return out

    def _source(self, key: bytes) -> tuple[str, int]:
        port = int.from_bytes(key[0:2], "big")
        if self.family == socket.AF_INET6:
            host = socket.inet_ntop(socket.AF_INET6, key[6:22])
            scope = int.from_bytes(key[22:26], sys.byteorder)
            if scope:
                host = f"{host}%{scope}"
        else:
            host = socket.inet_ntop(socket.AF_INET, key[2:6])
        if len(self._src) >= _SRC_CACHE_MAX:
            self._src.clear()
        v = (host, port)
        self._src[key] = v
        return v


class PyReceiver(BatchReceiver):
    """The pure-Python fallback: a non-blocking loop of recvmsg (same results, slower)."""

    python = True
    impl = "python"

    def __init__(self, family: int, recv_size: int) -> None:
        super().__init__(family, recv_size)
        # receive() switches the socket to non-blocking for the drain and back: two
        # threads doing that at once would see each other's setting, so take turns
        self._lock = threading.Lock()

    def receive(self, sock: socket.socket, max_count: int, wait: float | None
                ) -> list[Datagram]:
        with self._lock:
            return self._receive(sock, max_count, wait)

    def _receive(self, sock: socket.socket, max_count: int, wait: float | None
                 ) -> list[Datagram]:
        deadline = _drain_wait(sock, wait)
        out: list[Datagram] = []
        rs = self.recv_size
        dw = int(socket.MSG_DONTWAIT)
        trunc = int(socket.MSG_TRUNC)
        prev = sock.gettimeout()
        if prev != 0.0:
            # with a timeout set, Python's recvmsg would wait before each read
            sock.settimeout(0.0)
        try:
            while len(out) < max_count:
                try:
                    data, anc, flags, addr = sock.recvmsg(rs, _CTRL_SIZE, dw)
                except BlockingIOError:
                    if out:
                        break
                    if wait == 0:
                        raise
                    _wait_readable(sock, wait, deadline)
                    continue
                host = addr[0]
                if len(addr) == 4 and addr[3]:
                    host = f"{host}%{addr[3]}"
                d = Datagram(data, host, addr[1], truncated=bool(flags & trunc))
                if anc:
                    decode_ancillary(d, anc, plat.CMSG_KINDS)
                out.append(d)
        finally:
            if prev != 0.0 and sock.fileno() >= 0:
                sock.settimeout(prev)
        return out


class CReceiver(MmsgReceiver):
    """The compiled ring (``mcastkit._speedups.Ring``): recvmmsg and Datagram building in
    C, same results as :class:`MmsgReceiver`; the waiting stays here."""

    impl = "c"

    def __init__(self, family: int, recv_size: int, slots: int = 64) -> None:
        assert _Ring is not None
        BatchReceiver.__init__(self, family, recv_size)
        self._lock = threading.Lock()  # MmsgReceiver.receive's; the ring has its own too
        self._ring = _Ring(family, recv_size, max(1, min(slots, _MAX_VLEN)))
        self.slots = _MAX_VLEN  # the ring grows itself on demand

    def _now(self, fd: int, n: int) -> list[Datagram]:
        ring = self._ring
        got: list[Datagram] = ring.recv(fd, n)
        self.summary = ring.summary
        return got


def new_receiver(family: int, recv_size: int, slots: int = 64) -> BatchReceiver:
    """A receiver of the :func:`current_impl` kind (compiled, ctypes or pure Python)."""
    impl = current_impl()
    if impl == "python":
        return PyReceiver(family, recv_size)
    if impl == "c":
        return CReceiver(family, recv_size, slots)
    return MmsgReceiver(family, recv_size, slots)


# --------------------------------------------------------------------------- send


class BatchSender:
    """sendmmsg(2) with a preallocated ring, plus the UDP GSO path and its probe.

    The sendmmsg path follows :func:`current_impl`: ``"c"`` calls the accelerator's
    ``sendmmsg`` (iovecs point into the payloads, nothing copied; up to 1024 per call),
    ``"ctypes"`` joins the payloads into one buffer and packs the iovecs in Python (up to
    ``slots`` per call). A change through :func:`force_impl` is picked up at the next call.

    Args:
        family: ``socket.AF_INET`` or ``AF_INET6``.
    """

    def __init__(self, family: int, slots: int = 256) -> None:
        self.family = family
        self.python = using_python()
        self.gso_ok: bool | None = None  # None: not probed on this socket yet
        self._gso_bad_sizes: set[int] = set()
        self._want_slots = max(1, min(slots, _MAX_VLEN))
        self.slots = 0  # payloads per sendmmsg() call
        self._ring_slots = 0  # messages the ctypes ring holds (allocated on first use)
        self._namelen = 16 if family == socket.AF_INET else 28
        self._name = bytearray(_NAME_SIZE)
        self._sa = bytes(self._namelen)  # the destination for the accelerator
        self._dest_key: tuple[object, ...] | None = None
        self._gen = -1
        self.impl = "python" if self.python else ""
        if not self.python:
            self._select()

    def _select(self) -> None:
        """Pick the sendmmsg implementation for the current :func:`current_impl`."""
        self._gen = _generation
        if _csendmmsg is not None and current_impl() == "c":
            self.impl = "c"
            self.slots = _MAX_VLEN
        else:
            self.impl = "ctypes"
            self._alloc(self._want_slots)
            self.slots = self._ring_slots

    def _alloc(self, slots: int) -> None:
        slots = max(1, min(slots, _MAX_VLEN))
        if slots <= self._ring_slots:
            return
        self._iov = bytearray(slots * IOVEC.size)
        self._hdr = bytearray(slots * MMSGHDR.size)
        self._buf = bytearray(0)
        name = _addr_of(self._name)
        iov = _addr_of(self._iov)
        self._hdr_addr = _addr_of(self._hdr)
        self._hdr[:] = b"".join(
            pack_mmsghdr(name, self._namelen, iov + i * IOVEC.size, 1, 0, 0)
            for i in range(slots))
        self._iov_structs: dict[int, struct.Struct] = {}
        self._ring_slots = slots

    def set_dest(self, dest: tuple[str, int] | tuple[str, int, int, int]) -> None:
        """Point every message at ``dest`` (packed once per new destination)."""
        if dest != self._dest_key:
            raw = pack_dest(dest)[: self._namelen]
            self._name[: len(raw)] = raw
            self._sa = bytes(raw)
            self._dest_key = dest

    def sendmmsg(self, fd: int, payloads: Sequence[bytes | bytearray | memoryview]) -> int:
        """Send ``payloads`` (at most ``slots``) in one sendmmsg call.

        Returns:
            How many were sent (may be fewer than given: the kernel stopped early).

        Raises:
            BlockingIOError: nothing sent, the buffer is full (non-blocking socket).
            OSError: nothing sent; the first message failed with this errno.
            TypeError: a payload is not a bytes-like object.
        """
        if self._gen != _generation:
            self._select()
        if self.impl == "c":
            assert _csendmmsg is not None
            return _csendmmsg(fd, payloads, self._sa, 0)
        assert _sendmmsg is not None
        n = len(payloads)
        if n > self._ring_slots:
            self._alloc(n)
        lens = [_nbytes(p) for p in payloads]
        total = sum(lens)
        if len(self._buf) < total:
            self._buf = bytearray(max(total, 2 * len(self._buf)))
        buf = self._buf
        buf[:total] = b"".join(payloads)
        base = _addr_of(buf)
        vals: list[int] = [0] * (2 * n)
        vals[0::2] = [base + o for o in itertools.accumulate(lens, initial=0)][:n]
        vals[1::2] = lens
        s = self._iov_structs.get(n)
        if s is None:
            s = self._iov_structs[n] = struct.Struct("@" + "PN" * n)
        s.pack_into(self._iov, 0, *vals)
        got: int = _sendmmsg(fd, self._hdr_addr, n, 0)
        if got < 0:
            e = ctypes.get_errno()
            if e in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise BlockingIOError(e, os.strerror(e))
            raise OSError(e, os.strerror(e))
        return got

    def gso_size_ok(self, size: int) -> bool:
        """Worth trying GSO for payloads of ``size`` bytes on this socket?"""
        return (self.gso_ok is not False and 0 < 2 * size <= _GSO_MAX_BYTES
                and size not in self._gso_bad_sizes)

    def gso_send(self, sock: socket.socket, payloads: Sequence[bytes | bytearray | memoryview],
                 dest: tuple[str, int] | tuple[str, int, int, int]
                 ) -> tuple[int, OSError | None]:
        """Send equal-size ``payloads`` (the last may be shorter) as UDP GSO super-datagrams.

        Returns:
            (datagrams sent, the error that stopped it or None). After an error the caller
            sends the rest another way (which also reports the error properly). GSO that
            the kernel refuses (EIO, ENOPROTOOPT, EOPNOTSUPP) is remembered as unsupported
            for this socket; EINVAL (e.g. segment over the MTU) for this size only.
        """
        seg = _nbytes(payloads[0])
        per = max(1, min(_GSO_MAX_SEGMENTS, _GSO_MAX_BYTES // seg))
        row = plat.lookup(self.family, Op.UDP_SEGMENT)
        cmsg = [(row.level, row.name, struct.pack("@H", seg))]
        sent = 0
        n = len(payloads)
        while sent < n:
            chunk = payloads[sent: sent + per]
            try:
                if len(chunk) == 1:
                    sock.sendto(chunk[0], dest)
                else:
                    sock.sendmsg([b"".join(chunk)], cmsg, 0, dest)
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP,
                                 errno.ENOTSUP) and not self.gso_ok:
                    self.gso_ok = False
                elif exc.errno == errno.EINVAL:
                    self._gso_bad_sizes.add(seg)
                return sent, exc
            if len(chunk) > 1:
                self.gso_ok = True
            sent += len(chunk)
        return sent, None


def _expand(col: Sequence[_T], n: int) -> Iterable[_T]:
    """A column as ``map`` wants it: a 1-tuple means the same value ``n`` times."""
    return itertools.repeat(col[0], n) if isinstance(col, tuple) else col


def _nbytes(p: bytes | bytearray | memoryview) -> int:
    return p.nbytes if isinstance(p, memoryview) else len(p)


def pack_dest(dest: tuple[str, int] | tuple[str, int, int, int]) -> bytes:
    """The ``sockaddr_in(6)`` bytes for a destination tuple as ``socket.sendto`` takes it."""
    ip = ipaddress.ip_address(dest[0])
    scope = dest[3] if len(dest) == 4 else 0
    return pack_sockaddr(ip, dest[1], scope)
