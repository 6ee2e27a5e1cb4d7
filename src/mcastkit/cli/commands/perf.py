"""``mcastkit perf send|recv``: a multicast throughput test.

The sender emits sequenced DATA payloads (paced, or unpaced through the core's
``send_batch`` when it has it) for ``--duration`` seconds or ``-c`` datagrams, then a
few END datagrams carrying the total. The receiver counts, and reports pps, Mbit/s,
loss, reordering, duplicates and kernel drops.

Owns: the perf verb, its live progress and its summary / ``--json-report``.
Must not: make socket calls outside the public core.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import stat
from collections.abc import Callable
from typing import Any

from mcastkit import MulticastSocket, open_sender

from ... import seq as _seq
from .._common import (
    CliError,
    Pacer,
    Progress,
    add_output_options,
    add_reuse_option,
    count_arg,
    emit_json,
    endpoint_arg,
    interface_of,
    interrupt_status,
    notice,
    percent_arg,
    positive_float,
    rate_arg,
    size_arg,
)
from .._env import Env
from .._format import mbps, pct, rate, secs
from .._rx import Receivers
from .._sendinput import check_size
from .._signals import signals_held
from .._status import ExitStatus

HELP = "throughput test: 'perf send' on one host, 'perf recv' on others"
DESCRIPTION = """\
Measure multicast throughput. Start 'perf recv GROUP:PORT' first, then 'perf send
GROUP:PORT'. The sender numbers every datagram and ends with END markers carrying the
total, so the receiver reports exact loss, reordering and duplicates, plus pps and
Mbit/s. Live progress on a terminal; a summary (text or --json) at the end."""
EXAMPLES = """\
  mcastkit perf recv 239.255.0.7:5001 -i eth0
  mcastkit perf send 239.255.0.7:5001 -i eth0 --duration 10 --size 1200 --rate 20k
  mcastkit perf send 239.255.0.7:5001 -i lo -c 10000 --rate 0     # as fast as possible
  mcastkit perf recv 239.255.0.7:5001 -i eth0 --json-report result.json --max-loss 1"""

OWN_OUTPUT_OPTIONS = True  # each mode (send, recv) gets --json/-v/-q/--traceback itself
END_COPIES = 5
END_SPACING_S = 0.02


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="mode", metavar="send|recv", parser_class=type(p))
    sub.required = True
    for name, text in (("send", "send the test stream"), ("recv", "receive and measure it")):
        sp = sub.add_parser(name, help=text, description=text,
                            epilog="Examples:\n" + EXAMPLES + "\n",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.env = p.env  # type: ignore[attr-defined]
        sp.add_argument("endpoint", type=endpoint_arg, metavar="GROUP:PORT")
        sp.add_argument("-i", "--interface", metavar="IFACE",
                        help="interface (name, index or address)")
        add_output_options(sp)
        sp.add_argument("--json-report", metavar="FILE",
                        help="also write the summary as one JSON object to FILE")
        if name == "send":
            sp.add_argument("--duration", type=positive_float, default=10.0, metavar="S",
                            help="seconds to send (default 10; ignored with -c)")
            sp.add_argument("-c", "--count", type=count_arg, metavar="N",
                            help="send exactly N datagrams")
            sp.add_argument("--size", type=size_arg, default=1200, metavar="BYTES",
                            help="payload size (>= 32, default 1200; 8K works)")
            sp.add_argument("--rate", type=rate_arg, default=10000.0, metavar="PPS",
                            help="datagrams per second (default 10k; 0 = unpaced)")
            sp.add_argument("--ttl", type=int, default=1, metavar="N", help="TTL (default 1)")
        else:
            sp.add_argument("--duration", type=positive_float, metavar="S",
                            help="stop S seconds after the first datagram")
            sp.add_argument("--timeout", type=positive_float, default=30.0, metavar="S",
                            help="give up if nothing arrives for S seconds (default 30)")
            sp.add_argument("--idle", type=positive_float, default=2.0, metavar="S",
                            help="end when the stream stops for S seconds (default 2)")
            sp.add_argument("--rcvbuf", type=size_arg, default=4 * 1024 * 1024,
                            metavar="BYTES", help="receive buffer to request (default 4M; "
                                                  "capped by net.core.rmem_max)")
            add_reuse_option(sp)
            sp.add_argument("--max-loss", type=percent_arg, metavar="PCT",
                            help="exit 5 if loss is above PCT percent")


def _open_report(path: str) -> int:
    """Open ``path`` for the report without following a symbolic link.

    A new file is created exclusively (``O_CREAT|O_EXCL``: nobody can slip a link in
    between); an existing regular file the user named is truncated and rewritten; a
    symbolic link (even a dangling one) is refused (``O_NOFOLLOW`` gives ELOOP).
    """
    flags = os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        pass
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CliError(f"--json-report {path!r}: not a regular file; give a file path")
        os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_report(path: str | None, obj: dict[str, Any]) -> None:
    if path is None:
        return
    try:
        fd = _open_report(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CliError(f"--json-report {path!r} is a symbolic link; mcastkit does not "
                           "follow links when writing (give the real path)") from None
        raise CliError(f"--json-report {path!r}: {exc.strerror}; give a writable path"
                       ) from None
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    if args.endpoint.source is not None and args.mode == "send":
        raise CliError("a SOURCE, prefix is for receivers", ExitStatus.USAGE)
    return _send(args, env) if args.mode == "send" else _recv(args, env)


def _send(args: argparse.Namespace, env: Env) -> ExitStatus:
    if args.size < _seq.HEADER_SIZE:
        raise CliError(f"--size {args.size}: perf payloads need at least {_seq.HEADER_SIZE} "
                       "bytes", ExitStatus.USAGE)
    check_size(args.size, args.endpoint.group.version, f"--size {args.size}")
    if not 0 <= args.ttl <= 255:
        raise CliError(f"--ttl {args.ttl}: use 0-255", ExitStatus.USAGE)
    ep = args.endpoint
    iface = interface_of(args.interface)
    sid = random.getrandbits(32)
    with signals_held() as release:
        sock = open_sender(ep, interface=iface, ttl=args.ttl, loopback=True)
        return _send_on(sock, sid, args, env, release)


def _send_on(sock: MulticastSocket, sid: int, args: argparse.Namespace, env: Env,
             release: Callable[[], None]) -> ExitStatus:
    ep = args.endpoint
    prog = Progress(env, not args.json and not args.quiet)
    sent = 0
    status = ExitStatus.OK
    start = env.monotonic()
    end = start + args.duration
    pad = bytes(args.size - _seq.HEADER_SIZE)
    batch_fn = getattr(sock, "send_batch", None)
    try:
        release()  # a signal held back since the socket opened is raised here
        pacer = Pacer(args.rate, env)
        last_ui = start
        while True:
            now = env.monotonic()
            if (args.count is not None and args.count and sent >= args.count) or (
                    (args.count is None or args.count == 0) and now >= end):
                break
            if batch_fn is not None and args.rate == 0:
                n = 64 if args.count in (None, 0) else min(64, args.count - sent)
                ts = env.time_ns()
                chunk = [_seq.pack(sid, sent + k, ts, _seq.HEADER_SIZE) + pad for k in range(n)]
                sent += int(batch_fn(chunk, str(ep.group), ep.port))
            else:
                pacer.wait()
                sock.send(_seq.pack(sid, sent, env.time_ns(), _seq.HEADER_SIZE) + pad)
                sent += 1
            if now - last_ui >= 0.25:
                last_ui = now
                el = max(now - start, 1e-9)
                prog.update(f"sent {sent} datagrams, {rate(sent / el):.1f} pps, "
                            f"{mbps(sent * args.size * 8 / el / 1e6):.3f} Mbit/s")
        for _ in range(END_COPIES):  # spaced, so a receiver still draining a burst sees one
            env.sleep(END_SPACING_S)
            sock.send(_seq.pack(sid, sent, env.time_ns(), kind=_seq.Kind.END))
    except KeyboardInterrupt as exc:
        status = interrupt_status(exc)
    finally:
        prog.close()
        sock.close()
    elapsed = max(env.monotonic() - start, 1e-9)
    summary = {"type": "summary", "role": "send", "group": str(ep.group), "port": ep.port,
               "stream": f"{sid:08x}", "sent": sent, "bytes": sent * args.size,
               "elapsed_s": secs(elapsed), "pps": rate(sent / elapsed),
               "mbps": mbps(sent * args.size * 8 / elapsed / 1e6)}
    _emit(env, args, summary)
    return status


def _emit(env: Env, args: argparse.Namespace, summary: dict[str, Any]) -> None:
    _write_report(args.json_report, summary)
    if args.json:
        emit_json(env, summary)
        return
    parts = [f"{k}={v}" for k, v in summary.items() if k != "type"]
    env.out("perf " + summary["role"] + ": " + " ".join(parts[1:]))


def _recv(args: argparse.Namespace, env: Env) -> ExitStatus:
    ep = args.endpoint
    iface = interface_of(args.interface)
    stats = _seq.StreamStats()
    prog = Progress(env, not args.json and not args.quiet)
    status = ExitStatus.OK
    ended: set[str] = set()
    start = env.monotonic()
    first: float | None = None
    last = start
    received = 0
    with signals_held() as release, Receivers([ep], iface, rcvbuf_bytes=args.rcvbuf,
                                              reuse=args.reuse) as rx:
        if rx.rcvbuf_capped:
            notice(env, args, f"--rcvbuf {args.rcvbuf}: the kernel applied "
                              f"{rx.rcvbuf_bytes} B (net.core.rmem_max caps it; raise it "
                              f"with sysctl -w net.core.rmem_max={args.rcvbuf})")
        try:
            release()  # a signal held back since the join is raised here (summary below)
            last_ui = start
            while True:
                now = env.monotonic()
                if first is None and now - start >= args.timeout:
                    break
                if first is not None and now - last >= args.idle:
                    break
                if first is not None and args.duration is not None and \
                        now - first >= args.duration:
                    break
                if ended and len(ended) >= len(stats):
                    break
                for _port, d in rx.wait(0.2):
                    h = _seq.parse(d.data)
                    t = env.monotonic()
                    if h is None:
                        stats.add_unsequenced(len(d.data), t)
                        continue
                    key = f"{d.source}/{h.stream_id:08x}"
                    if h.kind is _seq.Kind.END:
                        stats.set_expected(key, h.seq)
                        ended.add(key)
                        continue
                    if h.kind is not _seq.Kind.DATA:
                        continue
                    if first is None:
                        first = t
                    last = t
                    received += 1
                    stats.add(key, h.seq, len(d.data), t)
                if now - last_ui >= 0.25:
                    last_ui = now
                    tot = stats.total()
                    prog.update(f"received {tot.datagrams}, {rate(tot.pps):.1f} pps, "
                                f"{mbps(tot.mbps):.3f} Mbit/s, lost {tot.lost}, reordered "
                                f"{tot.reordered}")
        except KeyboardInterrupt as exc:
            status = interrupt_status(exc)
        finally:
            prog.close()
        drops = rx.kernel_drops()
        applied = rx.rcvbuf_bytes
    tot = stats.total()
    summary: dict[str, Any] = {"type": "summary", "role": "recv", **tot.as_dict(),
                               "loss_pct": pct(tot.loss_pct), "kernel_drops": drops,
                               "streams": len(stats), "ended": len(ended),
                               "rcvbuf_requested": args.rcvbuf, "rcvbuf_applied": applied}
    summary.pop("stream", None)
    _emit(env, args, summary)
    if status is not ExitStatus.OK:
        return status
    if received == 0:
        raise CliError(f"timeout: nothing arrived within {args.timeout:g} s; is 'mcastkit "
                       f"perf send {ep}' running on the same interface?", ExitStatus.TIMEOUT)
    if args.max_loss is not None and tot.loss_pct > args.max_loss:
        cause = (f"; the kernel dropped {drops} for a full receive buffer (rcvbuf "
                 f"{applied} B: raise net.core.rmem_max and --rcvbuf)" if drops > 0 else "")
        env.err(f"mcastkit: error: loss {pct(tot.loss_pct):.2f}% ({tot.lost} of "
                f"{tot.expected}) is above --max-loss {args.max_loss:g}%{cause}")
        return ExitStatus.LOSS
    return ExitStatus.OK
