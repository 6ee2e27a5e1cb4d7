"""``mcastkit relay``: carry multicast between interfaces and through an encrypted tunnel.

Owns: the relay verb's options, merging them over a ``--config`` file, running
:class:`mcastkit.relay.Relay` until SIGTERM / SIGINT (or ``--duration``), the ``--stats``
live line, ``--json`` periodic counters, the final summary, and ``--make-key``.
Must not: relay anything itself (the library does) or make socket calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import threading
from typing import Any

from mcastkit import Endpoint, McastError
from mcastkit.relay import ConfigDraft, Relay, RelayConfig, TunnelSpec, make_key_file, read_config
from mcastkit.relay._config import parse_host_port
from mcastkit.relay._rules import BROADCAST, broadcast_port

from .._common import (
    CliError,
    Progress,
    emit_json,
    endpoint_arg,
    positive_float,
    positive_int,
    signal_status,
)
from .._env import Env
from .._status import ExitStatus

HELP = "relay groups between interfaces, or through an encrypted tunnel to another relay"
DESCRIPTION = """\
Receive the datagrams of chosen groups on some interfaces and send them, with their group
and port, on the others (IPv4 and IPv6, any-source and SOURCE,GROUP source-specific; IPv4
broadcasts to chosen ports, re-sent as the limited broadcast 255.255.255.255); or
carry them through an encrypted UDP tunnel (ChaCha20-Poly1305, pre-shared key) to another
relay across a network that carries only unicast. The relay never relays its own output,
suppresses copies from other relays (docs/relay.md, storm rules) and counts everything per
rule and direction. SIGTERM or SIGINT stops it cleanly (every group left, the tunnel told)."""
EXAMPLES = """\
  mcastkit relay eth1 eth2 --preset mdns --preset ssdp
  mcastkit relay eth1 eth2 --group 239.255.10.1:5000 --group [ff15::10]:5000 --stats
  mcastkit relay eth1 eth2 --group 198.18.1.10,232.1.1.1:5000    # SSM
  mcastkit relay eth1 eth2 --preset sonos --preserve-source   # SSDP + broadcast udp/6969
  mcastkit relay eth1 eth2 --broadcast-port 6969       # or --group 255.255.255.255:6969
  mcastkit relay --make-key relay.key                  # then copy it to the other side
  mcastkit relay --tunnel-listen 7777 --key-file relay.key -i eth1 --preset mdns
  mcastkit relay --tunnel-connect 198.18.20.1:7777 --key-file relay.key -i eth1 --preset mdns
  mcastkit relay --config relay.toml --json --interval 10 --health 127.0.0.1:9101"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ifaces", nargs="*", metavar="IFACE",
                   help="interfaces to relay between (two or more, or one with a tunnel)")
    p.add_argument("-i", "--interface", action="append", default=[], metavar="IFACE",
                   help="an interface (the same as a positional IFACE; repeatable)")
    p.add_argument("--listen-only", action="append", default=[], metavar="IFACE",
                   help="receive on IFACE but never send to it (repeatable)")
    p.add_argument("--group", action="append", default=[], type=_group_arg,
                   metavar="[SOURCE,]GROUP:PORT", help="a group to relay (repeatable); "
                   "255.255.255.255:PORT relays IPv4 broadcasts to PORT (as --broadcast-port)")
    p.add_argument("--broadcast-port", action="append", default=[], type=_bcast_arg,
                   metavar="PORT", help="relay IPv4 broadcasts to this UDP port (limited or "
                   "directed to the receiving subnet), re-sent as 255.255.255.255 out of each "
                   "other interface (repeatable)")
    p.add_argument("--preset", action="append", default=[], metavar="mdns|ssdp|sonos",
                   help="relay a protocol's groups: mdns (224.0.0.251 and ff02::fb, port "
                        "5353), ssdp (239.255.255.250, ff02::c, ff05::c, port 1900), sonos "
                        "(239.255.255.250:1900 and the broadcast on udp/6969)")
    t = p.add_argument_group("tunnel")
    t.add_argument("--tunnel-listen", metavar="[ADDR:]PORT",
                   help="wait for the other relay on this UDP port")
    t.add_argument("--tunnel-connect", metavar="HOST:PORT",
                   help="connect to the other relay (works from behind NAT)")
    t.add_argument("--key-file", metavar="FILE",
                   help="the pre-shared key (mode 0600; make one with --make-key)")
    t.add_argument("--tunnel-mtu", type=positive_int, metavar="BYTES",
                   help="largest tunnel packet (default 1472); bigger datagrams are counted "
                        "as too_big and reported")
    t.add_argument("--make-key", metavar="FILE",
                   help="write a new random key to FILE (mode 0600) and exit")
    c = p.add_argument_group("service")
    c.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file "
                   "(options given here are added on top)")
    c.add_argument("--ttl", type=int, metavar="N",
                   help="TTL / hop limit of relayed datagrams (default 1)")
    c.add_argument("--rate-limit", type=positive_float, metavar="PPS",
                   help="most datagrams per second relayed per group (excess counted)")
    c.add_argument("--preserve-source", action="store_true",
                   help="send with the original source address and port, so unicast "
                        "replies reach the original sender (raw path: needs CAP_NET_RAW)")
    c.add_argument("--rcvbuf", type=positive_int, metavar="BYTES",
                   help="receive (and tunnel send) buffer to request per socket (capped by "
                        "net.core.rmem_max); more absorbs longer bursts")
    c.add_argument("--stats", action="store_true",
                   help="show live counters (a line on a terminal, else every --interval s)")
    c.add_argument("--interval", type=positive_float, default=5.0, metavar="S",
                   help="seconds between --stats / --json lines (default 5)")
    c.add_argument("--health", metavar="ADDR:PORT",
                   help="serve /healthz, /readyz and /stats over HTTP (container probes)")
    c.add_argument("--duration", type=positive_float, metavar="S",
                   help="stop after S seconds (default: run until SIGTERM / SIGINT)")


def _bcast_arg(text: str) -> int:
    """argparse type for ``--broadcast-port PORT``."""
    try:
        return broadcast_port(text)
    except McastError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _group_arg(text: str) -> Endpoint | int:
    """argparse type for ``--group``: an endpoint, or (``255.255.255.255:PORT``) the port
    of a broadcast to relay."""
    host, sep, port = text.strip().rpartition(":")
    return _bcast_arg(port) if sep and host == BROADCAST else endpoint_arg(text)


def _usage(msg: str) -> CliError:
    return CliError(msg, ExitStatus.USAGE)


def build_config(args: argparse.Namespace) -> RelayConfig:
    """The relay's configuration: the ``--config`` file, then the options on top."""
    d = read_config(args.config) if args.config else ConfigDraft()
    given = [*args.ifaces, *args.interface, *args.listen_only]
    for name in sorted({n for n in given if given.count(n) > 1}):
        raise _usage(f"interface {name} is listed twice; name each interface once")
    for name in [*args.ifaces, *args.interface]:
        d.add_interface(name)
    for name in args.listen_only:
        d.add_interface(name, "listen-only")
    d.add_groups([g for g in args.group if not isinstance(g, int)])
    d.add_broadcast_ports([*(g for g in args.group if isinstance(g, int)),
                           *args.broadcast_port])
    for p in args.preset:
        d.add_preset(p)
    if args.ttl is not None:
        if not 0 <= args.ttl <= 255:
            raise _usage(f"--ttl {args.ttl}: use 0-255")
        d.ttl = args.ttl
    if args.rate_limit is not None:
        d.rate_limit_pps = args.rate_limit
    if args.rcvbuf is not None:
        d.rcvbuf_bytes = args.rcvbuf
    d.preserve_source = d.preserve_source or args.preserve_source
    if args.health:
        d.health = parse_host_port(args.health, "--health", port_only_ok=False)
    if args.tunnel_listen and args.tunnel_connect:
        raise _usage("give --tunnel-listen or --tunnel-connect, not both")
    if args.tunnel_listen or args.tunnel_connect:
        mode = "listen" if args.tunnel_listen else "connect"
        host, port = parse_host_port(args.tunnel_listen or args.tunnel_connect,
                                     f"--tunnel-{mode}", port_only_ok=mode == "listen")
        key = args.key_file or (d.tunnel.key_file if d.tunnel else "")
        if not key:
            raise _usage(f"--tunnel-{mode} needs --key-file FILE (make one with "
                         "'mcastkit relay --make-key FILE')")
        mtu = args.tunnel_mtu or (d.tunnel.mtu if d.tunnel else 1472)
        d.tunnel = TunnelSpec(mode="listen" if mode == "listen" else "connect", host=host,
                              port=port, key_file=key, mtu=mtu)
    elif d.tunnel is not None and (args.key_file or args.tunnel_mtu):
        d.tunnel = TunnelSpec(mode=d.tunnel.mode, host=d.tunnel.host, port=d.tunnel.port,
                              key_file=args.key_file or d.tunnel.key_file,
                              keepalive_s=d.tunnel.keepalive_s, dead_s=d.tunnel.dead_s,
                              max_backoff_s=d.tunnel.max_backoff_s,
                              mtu=args.tunnel_mtu or d.tunnel.mtu)
    elif args.key_file or args.tunnel_mtu:
        raise _usage("--key-file / --tunnel-mtu need --tunnel-listen or --tunnel-connect")
    return d.build()


class _LogToEnv(logging.Handler):
    def __init__(self, env: Env) -> None:
        super().__init__()
        self.env = env

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.env.err(f"mcastkit relay: {record.getMessage()}")


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    if args.make_key:
        make_key_file(args.make_key)
        env.out(f"wrote a new key to {args.make_key} (mode 0600); copy it to the other "
                "relay over a secure channel")
        return ExitStatus.OK
    cfg = build_config(args)
    log = logging.getLogger("mcastkit.relay")
    handler = _LogToEnv(env)
    log.addHandler(handler)
    old_level = log.level
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    log.propagate = False
    try:
        return asyncio.run(_serve(cfg, args, env))
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
        log.propagate = True


async def _serve(cfg: RelayConfig, args: argparse.Namespace, env: Env) -> ExitStatus:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    why: list[ExitStatus] = []

    def on_signal(status: ExitStatus) -> None:
        why.append(status)
        stop.set()

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, on_signal, signal_status(s))
    relay = Relay(cfg)
    progress = Progress(env, bool(args.stats) and not args.json)
    try:
        await relay.start()
        if relay.tunnel is not None:
            t = relay.tunnel
            env.err(f"mcastkit relay: tunnel {t.spec.mode} on {t.local_address[0]}:"
                    f"{t.local_address[1]}")
        deadline = loop.time() + args.duration if args.duration else None
        period = 0.25 if progress.enabled else args.interval
        while not stop.is_set() and not relay.closed:
            wait = period if deadline is None else min(period, deadline - loop.time())
            if wait <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            _report(relay, args, env, progress, final=False)
    finally:
        progress.close()
        await relay.close()
        if main_thread:
            for s in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(s)
    _report(relay, args, env, progress, final=True)
    if relay.failure is not None:
        raise CliError(f"the relay stopped: {relay.failure} (this is a bug; please report "
                       "it with the log above)")
    return why[0] if why else ExitStatus.OK


def _report(relay: Relay, args: argparse.Namespace, env: Env, progress: Progress,
            final: bool) -> None:
    st = relay.stats()
    if args.json:
        obj: dict[str, Any] = {"type": "summary" if final else "stats", **st.as_dict()}
        emit_json(env, obj)
    elif final:
        env.out(f"summary: {st.line()}")
    elif progress.enabled:
        progress.update(st.line())
    elif args.stats:
        env.out(f"stats: {st.line()}")
