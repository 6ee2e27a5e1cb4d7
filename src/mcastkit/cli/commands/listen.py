"""``mcastkit listen``: join groups and print what arrives.

Owns: the listen verb's options and output (text with payloads escaped, hex, JSON
lines with an unambiguous payload encoding; destination port and arrival time on every
datagram), noticing a deleted interface, ``--stats``
(rate, loss, reordering, duplicates, kernel drops of sequenced streams: a live line on a
terminal through :class:`~mcastkit.cli._common.Progress`, periodic plain lines otherwise).
Must not: make socket calls outside the public core.
"""

from __future__ import annotations

import argparse
from typing import Any

from mcastkit import Datagram

from ... import seq as _seq
from .. import _seqopt
from .._common import (
    CliError,
    Progress,
    add_reuse_option,
    emit_json,
    endpoint_arg,
    interface_of,
    interrupt_status,
    notice,
    positive_float,
    positive_int,
    size_arg,
)
from .._env import Env
from .._format import (
    endpoint_text,
    escape_payload,
    host_text,
    json_payload,
    mbps,
    pct,
    rate,
    secs,
    time_text,
)
from .._rx import Receivers
from .._signals import signals_held
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
  mcastkit listen 239.255.0.1:5001 -i eth0 --stats --seq iperf2   # an iperf2 stream
  mcastkit listen 239.255.0.1:5000 -i eth0 --reuse      # share the port with others"""


LIVE_PERIOD_S = 0.25  # how often the live --stats line is redrawn on a terminal


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoints", nargs="+", type=endpoint_arg, metavar="[SOURCE,]GROUP:PORT",
                   help="what to join, e.g. 239.255.0.1:5000, [ff15::1]:5000, "
                        "198.18.1.10,232.1.1.1:5000")
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="interface to join on (name, index or address); default: the route's")
    p.add_argument("--broadcast", action="store_true",
                   help="also receive IPv4 broadcasts to the PORT (SO_BROADCAST)")
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
    p.add_argument("--rcvbuf", type=size_arg, metavar="BYTES",
                   help="receive buffer to request (4M, 256K; capped by net.core.rmem_max: "
                        "the summary shows what was applied)")
    add_reuse_option(p)


class _Listener:
    def __init__(self, args: argparse.Namespace, env: Env, rx: Receivers) -> None:
        self.args = args
        self.env = env
        self.rx = rx
        self.seq = _seq.SeqAnalyzer(args.seq)  # one stream per source, group and format id
        self.stats = self.seq.stats
        self.count = 0
        self.last_report = env.monotonic()
        # --stats on a terminal: one live line (rich, or \r) instead of periodic lines
        self.progress = Progress(env, bool(args.stats) and not args.json and not args.quiet)
        self.last_ui: float | None = None

    def record(self, port: int, d: Datagram, now: float) -> None:
        self.count += 1
        if self.args.stats:
            self._account(d, now)
        else:
            self._print(port, d)

    def _account(self, d: Datagram, now: float) -> None:
        if self.seq.feed_payload(d.data, d.source, d.port, d.group, None, now) == "end":
            self.count -= 1  # the sender's END marker is not a datagram of the stream

    def _print(self, port: int, d: Datagram) -> None:
        a = self.args
        name = self.rx.interface_name
        ts = d.timestamp_ns if d.timestamp_ns is not None else self.env.time_ns()
        if a.json:
            obj: dict[str, Any] = {
                "type": "datagram", "time": time_text(ts), "timestamp_ns": ts,
                "source": host_text(d.source, name), "source_port": d.port,
                "group": d.group, "dest_port": port, "interface": name(d.interface),
                "ttl": d.ttl, "size": len(d.data), "truncated": d.truncated,
            }
            h = _seq.parse(d.data)
            if h is not None:
                obj["stream"] = f"{h.stream_id:08x}"
                obj["seq"] = h.seq
            obj.update(json_payload(d.data, a.hex))
            emit_json(self.env, obj)
            return
        head = (f"{time_text(ts)} {endpoint_text(d.source, d.port, name)} -> "
                f"{endpoint_text(d.group or '?', port)} on {name(d.interface)}"
                f" ttl={d.ttl} {len(d.data)}B" + (" TRUNCATED" if d.truncated else ""))
        body = d.data.hex(" ") if a.hex else escape_payload(d.data)
        self.env.out(f"{head}: {body}")

    def buffers(self) -> dict[str, Any]:
        """The receive buffer asked for and the one the kernel applied."""
        return {"rcvbuf_requested": self.rx.rcvbuf_requested,
                "rcvbuf_applied": self.rx.rcvbuf_bytes}

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
                   "loss_pct": pct(tot.loss_pct), "kernel_drops": drops,
                   "streams": len(self.stats), **self.buffers()}
            if final:
                obj["per_stream"] = [s.as_dict() for s in self.stats.streams()]
            emit_json(self.env, obj)
            return
        label = "summary:" if final else "stats:"
        b = self.buffers()
        asked = b["rcvbuf_requested"]
        capped = (f" (asked {asked}, capped by net.core.rmem_max)"
                  if self.rx.rcvbuf_capped else "")
        self.env.out(
            f"{label} {tot.datagrams} datagrams {tot.bytes} B in {secs(tot.elapsed_s):.3f} s "
            f"({rate(tot.pps):.1f} pps, {mbps(tot.mbps):.3f} Mbit/s); lost "
            f"{tot.lost}/{tot.expected} ({pct(tot.loss_pct):.2f}%), reordered "
            f"{tot.reordered}, duplicates {tot.duplicates}, kernel drops {drops}, streams "
            f"{len(self.stats)}"
            + (f", unsequenced {self.stats.unsequenced}" if self.stats.unsequenced else "")
            + (f"; rcvbuf {b['rcvbuf_applied']} B{capped}" if final else ""))


    def _live_update(self, now: float) -> None:
        if self.last_ui is not None and now - self.last_ui < LIVE_PERIOD_S:
            return
        self.last_ui = now
        tot = self.stats.total()
        self.progress.update(
            f"{tot.datagrams} datagrams, {rate(tot.pps):.1f} pps, {mbps(tot.mbps):.3f} "
            f"Mbit/s, lost {tot.lost}/{tot.expected} ({pct(tot.loss_pct):.2f}%), reordered "
            f"{tot.reordered}, duplicates {tot.duplicates}, kernel drops "
            f"{self.rx.kernel_drops()}")


GONE_CHECK_S = 1.0  # how often listen checks that its interfaces still exist


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    iface = interface_of(args.interface)
    with signals_held() as release, Receivers(
            args.endpoints, iface, rcvbuf_bytes=args.rcvbuf, reuse=args.reuse,
            timestamps=not args.stats, broadcast=args.broadcast) as rx:
        lis = _Listener(args, env, rx)
        applied = rx.rcvbuf_bytes
        notice(env, args, f"{len(rx.sockets)} socket(s), rcvbuf {applied} B", level=1)
        if rx.rcvbuf_capped:
            notice(env, args, f"--rcvbuf {args.rcvbuf}: the kernel applied {applied} B "
                              "(net.core.rmem_max caps it; raise it with sysctl -w "
                              f"net.core.rmem_max={args.rcvbuf})")
        start = env.monotonic()
        deadline = start + args.timeout if args.timeout is not None else None
        status = ExitStatus.OK
        gone: list[str] = []
        next_check = start + GONE_CHECK_S
        try:
            release()  # a signal held back since the join is raised here (summary below)
            while args.count is None or lis.count < args.count:
                now = env.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if now >= next_check:
                    next_check = now + GONE_CHECK_S
                    gone = rx.gone()
                    if gone:
                        break
                wait = 0.5 if deadline is None else min(0.5, deadline - now)
                if args.stats:
                    wait = min(wait, LIVE_PERIOD_S if lis.progress.enabled else args.interval)
                for port, d in rx.wait(max(wait, 0.0)):
                    lis.record(port, d, env.monotonic())
                    if args.count is not None and lis.count >= args.count:
                        break
                lis.maybe_report(env.monotonic())
        except KeyboardInterrupt as exc:
            status = interrupt_status(exc)
        finally:
            lis.progress.close()  # never leave a live line behind, even on an error
        lis.maybe_report(env.monotonic(), final=True)
        if status is not ExitStatus.OK:
            return status
        if gone:
            raise CliError(f"interface {', '.join(gone)} was deleted; nothing can arrive on "
                           f"it any more ({lis.count} datagram(s) received before). Re-run "
                           "when it is back, or choose another with -i IFACE")
        if args.count is not None and lis.count < args.count:
            raise CliError(f"timeout: {lis.count} of {args.count} datagrams arrived in "
                           f"{args.timeout:g} s", ExitStatus.TIMEOUT)
        if lis.count == 0:
            raise CliError(f"timeout: nothing arrived in {args.timeout:g} s (check the "
                           "interface with 'mcastkit doctor GROUP:PORT -i IFACE')",
                           ExitStatus.TIMEOUT)
        return ExitStatus.OK
