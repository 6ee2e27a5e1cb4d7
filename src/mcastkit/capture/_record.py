"""The record engine: received datagrams become pcapng packets that capture tools read.

Every datagram is written as the frame that carried it, rebuilt: Ethernet (or raw IP)
/ IPv4 or IPv6 / UDP with correct checksums, the sender's address and port, the group and
port it was sent to, the TTL / hop limit and TOS it arrived with, and the kernel's
arrival time in nanoseconds. A socket receives datagrams, not frames: the Ethernet source
is a placeholder (``02:00:00:00:00:00``), the destination is the group's multicast MAC,
and IP options or fragmentation on the wire are not seen.

The kernel's drop counter (``SO_RXQ_OVFL``) is written where it rises: the next packet
carries ``epb_dropcount`` and a comment, and an Interface Statistics Block records
``isb_osdrop``, the drops before datagrams of that interface since the recording started,
so a gap in the capture shows as a gap. The closing statistics add the drops seen after
the last datagram (the live counter) to the first interface, so the ``isb_osdrop`` of the
last blocks of all interfaces add up to the recording's kernel drops.

Owns: :class:`Recorder` (datagrams → rotating pcapng files) and :func:`record` (the
receive-and-write loop). Must not: parse command lines, print, install signal handlers.
"""

from __future__ import annotations

import ipaddress
import platform
import selectors
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from .. import _frames
from .._addr import Endpoint, parse_endpoint
from .._errors import McastValueError, ReceiveTimeoutError
from .._interfaces import Interface, resolve_interface
from .._open import open_receiver
from .._packet import Datagram
from .._socket import MulticastSocket
from ..seq import SeqAnalyzer
from . import _epb, _pcapng
from ._files import RotatingFiles
from ._writer import BatchWriter

__all__ = ["RecordStats", "Recorder", "record"]

PLACEHOLDER_MAC = _epb.PLACEHOLDER_MAC
LINKTYPES = {"ethernet": _frames.LINKTYPE_ETHERNET, "raw": _frames.LINKTYPE_RAW}
SNAPLEN = 262144
BATCH = 256  # datagrams per recv_batch call
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(slots=True)
class RecordStats:
    """What a recording did so far.

    Attributes:
        datagrams: packets written.
        bytes: UDP payload bytes written.
        kernel_drops: the kernel's drop counters (all sockets) as last seen.
        drop_records: how often a rise of the drop counter was written.
        queue_drops: received but not written: the write queue was full.
        queue_peak_bytes: the most the write queue held.
        truncated: datagrams longer than the receive buffer (written cut).
        elapsed_s: seconds recorded.
        files: files written, oldest first.
        removed: files rotated out by ``keep``.
    """

    datagrams: int = 0  #: packets written
    bytes: int = 0  #: UDP payload bytes written
    kernel_drops: int = 0  #: the kernel's drop counters (all sockets) as last seen
    drop_records: int = 0  #: how often a rise of the drop counter was written
    queue_drops: int = 0  #: received but not written: the write queue was full
    queue_peak_bytes: int = 0  #: the most the write queue held
    truncated: int = 0  #: datagrams longer than the receive buffer (written cut)
    elapsed_s: float = 0.0
    files: list[str] = field(default_factory=list)  #: files written, oldest first
    removed: list[str] = field(default_factory=list)  #: rotated out by ``keep``

    def as_dict(self) -> dict[str, object]:
        """The counters as a dict.

        Returns:
            A JSON-ready dict.
        """
        return {"datagrams": self.datagrams, "bytes": self.bytes,
                "kernel_drops": self.kernel_drops, "drop_records": self.drop_records,
                "queue_drops": self.queue_drops, "queue_peak_bytes": self.queue_peak_bytes,
                "truncated": self.truncated, "elapsed_s": round(self.elapsed_s, 3),
                "files": list(self.files), "removed": list(self.removed)}


class Recorder:
    """Write received datagrams to pcapng files.

    Args:
        path: the file to create (never an existing name unless ``overwrite``; never
            through a symlink). With rotation the files are ``NAME-00000.EXT``...
        rotate_bytes: start a new file past this size (None: never).
        rotate_s: start a new file past this age in seconds (None: never).
        keep: with rotation, keep only the newest ``keep`` files.
        overwrite: replace an existing regular file of the same name.
        linktype: ``"ethernet"`` (default) or ``"raw"`` (IP packets without a link layer).
        clock: seconds, for rotation by age.

    Attributes:
        linktype: the pcapng link type number written.
        stats: what was written so far (:class:`RecordStats`).
        files: the rotating file set (its ``paths``: the files written, oldest first).

    Raises:
        CaptureFileError: the file cannot be created.
        McastValueError: a bad argument.
    """

    def __init__(self, path: str, *, rotate_bytes: int | None = None,
                 rotate_s: float | None = None, keep: int | None = None,
                 overwrite: bool = False, linktype: str = "ethernet",
                 clock: Callable[[], float] = time.monotonic) -> None:
        if linktype not in LINKTYPES:
            raise McastValueError(f"linktype {linktype!r}: use 'ethernet' or 'raw'")
        for name, v in (("rotate_bytes", rotate_bytes), ("rotate_s", rotate_s),
                        ("keep", keep)):
            if v is not None and v <= 0:
                raise McastValueError(f"{name} must be more than 0, got {v}")
        if keep is not None and rotate_bytes is None and rotate_s is None:
            raise McastValueError("keep only applies with rotation; give rotate_bytes "
                                  "(--rotate-mb) or rotate_s (--rotate-s) too")
        self.linktype = LINKTYPES[linktype]
        self.stats = RecordStats()
        self._ifaces: dict[int | None, int] = {}  # arrival ifindex -> IDB id
        self._idbs: list[bytes] = []
        self._addr: dict[str, _IP] = {}
        self._if_drops: dict[int, int] = {}  # IDB id -> drops seen before its datagrams
        self._q_drops: dict[int, int] = {}  # IDB id -> not written (full write queue)
        self._closed = False
        self._shb = _pcapng.section_header_block(
            "mcastkit record", f"{platform.system()} {platform.release()}")
        self.files = RotatingFiles(path, self._header, max_bytes=rotate_bytes,
                                   max_age_s=rotate_s, keep=keep, overwrite=overwrite,
                                   clock=clock)
        self.stats.files = self.files.paths
        self.stats.removed = self.files.removed

    def _header(self, _index: int) -> bytes:
        return self._shb + b"".join(self._idbs)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _iface(self, ifindex: int | None) -> int:
        ifid = self._ifaces.get(ifindex)
        if ifid is None:
            name = None
            if ifindex is not None:
                try:
                    name = resolve_interface(ifindex).name
                except Exception:  # gone already: keep the index as its name
                    name = str(ifindex)
            block = _pcapng.interface_block(self.linktype, SNAPLEN, name,
                                            "received by mcastkit (socket level)")
            ifid = self._ifaces[ifindex] = len(self._idbs)
            self._idbs.append(block)
            self.files.file.append(block)
        return ifid

    def _ip(self, text: str) -> _IP:
        ip = self._addr.get(text)
        if ip is None:
            if len(self._addr) > 4096:
                self._addr.clear()
            ip = self._addr[text] = ipaddress.ip_address(text.split("%", 1)[0])
        return ip

    def add(self, d: Datagram, port: int, *, dropped: int = 0, drops_total: int = 0,
            queue_dropped: int = 0) -> None:
        """Write one datagram received on UDP ``port``.

        Args:
            d: a datagram received with metadata (its group is the destination).
            port: the receiving socket's port (the datagram's destination port).
            dropped: how many datagrams the kernel dropped just before it (written as
                ``epb_dropcount``, a comment and a statistics block).
            drops_total: the cumulative kernel drop count at that point.
            queue_dropped: how many datagrams were received just before it but not written
                (the write queue of a threaded recording was full): in ``epb_dropcount``
                too, a comment, and ``isb_ifdrop``.

        Raises:
            CaptureFileError: writing failed (the file ends at its last complete block).
            McastValueError: the datagram has no destination (received without metadata).
        """
        if d.group is None:
            raise McastValueError("a datagram without its destination group cannot be "
                                  "recorded; open the socket with metadata=True")
        ts = d.timestamp_ns if d.timestamp_ns is not None else time.time_ns()
        ifid = self._iface(d.interface)
        if self.files.rotating and self.files.due():
            self.files.rotate()
        src, dst = self._ip(d.source), self._ip(d.group)
        tos = d.tos or 0
        ttl = d.ttl if d.ttl is not None else 1
        if self.linktype == _frames.LINKTYPE_ETHERNET:
            frame = _frames.build_udp_frame(PLACEHOLDER_MAC, src, dst, d.port, port, d.data,
                                            ttl=ttl, dscp=tos >> 2, ecn=tos & 3)
        else:
            frame = _frames.build_udp_packet(src, dst, d.port, port, d.data, ttl=ttl,
                                             dscp=tos >> 2, ecn=tos & 3)
        comment = None
        if dropped:
            comment = (f"kernel dropped {dropped} datagram{'s' if dropped != 1 else ''} "
                       f"before this one (socket counter SO_RXQ_OVFL now {drops_total})")
            self.stats.drop_records += 1
            self._if_drops[ifid] = self._if_drops.get(ifid, 0) + dropped
            self.files.file.append(_pcapng.statistics_block(
                ifid, ts, osdrop=self._if_drops[ifid],
                comment=f"kernel drop counter rose by {dropped} to {drops_total}"))
        if queue_dropped:
            self.stats.queue_drops += queue_dropped
            self._q_drops[ifid] = self._q_drops.get(ifid, 0) + queue_dropped
            note = (f"{queue_dropped} datagram{'s' if queue_dropped != 1 else ''} received "
                    "but not written before this one: the write queue was full")
            comment = f"{comment}; {note}" if comment else note
            self.files.file.append(_pcapng.statistics_block(
                ifid, ts, ifdrop=self._q_drops[ifid], comment=note))
        if d.truncated:
            self.stats.truncated += 1
            comment = ((comment + "; ") if comment else "") + \
                "truncated: longer than the receive buffer"
        self.files.file.append(_pcapng.enhanced_packet_block(
            ifid, ts, frame, dropcount=(dropped + queue_dropped) or None, comment=comment))
        self.stats.datagrams += 1
        self.stats.bytes += len(d.data)

    def add_plain(self, batch: Sequence[Datagram], start: int, port: int,
                  prev_drops: int) -> int:
        """Write the plain datagrams at the start of ``batch[start:]`` at once.

        Plain: with its group and kernel timestamp, on the arrival interface of
        ``batch[start]``, not truncated, the drop counter not above ``prev_drops`` (see
        :mod:`mcastkit.capture._epb`). The same bytes as :meth:`add` for each, built
        for the whole run of them in one call.

        Args:
            batch: received datagrams.
            start: the first index to write.
            port: the receiving socket's port.
            prev_drops: the socket's drop counter as last written.

        Returns:
            The index of the first datagram not written: write it with :meth:`add`.

        Raises:
            CaptureFileError: writing failed (the file ends at its last complete block).
        """
        first = batch[start]
        if first.group is None:
            return start
        ifid = self._iface(first.interface)
        files = self.files
        if files.rotating and files.due():
            files.rotate()
        limit = (1 << 62) if files.max_bytes is None else files.max_bytes - files.file.size
        took = [start, 0]  # next index, payload bytes

        def build(buf: bytearray, pos: int) -> int:
            took[0], end, took[1] = _epb.build_epbs(
                buf, pos, batch, start, port, ifid, first.interface, self.linktype,
                prev_drops, max(limit, 0))
            return end

        files.file.build(build)
        self.stats.datagrams += took[0] - start
        self.stats.bytes += took[1]
        return took[0]

    def flush(self) -> None:
        """Write what is buffered (whole blocks) to the current file."""
        self.files.file.flush()

    def close(self, kernel_drops: int | None = None) -> None:
        """Write closing statistics, flush, fsync and close.

        Idempotent; never leaves a partial block.

        Args:
            kernel_drops: the live drop counter to record (None: the last one seen).
        """
        if self._closed:
            return
        self._closed = True
        try:
            if kernel_drops is not None:
                self.stats.kernel_drops = max(self.stats.kernel_drops, kernel_drops)
            if not self.files.file.closed:
                now = time.time_ns()
                # drops after the last datagram have no interface: count them on the first
                rest = self.stats.kernel_drops - sum(self._if_drops.values())
                if rest > 0:
                    self._if_drops[0] = self._if_drops.get(0, 0) + rest
                rest = self.stats.queue_drops - sum(self._q_drops.values())
                if rest > 0:  # the write queue dropped the last batches
                    self._q_drops[0] = self._q_drops.get(0, 0) + rest
                if not self._idbs:
                    self._iface(None)
                for ifid in range(len(self._idbs)):
                    self.files.file.append(_pcapng.statistics_block(
                        ifid, now, osdrop=self._if_drops.get(ifid, 0),
                        ifdrop=self._q_drops.get(ifid) or None,
                        comment="end of capture" if ifid == 0 else None))
        finally:
            self.files.close()


def _drain(sel: selectors.BaseSelector, socks: Sequence[MulticastSocket], timeout_s: float
           ) -> Iterator[tuple[MulticastSocket, list[Datagram]]]:
    """(socket, batch) for every socket with datagrams ready within ``timeout_s``."""
    if len(socks) == 1:  # one socket: its own wait, no selector round per batch
        try:
            batch = socks[0].recv_batch(max_count=BATCH, timeout_s=timeout_s)
        except (ReceiveTimeoutError, BlockingIOError):
            return
        yield socks[0], batch
        return
    for key, _ in sel.select(timeout_s):
        sock: MulticastSocket = key.data
        try:
            yield sock, sock.recv_batch(max_count=BATCH, timeout_s=0.0)
        except (ReceiveTimeoutError, BlockingIOError):
            continue  # only a datagram for a group this socket never joined was queued


def _live_drops(socks: Sequence[MulticastSocket]) -> int:
    total = 0
    for s in socks:
        d = s.kernel_drops()
        total += d if d >= 0 else s.stats.kernel_drops
    return total


def record(source: str | Endpoint | MulticastSocket | Sequence[str | Endpoint | MulticastSocket],
           path: str, *, interface: str | int | Interface | None = None,
           count: int | None = None, duration_s: float | None = None,
           stop: threading.Event | None = None, seq: SeqAnalyzer | None = None,
           progress: Callable[[RecordStats], None] | None = None,
           progress_every_s: float = 1.0, queue_bytes: int | None = None,
           **recorder_options: object) -> RecordStats:
    """Write what arrives on ``source`` to ``path`` until ``count`` datagrams,
    ``duration_s`` seconds, or ``stop`` is set.

    Args:
        source: endpoints (``[SOURCE,]GROUP:PORT``; one port and IP version: they share a
            socket, joined on ``interface``), or open sockets (several ports: open one
            socket per port; metadata and timestamps are turned on here). Sockets stay
            open and joined afterwards; sockets made here are closed.
        path: the pcapng file (see :class:`Recorder` for ``recorder_options``).
        interface: where to join endpoints (name, index or address).
        count: stop after this many datagrams (None: not by count).
        duration_s: stop after this many seconds (None: not by time).
        stop: an event another thread (or a signal handler) sets to end the run cleanly.
        seq: a :class:`~mcastkit.seq.SeqAnalyzer` fed with every datagram.
        progress: called with the stats about every ``progress_every_s`` seconds.
        progress_every_s: seconds between ``progress`` calls.
        queue_bytes: write on a thread of its own behind a queue of at most this many
            bytes, so the receiving thread only receives (None: write as it receives).
        **recorder_options: keyword arguments of :class:`Recorder` (``rotate_bytes``,
            ``rotate_s``, ``keep``, ``overwrite``, ``linktype``).

    Returns:
        The final :class:`RecordStats`.

    Raises:
        CaptureFileError: the file cannot be created or written (what was written is
            complete up to its last block).
        McastError: joining failed.
    """
    items = [source] if isinstance(source, str | Endpoint | MulticastSocket) else list(source)
    socks = [s for s in items if isinstance(s, MulticastSocket)]
    eps = [parse_endpoint(e) if isinstance(e, str) else e for e in items
           if not isinstance(e, MulticastSocket)]
    if not items:
        raise McastValueError("record needs at least one GROUP:PORT endpoint or socket")
    rec = Recorder(path, **recorder_options)  # type: ignore[arg-type]
    stopped = stop if stop is not None else threading.Event()
    own: list[MulticastSocket] = []
    sel = selectors.DefaultSelector()
    try:
        if eps:
            iface = resolve_interface(interface) if interface is not None else None
            own.append(open_receiver(*eps, interface=iface, metadata=True, timestamps=True))
        for s in (*socks, *own):
            s.set_metadata(True, timestamps=True)
            sel.register(s.fileno(), selectors.EVENT_READ, s)
        _loop(rec, sel, [*socks, *own], count, duration_s, stopped, seq, progress,
              progress_every_s, queue_bytes)
        rec.close(_live_drops([*socks, *own]))
    finally:
        rec.close()
        sel.close()
        for s in own:
            s.close()
    return rec.stats


class _Batches:
    """Writes received batches to a :class:`Recorder`: the drop counters of each socket,
    the sequence analysis; the same code for the receiving thread and a writer thread."""

    def __init__(self, rec: Recorder, socks: list[MulticastSocket],
                 seq: SeqAnalyzer | None) -> None:
        self.rec = rec
        self.seq = seq
        self.ports = {s: s.local_address[1] for s in socks}
        self.last = {s: 0 for s in socks}  # each socket's drop counter as last seen

    def write(self, sock: MulticastSocket, batch: Sequence[Datagram], queue_dropped: int
              ) -> None:
        rec, st, seq = self.rec, self.rec.stats, self.seq
        port, prev = self.ports[sock], self.last[sock]
        i, n = 0, len(batch)
        while i < n:
            if not queue_dropped:  # runs of plain datagrams: a batch of blocks at once
                i = rec.add_plain(batch, i, port, prev)
                if i >= n:
                    break
            d = batch[i]  # one with a drop record, a comment or an error: one by one
            dropped = 0
            if d.drops is not None and d.drops > prev:
                dropped, prev = d.drops - prev, d.drops
                self.last[sock] = prev
                st.kernel_drops = max(st.kernel_drops, sum(self.last.values()))
            rec.add(d, port, dropped=dropped, drops_total=st.kernel_drops,
                    queue_dropped=queue_dropped)
            queue_dropped = 0
            i += 1
        if seq is not None:
            for d in batch:
                seq.feed_payload(d.data, d.source, d.port, d.group, port,
                                 (d.timestamp_ns or 0) / 1e9)


def _loop(rec: Recorder, sel: selectors.BaseSelector, socks: list[MulticastSocket],
          count: int | None, duration_s: float | None, stopped: threading.Event,
          seq: SeqAnalyzer | None, progress: Callable[[RecordStats], None] | None,
          progress_every_s: float, queue_bytes: int | None) -> None:
    t0 = time.monotonic()
    batches = _Batches(rec, socks, seq)
    writer = BatchWriter(batches.write, queue_bytes) if queue_bytes else None
    deadline = None if duration_s is None else t0 + duration_s
    next_progress = t0 + progress_every_s
    st = rec.stats
    taken = 0  # datagrams received (written, queued or dropped by the full queue)
    try:
        while not stopped.is_set():
            now = time.monotonic()
            if (deadline is not None and now >= deadline) or (count is not None
                                                              and taken >= count):
                break
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - now))
            for sock, batch in _drain(sel, socks, wait):
                if count is not None and taken + len(batch) > count:
                    batch = batch[:count - taken]
                taken += len(batch)
                if writer is not None:
                    writer.put(sock, batch)
                else:
                    batches.write(sock, batch, 0)
            now = time.monotonic()
            st.elapsed_s = now - t0
            if progress is not None and now >= next_progress:
                next_progress = now + progress_every_s
                st.kernel_drops = max(st.kernel_drops, _live_drops(socks))
                progress(st)
    finally:
        if writer is not None:
            writer.close()
            st.queue_peak_bytes = writer.peak_bytes
            st.queue_drops = writer.dropped  # includes those no datagram came after
    st.elapsed_s = time.monotonic() - t0
