"""``mcastkit listen``: join groups and print what arrives.

Owns: the listen verb's options and output (text, hex, JSON lines), ``--stats``
(rate, loss, reordering, duplicates, kernel drops of sequenced streams: a live line on a
terminal through :class:`~mcastkit.cli._common.Progress`, periodic plain lines otherwise).
Must not: make socket calls outside the public core.
"""

from __future__ import annotations

import argparse
from typing import Any

from mcastkit import Datagram

from .. import _seq, _seqopt
from .._common import (
    Progress,
    emit_json,
    endpoint_arg,
    interface_of,
    positive_float,
    positive_int,
)
from .._env import Env
from .._rx import Receivers
from .._status import ExitStatus

HELP = "join groups and print the datagrams that arrive"
DESCRIPTION = """\
Join one or more groups and print every datagram that arrives: its sender, group,
arrival interface, TTL and payload. Endpoints are [SOURCE,]GROUP:PORT; a SOURCE makes a
source-specific (SSM) join. Endpoints with the same port share one socket."""
EXAMPLES = """\
  mcastkit listen 239.255.0.1:5000 -i lo
  mcastkit listen 239.255.0.1:5000 239.255.0.2:5000 -i eth0 -c 10 --json
  mcastkit listen 198.18.1.10,232.1.1.1:5000 -i eth0          # SSM
  mcastkit listen [ff15::1]:5000 -i eth0 --hex --timeout 5
  mcastkit listen 239.255.0.1:5000 -i eth0 --stats      # of "mcastkit send --size N"
  mcastkit listen 239.255.0.1:5001 -i eth0 --stats --seq iperf2   # an iperf2 stream"""


LIVE_PERIOD_S = 0.25  # how often the live --stats line is redrawn on a terminal


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoints", nargs="+", type=endpoint_arg, metavar="[SOURCE,]GROUP:PORT",
                   help="what to join, e.g. 239.255.0.1:5000, [ff15::1]:5000, "
                        "198.18.1.10,232.1.1.1:5000")
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="interface to join on (name, index or address); default: the route's")
    p.add_argument("-c", "--count", type=positive_int, metavar="N",
                   help="stop after N datagrams")
    p.add_argument("--timeout", type=positive_float, metavar="S",
                   help="stop after S seconds (exit 3 if fewer than -c N, or nothing, arrived)")
    p.add_argument("--hex", action="store_true", help="show payloads as hex")
    p.add_argument("--stats", action="store_true",
                   help="instead of payloads, show rate, loss, reordering, duplicates and "
                        "kernel drops (a live line on a terminal, else a line every "
                        "--interval seconds), and a summary at the end")
    p.add_argument("--interval", type=positive_float, default=1.0, metavar="S",
                   help="seconds between --stats lines when stdout is not a terminal "
                        "(default 1)")
    _seqopt.add_seq_option(p, "sequence numbers to read for --stats (default mcastkit)",
                           default="mcastkit")
    p.add_argument("--rcvbuf", type=positive_int, metavar="BYTES",
                   help="receive buffer size to request (capped by net.core.rmem_max)")


def _text_payload(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace").rstrip("\r\n")


class _Listener:
    def __init__(self, args: argparse.Namespace, env: Env, rx: Receivers) -> None:
        self.args = args
        self.env = env
        self.rx = rx
        self.seq = _seq.SeqAnalyzer(args.seq)  # one stream per source, group and format id
        self.stats = self.seq.stats
        self.count = 0
        self.last_report = env.monotonic()
        self.prev_total: _seq.StreamSummary | None = None
        # --stats on a terminal: one live line (rich, or \r) instead of periodic lines
        self.progress = Progress(env, bool(args.stats) and not args.json)
        self.last_ui: float | None = None

    def record(self, d: Datagram, now: float) -> None:
        self.count += 1
        if self.args.stats:
            self._account(d, now)
        else:
            self._print(d)

    def _account(self, d: Datagram, now: float) -> None:
        if self.seq.feed_payload(d.data, d.source, d.port, d.group, None, now) == "end":
            self.count -= 1  # the sender's END marker is not a datagram of the stream

    def _print(self, d: Datagram) -> None:
        a = self.args
        if a.json:
            obj: dict[str, Any] = {
                "source": d.source, "port": d.port, "group": d.group,
                "interface": self.rx.interface_name(d.interface), "ttl": d.ttl,
                "size": len(d.data), "truncated": d.truncated,
            }
            h = _seq.parse(d.data)
            if h is not None:
                obj["stream"] = f"{h.stream_id:08x}"
                obj["seq"] = h.seq
            if a.hex:
                obj["hex"] = d.data.hex()
            else:
                obj["data"] = d.data.decode("utf-8", "backslashreplace")
            emit_json(self.env, obj)
            return
        head = (f"{d.source}:{d.port} -> {d.group} on {self.rx.interface_name(d.interface)}"
                f" ttl={d.ttl} {len(d.data)}B" + (" TRUNCATED" if d.truncated else ""))
        body = d.data.hex(" ") if a.hex else _text_payload(d.data)
        self.env.out(f"{head}: {body}")

    def maybe_report(self, now: float, final: bool = False) -> None:
        if not self.args.stats:
            return
        if final:
            self.progress.close()
        elif self.progress.enabled:
            self._live_update(now)
            return
        if not final and now - self.last_report < self.args.interval:
            return
        self.last_report = now
        tot = self.stats.total()
        drops = self.rx.kernel_drops()
        if self.args.json:
            obj = {"type": "summary" if final else "stats", **tot.as_dict(),
                   "kernel_drops": drops, "streams": len(self.stats)}
            if final:
                obj["per_stream"] = [s.as_dict() for s in self.stats.streams()]
            emit_json(self.env, obj)
            return
        label = "summary:" if final else "stats:"
        self.env.out(
            f"{label} {tot.datagrams} datagrams {tot.bytes} B in {tot.elapsed_s:.2f} s "
            f"({tot.pps:.0f} pps, {tot.mbps:.2f} Mbit/s); lost {tot.lost}/{tot.expected} "
            f"({tot.loss_pct:.2f}%), reordered {tot.reordered}, duplicates {tot.duplicates}, "
            f"kernel drops {drops}, streams {len(self.stats)}"
            + (f", unsequenced {self.stats.unsequenced}" if self.stats.unsequenced else ""))


    def _live_update(self, now: float) -> None:
        if self.last_ui is not None and now - self.last_ui < LIVE_PERIOD_S:
            return
        self.last_ui = now
        tot = self.stats.total()
        self.progress.update(
            f"{tot.datagrams} datagrams, {tot.pps:.0f} pps, {tot.mbps:.2f} Mbit/s, "
            f"lost {tot.lost}/{tot.expected} ({tot.loss_pct:.2f}%), reordered "
            f"{tot.reordered}, duplicates {tot.duplicates}, kernel drops "
            f"{self.rx.kernel_drops()}")


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    iface = interface_of(args.interface)
    rx = Receivers(args.endpoints, iface, rcvbuf_bytes=args.rcvbuf)
    with rx:
        lis = _Listener(args, env, rx)
        start = env.monotonic()
        deadline = start + args.timeout if args.timeout is not None else None
        status = ExitStatus.OK
        try:
            while args.count is None or lis.count < args.count:
                now = env.monotonic()
                if deadline is not None and now >= deadline:
                    break
                wait = 0.5 if deadline is None else min(0.5, deadline - now)
                if args.stats:
                    wait = min(wait, LIVE_PERIOD_S if lis.progress.enabled else args.interval)
                for d in rx.wait(max(wait, 0.0)):
                    lis.record(d, env.monotonic())
                    if args.count is not None and lis.count >= args.count:
                        break
                lis.maybe_report(env.monotonic())
        except KeyboardInterrupt:
            status = ExitStatus.CTRL_C
        finally:
            lis.progress.close()  # never leave a live line behind, even on an error
        lis.maybe_report(env.monotonic(), final=True)
        if status is ExitStatus.CTRL_C:
            return status
        if args.count is not None and lis.count < args.count:
            env.err(f"mcastkit: timeout: {lis.count} of {args.count} datagrams arrived in "
                    f"{args.timeout} s")
            return ExitStatus.TIMEOUT
        if lis.count == 0 and not args.stats:
            env.err(f"mcastkit: timeout: nothing arrived in {args.timeout} s (check the "
                    "interface with 'mcastkit doctor GROUP -i IFACE')")
            return ExitStatus.TIMEOUT
        return ExitStatus.OK
