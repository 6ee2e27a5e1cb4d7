"""``mcastkit send``: send datagrams to a group.

Owns: the send verb: payloads from MESSAGE words, ``--hex``, ``--file``, standard input
(binary safe, framed by ``--split``) or synthetic sequenced payloads (``--size``), paced
by ``--rate`` on an absolute schedule, from a chosen ``--source`` address; and a count of
what was sent that survives Ctrl-C and SIGTERM.
Must not: make socket calls outside the public core.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass

from mcastkit import (
    Endpoint,
    Interface,
    McastOSError,
    MulticastSocket,
    list_interfaces,
    open_sender,
)

from ... import seq as _seq
from .. import _sendinput as inp
from .._common import (
    CliError,
    Pacer,
    count_arg,
    emit_json,
    endpoint_arg,
    interface_of,
    interrupt_status,
    rate_arg,
    size_arg,
)
from .._env import Env
from .._format import secs
from .._signals import signals_held
from .._status import ExitStatus

HELP = "send datagrams to a group"
DESCRIPTION = """\
Send datagrams to GROUP:PORT: the MESSAGE given, the bytes of --hex or --file (each -c
times), the records read from standard input (--split line: one per line, the default;
null: NUL-terminated; none: all of stdin as one datagram; binary safe, empty records
skipped unless --keep-empty), or --size N synthetic payloads that carry mcastkit sequence
numbers (read them with 'mcastkit listen --stats'). The TTL defaults to 1 (stays on the
link). --source picks the source address (for SSM receivers)."""
EXAMPLES = """\
  mcastkit send 239.255.0.1:5000 -i lo "hello"
  printf 'a\\nb\\nc\\n' | mcastkit send 239.255.0.1:5000 -i lo
  mcastkit send 239.255.0.1:5000 -i lo --hex 'de ad be ef 00 ff'
  mcastkit send 239.255.0.1:5000 -i lo --file packet.bin -c 3
  head -c 1000 /dev/urandom | mcastkit send 239.255.0.1:5000 -i lo --split none
  mcastkit send 239.255.0.1:5000 -i lo --size 1200 -c 10000 --rate 5k
  mcastkit send 232.1.1.1:5000 -i eth0 --source 198.18.1.10 "for an SSM receiver"
  mcastkit send [ff15::1]:5000 -i eth0 --ttl 4 --no-loop "to the site\"
  mcastkit send 255.255.255.255:5000 -i eth0 "to everyone on eth0"  # IPv4 broadcast"""


@dataclass(frozen=True)
class _Broadcast:
    """An IPv4 broadcast destination (limited or a subnet's), sent with broadcast=True."""

    group: ipaddress.IPv4Address
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
        return _Broadcast(ip, int(port))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint", type=_destination_arg, metavar="GROUP:PORT",
                   help="destination, e.g. 239.255.0.1:5000 or [ff15::1]:5000, or an "
                        "IPv4 broadcast address such as 255.255.255.255:5000 (needs -i)")
    p.add_argument("message", nargs="*", metavar="MESSAGE",
                   help="text to send (words are joined by spaces); default: stdin")
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="outgoing interface (name, index or address); strongly recommended")
    p.add_argument("--source", metavar="ADDRESS",
                   help="source address of the datagrams (an address of this host; sets "
                        "-i to its interface when -i is not given)")
    what = p.add_argument_group("payload (one of MESSAGE, --hex, --file, --size, stdin)")
    what.add_argument("--hex", metavar="HEX",
                      help="send these bytes, in hex ('de ad be ef', 'dead:beef')")
    what.add_argument("--file", metavar="PATH",
                      help="send the bytes of PATH as one datagram")
    what.add_argument("--size", type=size_arg, metavar="BYTES",
                      help="send synthetic payloads of BYTES (>= 32; 1200, 8K) with "
                           "sequence numbers")
    what.add_argument("--split", choices=("line", "null", "none"), default="line",
                      help="how stdin is cut into datagrams: line (LF or CRLF, default), "
                           "null (NUL-terminated records), none (all of stdin is one)")
    what.add_argument("--keep-empty", action="store_true",
                      help="send empty records of stdin as empty datagrams (default: skip)")
    p.add_argument("-c", "--count", type=count_arg, metavar="N",
                   help="how many datagrams (MESSAGE, --hex, --file or --size; default 1, "
                        "0 = until Ctrl-C)")
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


def _repeat(data: bytes, count: int | None) -> Iterator[bytes]:
    n, limit = 0, 1 if count is None else count
    while limit == 0 or n < limit:
        yield data
        n += 1


def _payloads(args: argparse.Namespace, env: Env, stream_id: int, version: int
              ) -> Iterator[bytes]:
    given = [name for name, on in (("MESSAGE", bool(args.message)),
                                   ("--hex", args.hex is not None),
                                   ("--file", args.file is not None),
                                   ("--size", args.size is not None)) if on]
    if len(given) > 1:
        raise CliError(f"give one payload, not {' and '.join(given)}", ExitStatus.USAGE)
    if args.size is not None:
        if args.size < _seq.HEADER_SIZE:
            raise CliError(f"--size {args.size}: sequenced payloads need at least "
                           f"{_seq.HEADER_SIZE} bytes", ExitStatus.USAGE)
        inp.check_size(args.size, version, f"--size {args.size}")
        return _sequenced(args, env, stream_id)
    fixed = (inp.words(args.message) if args.message else
             inp.from_hex(args.hex) if args.hex is not None else
             inp.read_file(args.file) if args.file is not None else None)
    if fixed is not None:
        inp.check_size(len(fixed), version, given[0])
        return _repeat(fixed, args.count)
    if env.stdin_isatty:
        raise CliError("nothing to send: give a MESSAGE, --hex, --file, --size N, or pipe "
                       "data on stdin", ExitStatus.USAGE)
    if args.count is not None:
        raise CliError("-c/--count applies to a MESSAGE, --hex, --file or --size; stdin sends "
                       "one datagram per record (see --split)", ExitStatus.USAGE)
    return _checked(inp.split_stream(env.stdin_bytes(), args.split, args.keep_empty), version)


def _sequenced(args: argparse.Namespace, env: Env, stream_id: int) -> Iterator[bytes]:
    count = 1 if args.count is None else args.count
    seq = 0
    while count == 0 or seq < count:
        yield _seq.pack(stream_id, seq, env.time_ns(), args.size)
        seq += 1


def _checked(records: Iterator[bytes], version: int) -> Iterator[bytes]:
    for i, r in enumerate(records, 1):
        inp.check_size(len(r), version, f"stdin record {i}")
        yield r


@dataclass
class Tally:
    """What has left so far; updated as it goes, so an interruption reports it."""

    sent: int = 0
    bytes: int = 0


def _send_unpaced_batches(sock: MulticastSocket, it: Iterator[bytes], host: str, port: int,
                          tally: Tally) -> None:
    chunk: list[bytes] = []

    def flush() -> None:
        done = 0
        while done < len(chunk):
            with signals_held():  # a Ctrl-C between the send and the count lost the batch
                n = int(sock.send_batch(chunk[done:], host, port))
                if n > 0:
                    tally.bytes += sum(len(c) for c in chunk[done:done + n])
                    tally.sent += n
            if n <= 0:
                raise CliError("send_batch sent nothing; the socket buffer is full")
            done += n
        chunk.clear()

    for data in it:
        chunk.append(data)
        if len(chunk) >= 64:
            flush()
    if chunk:
        flush()


def _source_interface(source: str, version: int) -> Interface:
    """The interface holding ``source`` (a usage error when no interface has it)."""
    try:
        want = ipaddress.ip_address(source.split("%")[0])
    except ValueError:
        raise CliError(f"--source {source!r} is not an IP address", ExitStatus.USAGE) from None
    for itf in list_interfaces():
        if any(ipaddress.ip_address(str(a).split("%")[0]) == want for a in itf.addresses
               ) and want.version == version:
            return itf
    raise CliError(f"--source {source}: not an IPv{version} address of this host (see "
                   "'mcastkit interfaces'); the kernel sends only from local addresses",
                   ExitStatus.USAGE)


def _ipv6_needs_interface(ep: Endpoint, iface: Interface | None, exc: McastOSError) -> None:
    """IPv6 without -i: the kernel's EINVAL / EADDRNOTAVAIL / ENETUNREACH mean "which
    interface?"; say so with the CLI's option (a usage error, exit 2)."""
    if ep.group.version == 6 and iface is None and exc.errno in (
            errno.EADDRNOTAVAIL, errno.ENETUNREACH, errno.ENODEV, errno.EINVAL):
        raise CliError(f"sending to [{ep.group}]:{ep.port}: IPv6 multicast needs the "
                       "outgoing interface; give -i IFACE (see 'mcastkit interfaces')",
                       ExitStatus.USAGE) from None


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    ep = args.endpoint
    if ep.source is not None:
        raise CliError(f"{ep}: a SOURCE, prefix is for receivers (SSM joins); send with "
                       f"--source {ep.source} instead", ExitStatus.USAGE)
    if not 0 <= args.ttl <= 255:
        raise CliError(f"--ttl {args.ttl}: use 0-255 (1 stays on the link)", ExitStatus.USAGE)
    iface = interface_of(args.interface)
    if args.source is not None:
        owner = _source_interface(args.source, ep.group.version)
        iface = iface or owner
    stream_id = random.getrandbits(32)
    it = _payloads(args, env, stream_id, ep.group.version)
    bcast = isinstance(ep, _Broadcast)
    try:
        sock = open_sender(str(ep) if bcast else ep, interface=iface, ttl=args.ttl,
                           loopback=args.loop, broadcast=bcast or args.broadcast)
    except McastOSError as exc:
        _ipv6_needs_interface(ep, iface, exc)
        raise
    tally = Tally()
    status = ExitStatus.OK
    start = env.monotonic()
    host = str(ep.group)
    failed = True
    try:
        if args.rate == 0 and args.size is not None and args.source is None:
            _send_unpaced_batches(sock, it, host, ep.port, tally)
        else:
            pacer = Pacer(args.rate, env)
            for data in it:
                pacer.wait()
                with signals_held():  # counted with its send: an interrupt loses neither
                    if args.source is not None:
                        sock.sendto_from(data, host, ep.port, args.source)
                    else:
                        sock.send(data)
                    tally.sent += 1
                    tally.bytes += len(data)
        failed = False
    except KeyboardInterrupt as exc:
        status = interrupt_status(exc)
        failed = False
    except McastOSError as exc:
        _ipv6_needs_interface(ep, iface, exc)
        raise
    finally:
        sock.close()
        if failed and tally.sent:  # an error part way: say what had already left
            _summary(args, env, tally, ep, iface, stream_id, start, ExitStatus.ERROR)
    _summary(args, env, tally, ep, iface, stream_id, start, status)
    return status


def _summary(args: argparse.Namespace, env: Env, tally: Tally, ep: Endpoint,
             iface: Interface | None, stream_id: int, start: float, status: ExitStatus
             ) -> None:
    elapsed = env.monotonic() - start
    if args.json:
        emit_json(env, {"type": "summary", "group": str(ep.group), "port": ep.port,
                        "interface": iface.name if iface else None, "source": args.source,
                        "sent": tally.sent, "bytes": tally.bytes, "elapsed_s": secs(elapsed),
                        "stream": f"{stream_id:08x}" if args.size else None,
                        "interrupted": status is not ExitStatus.OK})
    elif (args.size is not None or tally.sent != 1 or status is not ExitStatus.OK) and \
            not args.quiet:
        env.err(f"sent {tally.sent} datagrams ({tally.bytes} B) to {ep} in {elapsed:.3f} s")
