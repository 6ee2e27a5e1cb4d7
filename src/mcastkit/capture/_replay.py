"""The replay engine: the datagrams of a capture, sent again through the socket core.

No root and no raw frames: each datagram's payload goes to its group or broadcast
address and port (or the one ``mapping`` gives) from an ordinary :class:`MulticastSocket`
on the chosen interface (IPv4 with ``broadcast=True``),
so the kernel writes the headers (the source is this host's). Timing modes:

- recorded timing (``speed`` 1.0), or a multiple of it (``speed`` 2.0 = twice as fast);
- a fixed ``rate`` in datagrams per second;
- ``as_fast=True``: batches through ``send_batch`` (sendmmsg / UDP GSO), no pacing.

Pacing uses an absolute schedule (datagram i is due at start + offset_i; sleeping to a
deadline, never busy-waiting), and the report gives the send-time error (how late each
datagram left against its schedule) as mean / p50 / p99 / max in microseconds. While it
paces, the replaying thread's timer slack is 1 µs instead of Linux's default 50 µs (a
timed wait may end that much after its deadline): the median lateness at 10k/s falls
from about 75 µs to about 25 µs; the old slack comes back when ``replay`` returns or
raises. A final busy-wait (the last 20 µs) would take the median to about 5 µs but holds
the interpreter lock and a core while it spins, and does nothing for the tail, which is
the scheduler's (docs/record-replay.md, "Measured"); a caller who wants it passes ``sleep``.

Owns: :func:`replay`, :class:`ReplayReport` and the ``--map`` rule.
Must not: build or parse packet bytes (``_decode`` and ``_frames`` do), print.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Final

from .._addr import Endpoint, parse_endpoint
from .._errors import McastValueError
from .._interfaces import Interface, resolve_interface
from .._platform._thread import timer_slack
from .._socket import MulticastSocket
from ._decode import DecodeStats, Row, rows

__all__ = ["ReplayReport", "parse_mapping", "replay"]

CACHE_BYTES = 64 << 20  # files up to this size are decoded once for every --loop
_SAMPLES = 100_000  # timing samples kept (reservoir)
BATCH = 512


@dataclass(slots=True)
class ReplayReport:
    """What a replay did.

    Attributes:
        sent: datagrams sent.
        bytes: payload bytes sent.
        loops: passes over the capture completed.
        skipped: datagrams not sent, by reason (e.g. ``"broadcast_unsupported"``).
        elapsed_s: seconds the replay took.
        decode: what reading the capture found (:class:`DecodeStats`).
        timing_us: the send-time error in microseconds (``mean``, ``p50``, ``p99``,
            ``max``, ``samples``); empty when no sample was taken.
        mode: the timing mode (``"recorded x1"``, ``"rate 1000/s"``, ``"max"``).
    """

    sent: int = 0
    bytes: int = 0
    loops: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    decode: DecodeStats = field(default_factory=DecodeStats)
    timing_us: dict[str, float] = field(default_factory=dict)
    mode: str = "recorded"

    @property
    def pps(self) -> float:
        """Datagrams sent per second."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """The counters as a dict.

        Returns:
            A JSON-ready dict.
        """
        return {"sent": self.sent, "bytes": self.bytes, "loops": self.loops,
                "skipped": dict(self.skipped + self.decode.skipped),
                "elapsed_s": round(self.elapsed_s, 3), "pps": round(self.pps, 1),
                "mode": self.mode, "timing_us": self.timing_us,
                "file": self.decode.as_dict()}


def parse_mapping(specs: Iterable[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """``["239.255.0.1:5000=239.255.9.9:6000", ...]`` as {(group, port): (group, port)}.

    Args:
        specs: ``FROM_GROUP:PORT=TO_GROUP:PORT`` texts.

    Returns:
        The mapping from (group, port) to (group, port), groups as text.

    Raises:
        McastValueError: a side that is not GROUP:PORT, or a group mapped twice.
    """
    out: dict[tuple[str, int], tuple[str, int]] = {}
    for spec in specs:
        old, sep, new = spec.partition("=")
        if not sep:
            raise McastValueError(f"--map {spec!r}: use FROM_GROUP:PORT=TO_GROUP:PORT, e.g. "
                                  "239.255.0.1:5000=239.255.9.9:6000")
        a, b = _ep(old, spec), _ep(new, spec)
        key = (str(a.group.address), a.port)
        if key in out:
            raise McastValueError(f"--map {spec!r}: {old} is already mapped")
        out[key] = (str(b.group.address), b.port)
    return out


def _mapping(mapping: Mapping[Any, Any] | None) -> dict[tuple[str, int], tuple[str, int]]:
    """``replay``'s ``mapping`` in its one form: {(group, port): (group, port)} as
    :func:`parse_mapping` gives, also accepting ``{"G:P": "G:P"}`` texts (a form that
    would otherwise match nothing and map nothing, silently).

    Raises:
        McastValueError: an entry in neither form, or a group that does not parse.
    """
    specs: list[str] = []
    for k, v in (mapping or {}).items():
        if isinstance(k, str) and isinstance(v, str):
            specs.append(f"{k}={v}")
        elif (isinstance(k, tuple) and isinstance(v, tuple) and len(k) == len(v) == 2
              and all(isinstance(x[0], str) and isinstance(x[1], int) for x in (k, v))):
            specs.append(f"{_ep_text(*k)}={_ep_text(*v)}")
        else:
            raise McastValueError(f"mapping entry {k!r}: {v!r}: use {{(group, port): "
                                  "(group, port)}, e.g. from parse_mapping([\"239.255.0.1:"
                                  "5000=239.255.9.9:6000\"])")
    return parse_mapping(specs)


def _ep_text(group: str, port: int) -> str:
    return f"[{group}]:{port}" if ":" in group else f"{group}:{port}"


def _ep(text: str, spec: str) -> Endpoint:
    try:
        ep = parse_endpoint(text.strip())
    except McastValueError as exc:
        raise McastValueError(f"--map {spec!r}: {exc.message}") from None
    if ep.source is not None:
        raise McastValueError(f"--map {spec!r}: a mapping names groups, not sources")
    return ep


class _Timing:
    """Send-time errors: exact mean and max, percentiles from a bounded sample."""

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.max = 0.0
        self.samples: list[float] = []
        self._rng = random.Random(1)

    def add(self, err_s: float) -> None:
        self.n += 1
        self.total += err_s
        self.max = max(self.max, err_s)
        if len(self.samples) < _SAMPLES:
            self.samples.append(err_s)
        else:
            k = self._rng.randrange(self.n)
            if k < _SAMPLES:
                self.samples[k] = err_s

    def summary(self) -> dict[str, float]:
        if not self.n:
            return {}
        s = sorted(self.samples)
        return {"mean": round(self.total / self.n * 1e6, 1),
                "p50": round(s[len(s) // 2] * 1e6, 1),
                "p99": round(s[min(len(s) - 1, len(s) * 99 // 100)] * 1e6, 1),
                "max": round(self.max * 1e6, 1), "samples": float(self.n)}


class _Senders:
    """One socket per IP version, made on first use; the IPv4 one may broadcast (the
    limited broadcast leaves through the chosen interface only)."""

    def __init__(self, interface: Interface | None, ttl: int) -> None:
        self.interface = interface
        self.ttl = ttl
        self.socks: dict[int, MulticastSocket] = {}

    def get(self, version: int) -> MulticastSocket:
        s = self.socks.get(version)
        if s is None:
            s = self.socks[version] = MulticastSocket(version, interface=self.interface,
                                                      ttl=self.ttl, loopback=True,
                                                      broadcast=version == 4)
        return s

    def close(self) -> None:
        for s in self.socks.values():
            s.close()


def replay(path: str, *, interface: str | int | Interface | None = None,
           speed: float = 1.0, rate: float | None = None, as_fast: bool = False,
           loops: int = 1, mapping: Mapping[tuple[str, int], tuple[str, int]]
           | Mapping[str, str] | None = None,
           ttl: int = 1, outgoing: bool = True, stop: threading.Event | None = None,
           progress: Callable[[ReplayReport], None] | None = None,
           progress_every_s: float = 1.0,
           sleep: Callable[[float], object] | None = None) -> ReplayReport:
    """Send the multicast and broadcast datagrams of capture ``path`` again.

    Args:
        path: a pcap or pcapng file (tcpdump's, Wireshark's, ``mcastkit record``'s).
        interface: the outgoing interface (name, index or address); recommended, and
            needed for limited broadcasts (255.255.255.255), which are skipped and
            counted as ``broadcast_without_interface`` without it.
        speed: multiple of the recorded timing (2.0: twice as fast).
        rate: a fixed rate in datagrams per second instead of the recorded timing.
        as_fast: no pacing: batches through ``send_batch``.
        loops: how many times to send the capture (0: until ``stop``).
        mapping: {(group, port): (group, port)} from :func:`parse_mapping`, or
            ``{"GROUP:PORT": "GROUP:PORT"}``.
        ttl: TTL / hop limit of the sent datagrams (default 1: stays on the link).
        outgoing: also replay Linux cooked-capture copies marked "sent by this host".
        stop: set it to end the replay cleanly.
        progress: called with the report about every ``progress_every_s`` seconds.
        progress_every_s: seconds between ``progress`` calls.
        sleep: how to wait for a datagram's time (default: waiting on ``stop``, so setting
            it ends a long pause at once). Paced modes run it, like the whole replay,
            with the calling thread's timer slack at 1 µs (Linux; put back afterwards,
            also on an error or Ctrl-C), so a timed wait ends close to its deadline.

    Returns:
        The :class:`ReplayReport`.

    Raises:
        McastValueError: a bad argument, or the file is not a capture.
        OSError: the file cannot be read.
        McastError: sending failed.
    """
    if not speed > 0 or (rate is not None and not rate > 0) or loops < 0:
        raise McastValueError("speed and rate must be more than 0 and loops 0 or more "
                              f"(got speed={speed}, rate={rate}, loops={loops})")
    iface = resolve_interface(interface) if interface is not None else None
    rep = ReplayReport(mode="max" if as_fast else (f"rate {rate:g}/s" if rate else
                                                   f"recorded x{speed:g}"))
    stopped = stop if stop is not None else threading.Event()
    run = _Run(rep, _Senders(iface, ttl), _mapping(mapping), stopped,
               sleep if sleep is not None else stopped.wait, progress, progress_every_s)
    cached: list[list[Row]] | None = None
    small = os.path.getsize(path) <= CACHE_BYTES
    try:
        with nullcontext() if as_fast else timer_slack():  # 1 µs timer slack while pacing
            while (loops == 0 or rep.loops < loops) and not stopped.is_set():
                if cached is not None:
                    chunks: Iterator[list[Row]] = iter(cached)
                else:
                    rep.decode = DecodeStats()
                    chunks = rows(path, rep.decode, outgoing=outgoing)
                    if small:
                        cached = list(chunks)
                        chunks = iter(cached)
                in_loop = run.fast(chunks) if as_fast else run.paced(chunks, speed, rate)
                rep.loops += 1
                if in_loop == 0:
                    break  # nothing to send: one pass says so, more would spin
    finally:
        run.senders.close()
    rep.elapsed_s = time.monotonic() - run.t0
    rep.timing_us = run.timing.summary()
    return rep


_UNSET: Final = (0, "", 0)


class _Run:
    """One replay's state: where datagrams go, the schedule, the counters."""

    def __init__(self, rep: ReplayReport, senders: _Senders,
                 maps: dict[tuple[str, int], tuple[str, int]], stopped: threading.Event,
                 pause: Callable[[float], object],
                 progress: Callable[[ReplayReport], None] | None, every_s: float) -> None:
        self.rep, self.senders, self.maps = rep, senders, maps
        self.stopped, self.pause = stopped, pause
        self.progress, self.every_s = progress, every_s
        self.timing = _Timing()
        self.t0 = self.base = time.monotonic()  # base: schedule origin of the current loop
        self.next_progress = self.t0 + every_s
        self.index = 0  # datagrams scheduled so far (for --rate)
        self._dests: dict[tuple[str, int], tuple[int, str, int] | None] = {}

    def dest(self, group: str, port: int, version: int) -> tuple[int, str, int] | None:
        """(IP version, address, port) to send to: the group or broadcast address of the
        datagram (the decoder yields nothing else) or what ``--map`` says; None for a
        limited broadcast without an interface (skipped: pass ``interface=``)."""
        key = (group, port)
        if key in self._dests:
            return self._dests[key]
        to_group, to_port = self.maps.get(key, key)
        d: tuple[int, str, int] | None = (
            version if to_group == group else 6 if ":" in to_group else 4, to_group, to_port)
        if to_group == "255.255.255.255" and self.senders.interface is None:
            d = None
        self._dests[key] = d
        return d

    def tick(self) -> None:
        """Report progress when it is due."""
        if self.progress is not None:
            now = time.monotonic()
            if now >= self.next_progress:
                self.next_progress = now + self.every_s
                self.rep.elapsed_s = now - self.t0
                self.progress(self.rep)

    def fast(self, chunks: Iterator[list[Row]]) -> int:
        """Send as fast as ``send_batch`` allows: runs of datagrams to one destination
        go in one call (UDP GSO for equal sizes, sendmmsg otherwise).

        Returns:
            How many datagrams this pass took (sent or skipped).
        """
        rep, stopped, dest = self.rep, self.stopped, self.dest
        pending: list[bytes] = []
        append = pending.append
        to: tuple[int, str, int] | None = None  # where pending goes
        d: tuple[int, str, int] | None = _UNSET
        last_group, last_port = "", -1
        taken = skipped = 0
        for chunk in chunks:
            if stopped.is_set():
                break
            self.tick()
            taken += len(chunk)
            for row in chunk:
                group, port = row[3], row[4]
                if port != last_port or group != last_group:
                    last_group, last_port = group, port
                    d = dest(group, port, row[7])
                    if d is not None and d != to:
                        self._flush(to, pending)
                        to = d
                if d is None:
                    skipped += 1
                    continue
                append(row[5])
                if len(pending) >= BATCH:
                    self._flush(to, pending)
                    if stopped.is_set():
                        break
                    self.tick()
        self._flush(to, pending)
        if skipped:
            rep.skipped["broadcast_without_interface"] += skipped
        self.index += taken
        return taken

    def paced(self, chunks: Iterator[list[Row]], speed: float, rate: float | None) -> int:
        """Send at the recorded timing times ``speed``, or at ``rate`` a second, against
        an absolute schedule; the next pass starts one mean interval after this one's
        last datagram.

        Returns:
            How many datagrams this pass took (sent or skipped).
        """
        rep, stopped, timing = self.rep, self.stopped, self.timing
        first_ts: int | None = None
        last_due = self.base
        in_loop = 0
        for chunk in chunks:
            for row in chunk:
                if stopped.is_set():
                    break
                d = self.dest(row[3], row[4], row[7])
                if d is None:
                    rep.skipped["broadcast_without_interface"] += 1
                else:
                    sock = self.senders.get(d[0])
                    if self.index == 0:  # the schedule starts when the first can go
                        self.t0 = self.base = time.monotonic()
                    if rate is not None:
                        due = self.t0 + self.index / rate
                    else:
                        ts = row[0]
                        if first_ts is None:
                            first_ts = ts or 0
                        due = self.base + ((ts or first_ts) - first_ts) / 1e9 / speed
                    last_due = due
                    delay = due - time.monotonic()
                    if delay > 0:
                        self.pause(delay)
                        if stopped.is_set():
                            break
                    payload = row[5]
                    sock.sendto(payload, d[1], d[2])
                    timing.add(max(0.0, time.monotonic() - due))
                    rep.sent += 1
                    rep.bytes += len(payload)
                self.index += 1
                in_loop += 1
                if self.index % 256 == 0:
                    self.tick()
            else:
                continue
            break
        if in_loop:
            gap = (last_due - self.base) / max(in_loop - 1, 1)
            self.base = max(last_due + gap, time.monotonic())
        return in_loop

    def _flush(self, to: tuple[int, str, int] | None, pending: list[bytes]) -> None:
        if to is None or not pending:
            pending.clear()
            return
        n = self.senders.get(to[0]).send_batch(pending, to[1], to[2])
        self.rep.sent += n
        self.rep.bytes += sum(map(len, pending[:n])) if n < len(pending) else \
            sum(map(len, pending))
        pending.clear()
