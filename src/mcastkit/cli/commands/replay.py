"""``mcastkit replay``: send the multicast datagrams of a pcap/pcapng capture again.

Owns: the replay verb's options, progress lines and report (text or JSON).
Must not: read captures or send itself (:mod:`mcastkit.capture` does), make socket calls
outside the public core.
"""

from __future__ import annotations

import argparse
import signal
from typing import Any

from mcastkit import McastValueError, capture
from mcastkit.capture import ReplayReport

from .._common import (
    CliError,
    emit_json,
    interface_of,
    positive_float,
    rate_arg,
    signal_status,
)
from .._env import Env
from .._longrun import RunProgress
from .._signals import stop_on_signals
from .._status import ExitStatus

HELP = "send the multicast datagrams of a pcap/pcapng capture again"
DESCRIPTION = """\
Read a capture (pcap or pcapng, from tcpdump, Wireshark or 'mcastkit record'; Ethernet,
Linux cooked v1/v2 and raw-IP link types; IPv4 and IPv6; IP fragments reassembled) and
send every UDP datagram addressed to a multicast group again, to its group and port or
the one --map gives, through an ordinary socket (no root): at the recorded timing, a
multiple of it (--speed), a fixed rate (--rate) or as fast as possible (--max). Other
packets are counted and skipped. The report gives what was sent and skipped and how
late datagrams left against their schedule."""
EXAMPLES = """\
  mcastkit replay feed.pcapng -i eth1
  mcastkit replay feed.pcap -i eth1 --speed 2 --loop 3
  mcastkit replay feed.pcapng -i eth1 --rate 10k
  mcastkit replay feed.pcapng -i eth1 --max --json
  mcastkit replay feed.pcapng -i lo --map 239.1.1.1:5000=239.255.0.1:6000 --ttl 1"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the capture to replay (pcap or pcapng)")
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="outgoing interface (name, index or address); strongly recommended")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=positive_float, default=1.0, metavar="X",
                      help="multiple of the recorded timing (default 1: as recorded)")
    pace.add_argument("--rate", type=rate_arg, metavar="PPS",
                      help="a fixed rate instead of the recorded timing (1000, 10k, 1M)")
    pace.add_argument("--max", action="store_true",
                      help="as fast as the batched send path allows (sendmmsg / UDP GSO)")
    p.add_argument("--loop", type=int, default=1, metavar="N",
                   help="send the capture N times (0: until Ctrl-C; default 1)")
    p.add_argument("--map", action="append", default=[], metavar="GROUP:PORT=GROUP:PORT",
                   help="send datagrams of one group and port to another (repeatable)")
    p.add_argument("--ttl", type=int, default=1, metavar="N",
                   help="multicast TTL / hop limit 0-255 (default 1: stays on the link)")
    p.add_argument("--no-outgoing", dest="outgoing", action="store_false",
                   help="skip what a 'tcpdump -i any' capture marks as sent by the "
                        "capturing host (a router's capture holds each datagram in and out)")
    p.add_argument("--interval", type=positive_float, default=10.0, metavar="S",
                   help="seconds between progress lines when stdout is not a terminal "
                        "(default 10)")


def _line(r: ReplayReport) -> str:
    return f"{r.sent} datagrams, {r.bytes} B in {r.elapsed_s:.1f} s ({r.pps:.0f}/s)"


def _report(env: Env, r: ReplayReport, path: str) -> None:
    skipped = r.skipped + r.decode.skipped
    env.out(f"replayed {_line(r)}, {r.loops} loop{'s' if r.loops != 1 else ''} of {path} "
            f"({r.mode})")
    if skipped:
        env.out("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    t = r.timing_us
    if t:
        env.out(f"timing: sent late by mean {t['mean']:.0f} us, p50 {t['p50']:.0f} us, "
                f"p99 {t['p99']:.0f} us, max {t['max']:.0f} us against the schedule")
    notes = r.decode.notes
    if notes.missing:
        env.out(f"note: the capture records {notes.missing} datagrams that were dropped "
                "while recording (they are not in the file)")
    if notes.truncated_tail:
        env.out("note: the capture ends in a cut-off block (its writer was killed); "
                "everything before it was replayed")


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    iface = interface_of(args.interface)
    if args.loop < 0:
        raise CliError(f"--loop {args.loop}: use 0 (until Ctrl-C) or more", ExitStatus.USAGE)
    if not 0 <= args.ttl <= 255:
        raise CliError(f"--ttl {args.ttl}: use 0-255", ExitStatus.USAGE)
    try:
        mapping = capture.parse_mapping(args.map)
    except McastValueError as exc:
        raise CliError(exc.message, ExitStatus.USAGE) from None
    prog = RunProgress(env, args, "replaying")

    def progress(r: ReplayReport) -> None:
        prog.report(_line(r), lambda: {"sent": r.sent, "bytes": r.bytes,
                                       "elapsed_s": round(r.elapsed_s, 3)})

    with stop_on_signals() as stop:
        try:
            r = capture.replay(
                args.file, interface=iface, speed=args.speed, rate=args.rate or None,
                as_fast=args.max, loops=args.loop, mapping=mapping, ttl=args.ttl,
                outgoing=args.outgoing, stop=stop, progress=progress,
                progress_every_s=prog.every_s)
        except FileNotFoundError:
            raise CliError(f"{args.file}: no such file", ExitStatus.USAGE) from None
        except IsADirectoryError:
            raise CliError(f"{args.file} is a directory; name a capture file",
                           ExitStatus.USAGE) from None
        except PermissionError:
            raise CliError(f"{args.file}: permission denied", ExitStatus.USAGE) from None
        except McastValueError as exc:
            if (exc.code.name == "BAD_VALUE" and "capture" in exc.message) or \
                    "pcap" in exc.message:
                raise CliError(f"{args.file}: {exc.message}", ExitStatus.USAGE) from None
            raise
        finally:
            prog.close()
    if args.json:
        obj: dict[str, Any] = {"type": "summary", "file": args.file, **r.as_dict()}
        if stop.signum is not None:
            obj["stopped_by"] = signal.Signals(stop.signum).name
        emit_json(env, obj)
    else:
        _report(env, r, args.file)
    if stop.signum is not None:
        return signal_status(stop.signum)
    if r.sent == 0:
        env.err(f"mcastkit: nothing sent: {args.file} holds no multicast UDP datagrams "
                f"({r.decode.records} packets read)")
        return ExitStatus.ERROR
    return ExitStatus.OK
