"""``mcastkit doctor``: find and explain what stops multicast on this host.

Owns: the verb: which checks run for a target (route and join, interface, rp_filter,
membership limit, buffers, firewall, IP_MULTICAST_ALL, IPv6 DAD, TTL to a peer, UDP
error counters over a time window), a probe datagram sent through this namespace's own
input path, and the report (text, coloured on a terminal unless NO_COLOR; or JSON with
each finding's fix commands). Exit 1 when any finding is a problem.
Must not: change any setting (its only trace is the one probe datagram, which
``--no-probe`` turns off); make socket calls outside the public core.
"""

from __future__ import annotations

import argparse
import errno
import os
import time
from dataclasses import asdict

from mcastkit import (
    Endpoint,
    ErrorCode,
    Group,
    Interface,
    McastError,
    MulticastSocket,
    ReceiveTimeoutError,
    list_interfaces,
    parse_endpoint,
)

from .._common import CliError, cli_message, emit_json, interface_of, nonneg_float
from .._doctor_checks import (
    Finding,
    check_backend,
    check_buffers,
    check_counters,
    check_dad,
    check_interface,
    check_memberships,
    check_rp_filter,
    check_ttl,
    read_counters,
)
from .._env import Env
from .._firewall import check_firewall
from .._status import ExitStatus
from .._style import paint

HELP = "check this host for common multicast problems and explain the fixes"
DESCRIPTION = """\
Check the current network namespace for what commonly breaks multicast: no route or
no usable interface for the group, an interface that is down, lacks the MULTICAST flag,
has no carrier or no IPv4 address, IPv6 over lo, strict reverse-path filtering on a
multi-homed host, a low igmp_max_memberships, small socket buffers, nftables rules
dropping the group's datagrams or IGMP (judged from 'nft -j list ruleset', with the
table, chain and rule that drop), IPv6 addresses still in duplicate address detection,
a TTL too low to reach a peer behind a router (--peer), and UDP buffer errors that
grow while it runs. With GROUP:PORT it also sends a probe datagram through this host's
own input path (one datagram with TTL 1; --no-probe skips it). Each finding has a
severity (ok, info, warning, error), why it matters, and a fix; fixes that are commands
are printed so they can be run as written. Exit 1 when any warning or error is found.
Nothing is changed."""
EXAMPLES = """\
  mcastkit doctor
  mcastkit doctor 239.255.0.1:5000 -i eth0
  mcastkit doctor [ff15::1]:5000 -i eth0 --json
  mcastkit doctor 239.255.0.9:4321 -i eth0 --peer 198.18.2.10 --ttl 1   # across a router?
  mcastkit doctor 239.255.0.1 --all        # also show the checks that passed"""

PROBE_WAIT_S = 0.5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", metavar="GROUP[:PORT]",
                   help="group (and port) to check the route, join, firewall and probe for")
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="interface to check (name, index or address); default: the route's")
    p.add_argument("--peer", metavar="ADDRESS",
                   help="a host that should receive (or send) the group: is it behind a "
                        "router that --ttl cannot cross?")
    p.add_argument("--ttl", type=int, default=1, metavar="N",
                   help="the TTL your senders use, judged against --peer (default 1)")
    p.add_argument("--window", type=nonneg_float, default=1.0, metavar="S",
                   help="watch the UDP error counters for S seconds: only growth is a "
                        "problem (default 1)")
    p.add_argument("--no-probe", dest="probe", action="store_false",
                   help="do not send the probe datagram (it goes to GROUP:PORT with TTL 1: "
                        "local listeners and hosts on the link see one datagram)")
    p.add_argument("--all", action="store_true", help="also print the checks that passed")


def _target(text: str | None) -> Endpoint | None:
    if text is None:
        return None
    try:
        return parse_endpoint(text, default_port=0)
    except McastError as exc:
        msg = cli_message(exc.message)
        for echo in (f"{text!r}: ", f"{text}: "):  # the core quotes the input; say it once
            msg = msg.removeprefix(echo)
        raise CliError(f"GROUP[:PORT] {text!r}: {msg}", ExitStatus.USAGE) from None


def check_join(ep: Endpoint | None, iface: Interface | None) -> tuple[list[Finding],
                                                                         Interface | None]:
    """Join the group for real (through the core) to find the interface and any error."""
    if ep is None:
        return [Finding("route", "info", "no GROUP given: route and join not checked",
                        fix="run 'mcastkit doctor GROUP[:PORT] -i IFACE'")], iface
    out: list[Finding] = []
    g: Group = ep.group
    try:
        with MulticastSocket(g.version, interface=iface) as s:
            s.bind(0)
            m = s.join_source(ep.source, g) if ep.source is not None else s.join(g)
            chosen = iface
            if chosen is None:
                chosen = next((i for i in list_interfaces() if i.index == m.ifindex), None)
            out.append(Finding("join", "ok", f"joined {g} on {m.ifname}"))
            return out, chosen
    except McastError as exc:
        if exc.code is ErrorCode.NO_ROUTE:
            out.append(Finding(
                "route", "error", f"no multicast route for {g}",
                "there is no route that covers the group, so the kernel cannot choose an "
                "interface for joins and sends (typical of containers and hosts without a "
                "default route)",
                f"pass -i IFACE to every program, or add a route: "
                f"ip route add {'224.0.0.0/4' if g.version == 4 else 'ff00::/8'} dev IFACE"))
        else:
            out.append(Finding("join", "error", f"joining {g} failed", exc.message,
                               "see the detail; 'mcastkit interfaces' lists the interfaces"))
        return out, iface


def check_multicast_all() -> list[Finding]:
    return [Finding(
        "multicast_all", "info", "IP_MULTICAST_ALL defaults to 1 on Linux",
        "a socket bound to 0.0.0.0:PORT receives every group that any socket of this "
        "namespace joined on that port; mcastkit turns it off on its own sockets",
        "in other programs set IP_MULTICAST_ALL=0 or bind to the group address")]


def probe(ep: Endpoint | None, itf: Interface | None) -> list[Finding]:
    """Send one datagram to GROUP:PORT out of ``itf`` with loopback on, and see whether
    it comes back in through this namespace's input path (routing, the nftables input
    hooks, the socket lookup): the kernel's own answer. Rules on ``meta pkttype
    multicast`` do not see it (a looped copy is ``loopback``); the ruleset check does."""
    if ep is None or not ep.port or itf is None:
        return []
    if ep.source is not None:
        return [Finding("probe", "info", "probe skipped for a source-specific group",
                        "only the source itself can send to it")]
    token = b"mcastkit-doctor-probe " + os.urandom(8).hex().encode()
    try:
        try:
            came_back = _probe_once(ep, itf, token, share=False)
        except McastError as exc:
            if getattr(exc, "errno", None) != errno.EADDRINUSE:
                raise
            # the port is held; a holder that shares it (SO_REUSEPORT, same user) lets the
            # probe in for half a second, one that does not leaves nothing to probe with
            came_back = _probe_once(ep, itf, token, share=True)
    except McastError as exc:
        if getattr(exc, "errno", None) == errno.EADDRINUSE:
            return [Finding("probe", "info", f"probe skipped: port {ep.port} is in use",
                            "another program holds the port without sharing it; stop it to "
                            "let doctor probe, or run doctor with a free port")]
        return [Finding("probe", "info", "probe could not run", cli_message(exc.message))]
    if came_back:
        return [Finding("probe", "ok", f"a probe datagram to {ep} went out {itf.name} and "
                        "came back in through this host's input path (routing, firewall "
                        "input hooks, socket lookup)")]
    return [Finding("probe", "error",
                    f"a probe datagram to {ep} sent out {itf.name} never came back in",
                    "this host's own input path drops it: see the firewall and interface "
                    "findings; if none explains it, an iptables-legacy rule, a tc/eBPF "
                    "filter or an LSM policy does",
                    "fix what the other findings name, then run doctor again")]


def _probe_once(ep: Endpoint, itf: Interface, token: bytes, *, share: bool) -> bool:
    """Whether ``token`` sent to ``ep`` out of ``itf`` comes back within PROBE_WAIT_S."""
    g = ep.group
    with MulticastSocket(g.version, interface=itf, metadata=True, reuse_port=share) as rx, \
            MulticastSocket(g.version, interface=itf, ttl=1, loopback=True) as tx:
        rx.bind(ep.port)
        rx.join(g)
        tx.sendto(token, str(g), ep.port)
        deadline = time.monotonic() + PROBE_WAIT_S  # one deadline, whatever else arrives
        while (left := deadline - time.monotonic()) > 0:
            try:
                if rx.recv(timeout_s=left).data == token:
                    return True
            except ReceiveTimeoutError:
                break
        return False


# ----------------------------------------------------------------------------- run

def diagnose(ep: Endpoint | None, iface: Interface | None, *, peer: str | None = None,
             ttl: int = 1, window_s: float = 1.0, env: Env | None = None,
             send_probe: bool = True) -> list[Finding]:
    """Every finding for ``ep`` on ``iface`` (None: the route's / all interfaces)."""
    t0 = env.monotonic() if env else 0.0
    before = read_counters()
    findings, chosen = check_join(ep, iface)
    all_ifaces = list_interfaces()
    if chosen is not None:
        targets = [next((i for i in all_ifaces if i.index == chosen.index), chosen)]
    else:
        targets = [i for i in all_ifaces if not (i.flags and i.flags.loopback)] or all_ifaces
    version = ep.group.version if ep is not None else None
    for itf in targets:
        findings += check_interface(itf, version)
    findings += check_rp_filter(targets, all_ifaces)
    findings += check_memberships()
    findings += check_buffers()
    findings += check_backend()
    if send_probe:
        findings += probe(ep, chosen)  # before the firewall check: its counters include it
    findings += check_firewall(ep, chosen.name if chosen is not None else "")
    findings += check_multicast_all()
    if ep is None or ep.group.version == 6:
        findings += check_dad(targets)
    findings += check_ttl(peer, ttl)
    if env is not None:
        left = window_s - (env.monotonic() - t0)
        if left > 0:
            env.sleep(left)
    findings += check_counters(before, read_counters(), window_s)
    return findings


_STYLE = {"ok": "green", "info": "cyan", "warning": "yellow", "error": "bold red"}


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    ep = _target(args.target)
    iface = interface_of(args.interface)
    if not 0 <= args.ttl <= 255:
        raise CliError(f"--ttl {args.ttl}: use 0-255", ExitStatus.USAGE)
    findings = diagnose(ep, iface, peer=args.peer, ttl=args.ttl, window_s=args.window,
                        env=env, send_probe=args.probe)
    problems = [f for f in findings if f.problem]
    for f in findings:
        if args.json:
            d = asdict(f)
            d["commands"] = list(f.commands)
            emit_json(env, {"type": "finding", **d, "problem": f.problem})
            continue
        if f.severity == "ok" and not args.all:
            continue
        if args.quiet and not f.problem:
            continue
        tag = paint(env, f"[{f.severity.upper()}]", _STYLE[f.severity])
        env.out(f"{tag} {f.title}")
        if f.detail:
            env.out(f"    why: {f.detail}")
        if f.fix:
            env.out(f"    fix: {f.fix}")
        for c in f.commands:
            env.out(f"    run: {c}")
    if args.json:
        emit_json(env, {"type": "summary", "findings": len(findings), "problems": len(problems)})
    else:
        env.out(paint(env, f"{len(problems)} problem(s) found", "bold red") if problems
                else paint(env, "no problems found", "green"))
    return ExitStatus.ERROR if problems else ExitStatus.OK
