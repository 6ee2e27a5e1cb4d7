"""Send shapes that the plain ``send`` rows do not cover: ``send_batch`` called with one
payload per call (code that batches whatever it has, often one datagram) against a
``sendto`` loop, and ``sendto`` alternating between two destinations against a raw
``socket.sendto`` loop doing the same."""

from __future__ import annotations

import mcastkit

from ._util import GROUP, Options, Result, Row, measure, port, timed

GROUP2 = "239.255.77.2"


def _send(kind: str, count: int, size: int) -> float:
    p = port()
    payload = b"s" * size
    with mcastkit.MulticastSocket(4, interface="lo") as tx:
        s = tx.sock
        if kind == "sendto loop":
            def go() -> int:
                st = s.sendto
                dest = (GROUP, p)
                for _ in range(count):
                    st(payload, dest)
                return count
        elif kind == "send_batch([one])":
            def go() -> int:
                sb = tx.send_batch
                one = [payload]
                for _ in range(count):
                    sb(one, GROUP, p)
                return count
        elif kind == "raw sendto, 2 destinations":
            def go() -> int:
                st = s.sendto
                a, b = (GROUP, p), (GROUP2, p)
                for _ in range(count // 2):
                    st(payload, a)
                    st(payload, b)
                return count // 2 * 2
        else:  # mcastkit sendto, 2 destinations
            def go() -> int:
                st = tx.sendto
                for _ in range(count // 2):
                    st(payload, GROUP, p)
                    st(payload, GROUP2, p)
                return count // 2 * 2
        return timed(go)


def rows(count: int) -> list[Row]:
    alt = "raw sendto, 2 destinations"
    return [
        ("sendto loop", "sendto loop", lambda s: _send("sendto loop", count, s)),
        ("send_batch([one])", "sendto loop", lambda s: _send("send_batch([one])", count, s)),
        (alt, alt, lambda s: _send(alt, count, s)),
        ("mcastkit sendto, 2 destinations", alt,
         lambda s: _send("mcastkit sendto, 2 destinations", count, s)),
    ]


def run(o: Options) -> list[Result]:
    return measure("send-shapes", o.sizes, lambda _s: rows(o.count * 2), o.runs)
