"""``mcastkit send``: send datagrams to a group.

Owns: the send verb: a message from the arguments, one datagram per stdin line, or
synthetic sequenced payloads (``--size``), paced by ``--rate`` on an absolute schedule.
Must not: make socket calls outside the public core.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass

from mcastkit import MulticastSocket, open_sender

from .. import _seq
from .._common import (
    CliError,
    Pacer,
    count_arg,
    emit_json,
    endpoint_arg,
    interface_of,
    positive_int,
    rate_arg,
)
from .._env import Env
from .._status import ExitStatus

HELP = "send datagrams to a group"
DESCRIPTION = """\
Send datagrams to GROUP:PORT: the MESSAGE given (-c times), one datagram per line read
from standard input, or --size N synthetic payloads that carry mcastkit sequence numbers
(read them with 'mcastkit listen --stats'). The TTL defaults to 1 (stays on the link)."""
EXAMPLES = """\
  mcastkit send 239.255.0.1:5000 -i lo "hello"
  printf 'a\\nb\\nc\\n' | mcastkit send 239.255.0.1:5000 -i eth0
  mcastkit send 239.255.0.1:5000 -i eth0 --size 1200 -c 10000 --rate 5k
  mcastkit send [ff15::1]:5000 -i eth0 --ttl 4 --no-loop "to the site"
  mcastkit send 239.255.0.1:5000 -i 198.18.1.10 --json "hi\"
  mcastkit send 255.255.255.255:5000 -i eth0 "to everyone on eth0"  # IPv4 broadcast"""


@dataclass(frozen=True)
class _Broadcast:
    """An IPv4 broadcast destination (limited or a subnet's), sent with broadcast=True."""

    group: str
    port: int
    source: None = None

    def __str__(self) -> str:
        return f"{self.group}:{self.port}"


def _destination_arg(text: str) -> object:
    """GROUP:PORT, or an IPv4 broadcast HOST:PORT (the core refuses a unicast one)."""
    try:
        return endpoint_arg(text)
    except argparse.ArgumentTypeError as exc:
        host, _, port = text.strip().rpartition(":")
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            raise exc from None
        if ip.is_multicast or not (port.isascii() and port.isdigit() and len(port) <= 5
                                   and 0 < int(port) < 65536):
            raise
        return _Broadcast(str(ip), int(port))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint", type=_destination_arg, metavar="GROUP:PORT",
                   help="destination, e.g. 239.255.0.1:5000 or [ff15::1]:5000, or an "
                        "IPv4 broadcast address such as 255.255.255.255:5000 (needs -i)")
    p.add_argument("message", nargs="*", metavar="MESSAGE",
                   help="text to send (words are joined by spaces); default: stdin lines")
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="outgoing interface (name, index or address); strongly recommended")
    p.add_argument("-c", "--count", type=count_arg, metavar="N",
                   help="how many datagrams (MESSAGE or --size; default 1, 0 = until Ctrl-C)")
    p.add_argument("--size", type=positive_int, metavar="BYTES",
                   help="send synthetic payloads of BYTES (>= 32) with sequence numbers")
    p.add_argument("--rate", type=rate_arg, default=0.0, metavar="PPS",
                   help="datagrams per second (1000, 10k, 1M; default 0 = unpaced)")
    p.add_argument("--broadcast", action="store_true",
                   help="allow broadcasts (SO_BROADCAST; implied by a broadcast address)")
    p.add_argument("--ttl", type=int, default=1, metavar="N",
                   help="multicast TTL / hop limit 0-255 (default 1)")
    p.add_argument("--loop", dest="loop", action="store_true", default=True,
                   help="deliver to listeners on this host too (default)")
    p.add_argument("--no-loop", dest="loop", action="store_false",
                   help="do not deliver to listeners on this host")


def _payloads(args: argparse.Namespace, env: Env, stream_id: int) -> Iterator[bytes]:
    if args.size is not None:
        if args.message:
            raise CliError("give either a MESSAGE or --size, not both", ExitStatus.USAGE)
        if args.size < _seq.HEADER_SIZE:
            raise CliError(f"--size {args.size}: sequenced payloads need at least "
                           f"{_seq.HEADER_SIZE} bytes", ExitStatus.USAGE)
        count = 1 if args.count is None else args.count
        seq = 0
        while count == 0 or seq < count:
            yield _seq.pack(stream_id, seq, env.time_ns(), args.size)
            seq += 1
        return
    if args.message:
        data = " ".join(args.message).encode()
        count = 1 if args.count is None else args.count
        n = 0
        while count == 0 or n < count:
            yield data
            n += 1
        return
    if env.stdin_isatty:
        raise CliError("nothing to send: give a MESSAGE, pipe lines on stdin, or use --size N",
                       ExitStatus.USAGE)
    if args.count is not None:
        raise CliError("-c/--count applies to a MESSAGE or --size; stdin sends one datagram "
                       "per line", ExitStatus.USAGE)
    for line in env.stdin:
        yield line.rstrip("\n").encode()


def _send_unpaced_batches(sock: MulticastSocket, it: Iterator[bytes], host: str, port: int,
                          batch_fn: object) -> tuple[int, int]:
    sent = nbytes = 0
    chunk: list[bytes] = []
    fn = batch_fn
    assert callable(fn)

    def flush() -> None:
        nonlocal sent, nbytes
        done = 0
        while done < len(chunk):
            n = int(fn(chunk[done:], host, port))
            if n <= 0:
                raise CliError("send_batch sent nothing; the socket buffer is full")
            nbytes += sum(len(c) for c in chunk[done:done + n])
            done += n
        sent += done
        chunk.clear()

    for data in it:
        chunk.append(data)
        if len(chunk) >= 64:
            flush()
    if chunk:
        flush()
    return sent, nbytes


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    ep = args.endpoint
    if ep.source is not None:
        raise CliError(f"{ep}: a SOURCE, prefix is for receivers (SSM joins); send to "
                       f"{ep.group}:{ep.port} from the source host instead", ExitStatus.USAGE)
    if not 0 <= args.ttl <= 255:
        raise CliError(f"--ttl {args.ttl}: use 0-255 (1 stays on the link)", ExitStatus.USAGE)
    iface = interface_of(args.interface)
    stream_id = random.getrandbits(32)
    it = _payloads(args, env, stream_id)
    bcast = isinstance(ep, _Broadcast)
    sock = open_sender(str(ep) if bcast else ep, interface=iface, ttl=args.ttl,
                       loopback=args.loop, broadcast=bcast or args.broadcast)
    sent = nbytes = 0
    status = ExitStatus.OK
    start = env.monotonic()
    try:
        batch_fn = getattr(sock, "send_batch", None)
        if batch_fn is not None and args.rate == 0 and args.size is not None:
            sent, nbytes = _send_unpaced_batches(sock, it, str(ep.group), ep.port, batch_fn)
        else:
            pacer = Pacer(args.rate, env)
            for data in it:
                pacer.wait()
                sock.send(data)
                sent += 1
                nbytes += len(data)
    except KeyboardInterrupt:
        status = ExitStatus.CTRL_C
    finally:
        sock.close()
    elapsed = env.monotonic() - start
    if args.json:
        emit_json(env, {"type": "summary", "group": str(ep.group), "port": ep.port,
                        "interface": iface.name if iface else None, "sent": sent,
                        "bytes": nbytes, "elapsed_s": round(elapsed, 3),
                        "stream": f"{stream_id:08x}" if args.size else None})
    elif args.size is not None or sent != 1:
        env.err(f"sent {sent} datagrams ({nbytes} B) to {ep} in {elapsed:.2f} s")
    return status
