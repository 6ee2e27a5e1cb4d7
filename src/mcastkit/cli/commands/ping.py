"""``mcastkit ping``: many hosts probe a group at once and measure each other (like omping).

Every participant sends numbered PROBEs to GROUP:PORT from its own ephemeral port and
answers the PROBEs of the others with a REPLY (unicast to the prober's port, or to the
group with ``--reply multicast``). Each reports, per peer, the loss of its probes'
replies and the round-trip time (min/avg/max/jitter), plus how many of the peer's
multicast probes it saw.

Owns: the ping verb, its peer table and the summary.
Must not: make socket calls outside the public core.
"""

from __future__ import annotations

import argparse
import random
import selectors
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcastkit import Datagram, MulticastSocket, open_receiver

from ... import seq as _seq
from .._common import (
    CliError,
    add_reuse_option,
    emit_json,
    endpoint_arg,
    interface_of,
    interrupt_status,
    nonneg_float,
    percent_arg,
    positive_float,
    positive_int,
)
from .._env import Env
from .._format import pct
from .._signals import signals_held
from .._status import ExitStatus

HELP = "probe a group from several hosts at once; per-peer loss and latency"
DESCRIPTION = """\
Run 'mcastkit ping GROUP:PORT' on several hosts at the same time. Each sends numbered
probes to the group and answers the probes of the others, then reports for every peer:
replies received / probes sent (loss counted from when the peer was first heard), the
round-trip time min/avg/max/jitter, and how many of the peer's multicast probes arrived.
Hosts started a little apart can all measure the same window with --peers N: each
keeps probing and answering but counts nothing until N other peers have been heard
(exit 3 if they do not all appear within --timeout).
Exit 5 when a peer's loss is above --max-loss, 3 when no peer answered."""
EXAMPLES = """\
  mcastkit ping 239.255.0.9:4321 -i eth0                 # on every host at once
  mcastkit ping 239.255.0.9:4321 -i eth0 -c 20 --interval 0.2 --json
  mcastkit ping [ff15::9]:4321 -i eth0 --reply multicast
  mcastkit ping 239.255.0.9:4321 -i lo -c 5 --timeout 15 --max-loss 10
  mcastkit ping 239.255.0.9:4321 -i eth0 --peers 2 --timeout 60   # on 3 hosts: wait for
                                                                  # the 2 others, then count"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint", type=endpoint_arg, metavar="GROUP:PORT")
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="interface for joins and probes (name, index or address)")
    p.add_argument("-c", "--count", type=positive_int, default=10, metavar="N",
                   help="probes to send (default 10)")
    p.add_argument("--interval", type=positive_float, default=1.0, metavar="S",
                   help="seconds between probes (default 1)")
    p.add_argument("--timeout", type=positive_float, metavar="S",
                   help="hard limit on the whole run, waiting for --peers included "
                        "(default: count*interval + 30 s)")
    p.add_argument("--peers", type=positive_int, metavar="N",
                   help="count nothing until N other peers have been heard (probing and "
                        "answering meanwhile), so hosts started apart measure the same "
                        "window; exit 3 if fewer than N appear within --timeout")
    p.add_argument("--wait", type=nonneg_float, metavar="S",
                   help="after the last probe, keep answering until peers are quiet for S "
                        "seconds (default: max(1, 2*interval))")
    p.add_argument("--reply", choices=("unicast", "multicast"), default="unicast",
                   help="how to answer probes (default unicast)")
    p.add_argument("--ttl", type=int, default=1, metavar="N", help="TTL of probes (default 1)")
    p.add_argument("--max-loss", type=percent_arg, default=0.0, metavar="PCT",
                   help="exit 5 if any peer's loss is above PCT percent (default 0)")
    add_reuse_option(p)


def left_after(interval: float) -> float:
    """Seconds of silence (no probe, no reply) after which a peer has left."""
    return max(3.0 * interval, 1.0)


@dataclass
class Peer:
    responder: int
    address: str
    first_seq: int  # our probes from this one on count for this peer
    last_heard: float = 0.0  # monotonic time of its last probe or reply
    heard_at_sent: int = 0  # how many probes we had sent then
    left_at: int | None = None  # our probes from this one on are not counted (it left)
    replies: set[int] = field(default_factory=set)
    rtts_ms: list[float] = field(default_factory=list)
    duplicates: int = 0
    probes_seen: _seq.StreamStats = field(default_factory=lambda: _seq.StreamStats(
        max_streams=1))

    def summary(self, sent: int, count_from: int = 0) -> dict[str, Any]:
        first = max(self.first_seq, count_from)  # probes before count_from were warm-up
        last = sent if self.left_at is None else min(sent, self.left_at)
        counted = [s for s in self.replies if first <= s < last]
        expected = max(last - first, len(counted))
        got = len(counted)
        loss = 100.0 * (expected - got) / expected if expected else 0.0
        r = self.rtts_ms
        jitter = (sum(abs(a - b) for a, b in zip(r[1:], r, strict=False)) / (len(r) - 1)
                  if len(r) > 1 else 0.0)
        mc = self.probes_seen.total()
        return {
            "type": "peer", "peer": self.address, "peer_id": f"{self.responder:08x}",
            "left": self.left_at is not None,
            "sent": expected, "received": got, "loss_pct": pct(loss),
            "rtt_min_ms": round(min(r), 3) if r else None,
            "rtt_avg_ms": round(sum(r) / len(r), 3) if r else None,
            "rtt_max_ms": round(max(r), 3) if r else None,
            "jitter_ms": round(jitter, 3), "duplicates": self.duplicates,
            "mcast_probes_received": mc.unique, "mcast_probes_lost": mc.lost,
            "mcast_probes_reordered": mc.reordered, "mcast_probes_duplicates": mc.duplicates,
            "mcast_probes_gaps": mc.gaps,
        }


class _Pinger:
    def __init__(self, args: argparse.Namespace, env: Env, rx: MulticastSocket,
                 tx: MulticastSocket) -> None:
        self.args = args
        self.env = env
        self.rx = rx
        self.tx = tx
        self.my_id = random.getrandbits(32)
        self.sent = 0
        # --peers: our probes before this sequence number are warm-up, not counted
        self.count_from = 0
        self.counting = args.peers is None
        self.peers: dict[int, Peer] = {}
        self.last_peer_probe = env.monotonic()
        ep = args.endpoint
        self.group, self.port = str(ep.group), ep.port

    def say(self, obj: dict[str, Any], text: str) -> None:
        """A progress event: a JSON line or a text line (nothing with -q)."""
        if self.args.quiet:
            return
        if self.args.json:
            emit_json(self.env, obj)
        else:
            self.env.out(text)

    def peer(self, rid: int, address: str) -> Peer:
        p = self.peers.get(rid)
        now = self.env.monotonic()
        if p is None:
            p = Peer(rid, address, first_seq=self.sent)
            self.peers[rid] = p
            self.say({"type": "joined", "peer": address, "peer_id": f"{rid:08x}"},
                     f"{address}: joined (peer {rid:08x})")
        elif p.left_at is not None:
            p.left_at = None
            self.say({"type": "rejoined", "peer": address, "peer_id": f"{rid:08x}"},
                     f"{address}: heard again (peer {rid:08x})")
        p.last_heard, p.heard_at_sent = now, self.sent
        return p

    def check_left(self) -> None:
        """Mark peers silent for :func:`left_after` seconds as gone, and say so: their
        later probes are not counted as loss."""
        now = self.env.monotonic()
        quiet = left_after(self.args.interval)
        for p in self.peers.values():
            if p.left_at is None and now - p.last_heard > quiet:
                # count up to its last reply: a probe sent just before it went (answered by
                # nobody, as the peer was gone) is not loss; earlier unanswered ones still are
                last_reply = max(p.replies, default=p.first_seq - 1)
                p.left_at = min(p.heard_at_sent, last_reply + 1)
                self.say({"type": "left", "peer": p.address, "peer_id": f"{p.responder:08x}",
                          "after_seq": p.left_at},
                         f"{p.address}: left (nothing heard for {quiet:g} s); probes from "
                         f"seq {p.left_at} on are not counted for it")

    def start_counting(self) -> None:
        """--peers reached: count from our next probe; forget what warm-up saw."""
        self.counting = True
        self.count_from = self.sent
        for p in self.peers.values():
            p.replies.clear()
            p.rtts_ms.clear()
            p.duplicates = 0
            p.probes_seen = _seq.StreamStats(max_streams=1)
        self.say({"type": "counting", "peers": len(self.peers), "count": self.args.count},
                 f"{len(self.peers)} peer(s) heard; counting the next {self.args.count} "
                 "probes")

    def send_probe(self) -> None:
        data = _seq.pack(self.my_id, self.sent, self.env.time_ns(), kind=_seq.Kind.PROBE)
        self.tx.sendto(data, self.group, self.port)
        self.sent += 1

    def handle(self, d: Datagram) -> None:
        h = _seq.parse(d.data)
        if h is None:
            return
        if h.kind is _seq.Kind.PROBE:
            if h.stream_id == self.my_id:
                return  # our own probe, looped back
            self.last_peer_probe = self.env.monotonic()
            p = self.peer(h.stream_id, d.source)
            p.probes_seen.add(h.stream_id, h.seq, len(d.data), self.last_peer_probe)
            reply = _seq.pack_reply(h, self.my_id)
            if self.args.reply == "multicast":
                self.tx.sendto(reply, self.group, self.port)
            else:
                self.tx.sendto(reply, d.source, d.port)
        elif h.kind is _seq.Kind.REPLY and h.stream_id == self.my_id:
            rid = _seq.parse_reply_responder(d.data)
            if rid is None or rid == self.my_id:
                return
            p = self.peer(rid, d.source)
            if h.seq < self.count_from or not self.counting:
                return  # the reply to a warm-up probe (--peers)
            if h.seq < p.first_seq:
                p.first_seq = h.seq  # it was listening before we heard from it
            if h.seq in p.replies:
                p.duplicates += 1
                return
            p.replies.add(h.seq)
            rtt = (self.env.time_ns() - h.ts_ns) / 1e6
            p.rtts_ms.append(rtt)
            self.say({"type": "reply", "peer": p.address, "seq": h.seq,
                      "rtt_ms": round(rtt, 3)}, f"{p.address}: seq={h.seq} rtt={rtt:.3f} ms")


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    ep = args.endpoint
    if ep.source is not None:
        raise CliError("ping uses any-source groups; drop the SOURCE, prefix", ExitStatus.USAGE)
    if not 0 <= args.ttl <= 255:
        raise CliError(f"--ttl {args.ttl}: use 0-255", ExitStatus.USAGE)
    iface = interface_of(args.interface)
    wait = args.wait if args.wait is not None else max(1.0, 2 * args.interval)
    hard = args.timeout if args.timeout is not None else args.count * args.interval + 30.0
    with signals_held() as release:
        rx = open_receiver(ep, interface=iface, metadata=True, reuse_port=args.reuse,
                           reuse_address=args.reuse)
        sel = selectors.DefaultSelector()
        try:
            tx = MulticastSocket(ep.group.version, interface=iface, ttl=args.ttl,
                                 loopback=True)
            try:
                tx.bind(0)
                pg = _Pinger(args, env, rx, tx)
                sel.register(rx.fileno(), selectors.EVENT_READ, rx)
                sel.register(tx.fileno(), selectors.EVENT_READ, tx)
                status = _loop(pg, sel, env, args, wait, hard, release)
            finally:
                tx.close()
        finally:
            sel.close()
            rx.close()
    return _report(pg, env, args, status)


def _loop(pg: _Pinger, sel: selectors.BaseSelector, env: Env, args: argparse.Namespace,
          wait: float, hard: float, release: Callable[[], None]) -> ExitStatus:
    start = env.monotonic()
    end = start + hard
    base = start  # probe i (counted from pg.count_from) is due at base + i * interval
    try:
        release()  # a signal held back since the join is raised here (summary follows)
        while True:
            now = env.monotonic()
            if now >= end:
                break
            if not pg.counting and len(pg.peers) >= args.peers:
                pg.start_counting()
                base = now
            if not pg.counting or pg.sent - pg.count_from < args.count:
                due = base + (pg.sent - pg.count_from) * args.interval
                if now >= due:
                    pg.send_probe()
                    continue
                until = due
            else:
                quiet_since = max(pg.last_peer_probe, base + (args.count - 1) * args.interval)
                until = quiet_since + wait
                if now >= until:
                    break
            if not pg.counting or pg.sent - pg.count_from < args.count:
                pg.check_left()  # after our last probe, peers going quiet is the normal end
            for key, _ in sel.select(max(0.0, min(until, end) - now)):
                sock: MulticastSocket = key.data
                try:
                    batch = sock.recv_many(64, timeout_s=0.05)
                except (TimeoutError, BlockingIOError):
                    continue
                for d in batch:
                    pg.handle(d)
    except KeyboardInterrupt as exc:
        return interrupt_status(exc)
    return ExitStatus.OK


def _report(pg: _Pinger, env: Env, args: argparse.Namespace, status: ExitStatus) -> ExitStatus:
    if not pg.counting:
        if status is not ExitStatus.OK:
            return status
        hard = (f"--timeout {args.timeout:g} s" if args.timeout is not None else
                f"the default --timeout ({args.count * args.interval + 30.0:g} s)")
        raise CliError(
            f"--peers {args.peers}: only {len(pg.peers)} other peer(s) heard within {hard}; "
            f"start 'mcastkit ping {args.endpoint}' on the other hosts sooner, raise "
            "--timeout, or lower --peers", ExitStatus.TIMEOUT)
    worst = 0.0
    for p in pg.peers.values():
        s = p.summary(pg.sent, pg.count_from)
        worst = max(worst, s["loss_pct"])
        if args.json:
            emit_json(env, s)
            continue
        left = " (left early)" if s["left"] else ""
        rtt = (f"min/avg/max/jitter = {s['rtt_min_ms']:.3f}/{s['rtt_avg_ms']:.3f}/"
               f"{s['rtt_max_ms']:.3f}/{s['jitter_ms']:.3f} ms" if s["rtt_min_ms"] is not None
               else "no replies")
        env.out(f"{s['peer']} ({s['peer_id']}){left}: {args.reply}, xmt/rcv/%loss = {s['sent']}/"
                f"{s['received']}/{s['loss_pct']:.2f}%, {rtt}; multicast probes seen "
                f"{s['mcast_probes_received']} (lost {s['mcast_probes_lost']})")
    if args.json:
        emit_json(env, {"type": "summary", "sent": pg.sent - pg.count_from,
                        "peers": len(pg.peers),
                        "left": sum(p.left_at is not None for p in pg.peers.values()),
                        "worst_loss_pct": worst})
    if status is not ExitStatus.OK:
        return status
    if not pg.peers:
        ttl = (f"; peers behind a router need --ttl above the number of routers (now "
               f"{args.ttl}: 'mcastkit doctor {args.endpoint} -i IFACE --peer ADDRESS' "
               "checks)" if args.ttl <= 1 else "")
        raise CliError(f"no peer answered: start 'mcastkit ping {args.endpoint}' on the "
                       "other hosts at the same time, with the same group, port and a "
                       f"reachable interface{ttl}", ExitStatus.TIMEOUT)
    if worst > args.max_loss:
        env.err(f"mcastkit: error: loss {worst:.2f}% is above --max-loss {args.max_loss:g}%")
        return ExitStatus.LOSS
    return ExitStatus.OK
