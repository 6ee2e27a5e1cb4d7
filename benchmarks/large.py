"""Large datagrams: bytes/s of one long-lived receiver at 64, 1400, 8000 and 65000 B
against a plain ``recvfrom`` loop on the same kind of socket, with minor page faults per
datagram as a side figure (a receiver that allocates and frees big buffers per batch shows
up there). The queue is filled, then drained and timed, several rounds per receiver, so
the receiver's buffers live across rounds like in a real application."""

from __future__ import annotations

from ._util import Options, Result, Row, fill, measure, minflt, now, port, receiver

SIZES = [64, 1400, 8000, 65000]
ROUND_BYTES = 64 << 20  # payload queued per round (well inside the 512 MiB queue)
RUN_BYTES = 512 << 20  # payload per measured run


def _drain(kind: str, count: int, size: int) -> tuple[float, dict[str, float]]:
    total = max(1, min(count, RUN_BYTES // size))
    per_round = max(1, min(total, ROUND_BYTES // size))
    p = port()
    rx = receiver(p, metadata=kind.endswith("+meta"))
    try:
        rx.setblocking(False)
        s = rx.sock
        got = 0
        secs = 0.0
        faults = 0
        if kind == "recvfrom loop":  # the plain loop reads the kernel socket itself
            s.setblocking(False)
        while got < total:
            fill(p, min(per_round, total - got), size)
            f0 = minflt()
            t = now()
            n = 0
            try:
                if kind == "recvfrom loop":
                    rf = s.recvfrom
                    while True:
                        rf(65535)
                        n += 1
                elif kind == "mcastkit recv()":
                    r = rx.recv
                    while True:
                        r()
                        n += 1
                else:
                    rb = rx.recv_batch
                    while True:
                        n += len(rb(256))
            except BlockingIOError:
                pass
            secs += now() - t
            faults += minflt() - f0
            if n == 0:
                raise RuntimeError("nothing queued (fill failed?)")
            got += n
        return got * size / secs, {"faults/dgram": faults / got}
    finally:
        rx.close()


def rows(count: int) -> list[Row]:
    base = "recvfrom loop"
    return [(k, base, lambda s, k=k: _drain(k, count, s))  # type: ignore[misc]
            for k in (base, "mcastkit recv()", "mcastkit recv_batch(256)",
                      "mcastkit recv_batch(256)+meta")]


def run(o: Options) -> list[Result]:
    return measure("large", SIZES, lambda _s: rows(o.count), o.runs, unit="B/s")
