"""Opening a socket: ``open_receiver(group, interface="lo")`` + ``close()`` per operation
against a plain socket doing the same (socket, SO_REUSEPORT, IP_MULTICAST_ALL off, bind,
IP_ADD_MEMBERSHIP on lo, close), with only ``lo`` and with 257 interfaces: 128 veth pairs
with lab addresses are added inside the bench namespace for that row (never outside one:
the row is n/a there) and removed afterwards."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import mcastkit

from ._util import GROUP, Options, Result, Row, in_private_netns, measure, now, plain_receiver, port

AXIS = [1, 257]  # interfaces in the namespace
MIN_SECONDS = 0.5


def _rate(op: Callable[[], None]) -> float:
    """Operations per second of ``op()`` over at least MIN_SECONDS (and 5 operations)."""
    n = 0
    t = now()
    while True:
        op()
        n += 1
        el = now() - t
        if el >= MIN_SECONDS and n >= 5:
            return n / el


@contextmanager
def interfaces(total: int) -> Iterator[None]:
    """Have ``total`` interfaces (lo + veth pairs with 198.19.x.y addresses) for the block."""
    pairs = (total - 1) // 2
    if pairs <= 0:
        yield
        return
    if not in_private_netns():
        raise RuntimeError("adding interfaces needs the bench namespace (use make bench)")
    cmds = []
    for i in range(pairs):
        cmds += [f"link add mkb{i}a type veth peer name mkb{i}b",
                 f"addr add 198.19.{i}.1/24 dev mkb{i}a",
                 f"addr add 198.19.{i}.2/24 dev mkb{i}b",
                 f"link set mkb{i}a up", f"link set mkb{i}b up"]
    subprocess.run(["ip", "-batch", "-"], input="\n".join(cmds), text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "-batch", "-"], text=True, check=False,
                       input="\n".join(f"link del mkb{i}a" for i in range(pairs)))


def _open(kind: str, n_if: int) -> float:
    p = port()
    with interfaces(n_if):
        if kind == "plain socket":
            def op() -> None:
                plain_receiver(p, big=False).close()
        else:
            ep = f"{GROUP}:{p}"

            def op() -> None:
                mcastkit.open_receiver(ep, interface="lo", reuse_port=True).close()
        return _rate(op)


def rows() -> list[Row]:
    base = "plain socket"
    return [(base, base, lambda n: _open(base, n)),
            ("mcastkit open_receiver", base, lambda n: _open("mcastkit", n))]


def run(o: Options) -> list[Result]:
    return measure("open", AXIS, lambda _n: rows(), o.runs, unit="opens/s")
