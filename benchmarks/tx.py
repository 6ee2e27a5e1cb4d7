"""Send scenarios: a plain sendto loop, mcastkit sendto, send_batch paths, C sendmmsg."""

from __future__ import annotations

import subprocess

import mcastkit

from ._util import GROUP, Result, Row, build_c, measure, port, timed


def _py(kind: str, count: int, size: int) -> float:
    p = port()
    payload = b"s" * size
    with mcastkit.MulticastSocket(4, interface="lo") as tx:
        if kind == "sendto loop":
            s = tx.sock
            dest = (GROUP, p)

            def go() -> int:
                st = s.sendto
                for _ in range(count):
                    st(payload, dest)
                return count
        elif kind == "mcastkit sendto":
            def go() -> int:
                st = tx.sendto
                for _ in range(count):
                    st(payload, GROUP, p)
                return count
        else:
            method = kind.split("(")[1].rstrip(")")
            batch = [payload] * 64

            def go() -> int:
                sb = tx.send_batch
                n = 0
                while n < count:
                    n += sb(batch, GROUP, p, method=method)
                return n
        return timed(go)


def _c(count: int, size: int) -> float:
    exe = build_c("sendmmsg_tx")
    if exe is None:
        raise RuntimeError("gcc not available")
    out = subprocess.run([str(exe), GROUP, str(port()), str(size), str(count)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    n, secs = out.split()
    return int(n) / float(secs)


def scenarios(count: int) -> list[Row]:
    return [
        ("sendto loop", "sendto loop", lambda s: _py("sendto loop", count, s)),
        ("C sendmmsg", "sendto loop", lambda s: _c(count, s)),
        ("mcastkit sendto", "sendto loop", lambda s: _py("mcastkit sendto", count, s)),
        ("send_batch(mmsg)", "C sendmmsg", lambda s: _py("send_batch(mmsg)", count, s)),
        ("send_batch(gso)", "C sendmmsg", lambda s: _py("send_batch(gso)", count, s)),
        ("send_batch(auto)", "C sendmmsg", lambda s: _py("send_batch(auto)", count, s)),
        ("send_batch(loop)", "sendto loop", lambda s: _py("send_batch(loop)", count, s)),
    ]


def run(count: int, sizes: list[int], repeats: int) -> list[Result]:
    return measure("send", sizes, lambda _s: scenarios(count), repeats)
