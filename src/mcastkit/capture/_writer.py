"""A writer thread for recordings: the receiving thread only receives and queues batches.

Writing costs CPU time and may wait for the disk, so a recording that writes in the
receiving thread can fall behind a fast stream (or a slow disk) and the kernel drops
datagrams. With a writer thread the receiving thread hands each batch over and goes back
to the socket; the writer takes the queue every few milliseconds (not at every batch, so
the two threads do not trade the interpreter lock after each read); the queue (bounded in
bytes) absorbs bursts and disk stalls, and the writer catches up after them. When the
queue is full a batch is not queued: it is counted, and the next datagram written carries
the count (``epb_dropcount``, a comment, ``isb_ifdrop``), so nothing is lost silently.

Owns: :class:`BatchWriter`. Must not: receive, build frames or touch files itself (the
``write`` callable it is given does).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from .._packet import Datagram

__all__ = ["DEFAULT_QUEUE_BYTES", "BatchWriter"]

DEFAULT_QUEUE_BYTES = 64_000_000
"""The write queue of ``mcastkit record`` (bytes) unless ``--queue-mb`` says otherwise."""
S = TypeVar("S")
OVERHEAD = 256  # bytes a queued datagram costs besides its payload (object, metadata)
#: the writer takes what is queued every WAKE_S seconds, or at once when WAKE_BYTES are
#: queued: a few long turns of the interpreter lock instead of one per received batch,
#: which would keep the receiving thread waiting for the lock after each read
WAKE_S = 0.005
WAKE_BYTES = 1 << 20


class BatchWriter(Generic[S]):
    """Queue ``(source, batch)`` pairs for ``write(source, batch, queue_dropped)`` on a
    thread of its own.

    Args:
        write: called on the writer thread with each batch and how many datagrams the
            full queue dropped just before it.
        limit_bytes: the most the queue may hold (payloads plus ``OVERHEAD`` each).
    """

    def __init__(self, write: Callable[[S, Sequence[Datagram], int], None],
                 limit_bytes: int) -> None:
        self._write = write
        self.limit = limit_bytes
        self._q: deque[tuple[S, Sequence[Datagram], int, int]] = deque()
        self._cv = threading.Condition()
        self.queued_bytes = 0
        self.peak_bytes = 0
        self.dropped = 0  # datagrams not queued: the queue was full
        self._pending = 0  # of those, not yet reported with a written datagram
        self.error: BaseException | None = None
        self._closing = False
        self._t = threading.Thread(target=self._run, name="mcastkit-record-writer",
                                   daemon=True)
        self._t.start()

    def put(self, source: S, batch: Sequence[Datagram]) -> None:
        """Queue a batch (or count it as dropped when the queue is full).

        Raises:
            BaseException: what the writer raised (the recording cannot go on).
        """
        size = sum([len(d.data) for d in batch]) + OVERHEAD * len(batch)
        with self._cv:
            if self.error is not None:
                raise self.error
            if self.queued_bytes + size > self.limit and self._q:
                self.dropped += len(batch)
                self._pending += len(batch)
                return
            self._q.append((source, batch, self._pending, size))
            self._pending = 0
            self.queued_bytes += size
            self.peak_bytes = max(self.peak_bytes, self.queued_bytes)
            if self.queued_bytes >= WAKE_BYTES:
                self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closing and (not self._q or self.queued_bytes < WAKE_BYTES):
                    if not self._cv.wait(WAKE_S) and self._q:
                        break  # the period is over: write what came
                if not self._q:
                    return
                items = list(self._q)
                self._q.clear()
            for source, batch, dropped, size in items:
                try:
                    self._write(source, batch, dropped)
                except BaseException as exc:
                    with self._cv:
                        self.error = exc
                        self._q.clear()
                        self.queued_bytes = 0
                    return
                with self._cv:
                    self.queued_bytes -= size

    def close(self) -> None:
        """Write everything queued, then stop the thread.

        Raises:
            BaseException: what the writer raised.
        """
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._t.join()
        if self.error is not None:
            raise self.error
