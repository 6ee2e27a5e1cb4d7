"""``mcastkit interfaces``: the interfaces of this network namespace and their groups.

Owns: listing index, name, flags, MTU, addresses and joined groups (from
/proc/thread-self/net/igmp and igmp6) as text or JSON lines.
Must not: make socket calls outside the public core.
"""

from __future__ import annotations

import argparse

from mcastkit import list_interfaces

from .._common import emit_json, interface_of
from .._env import Env
from .._procnet import joined_groups
from .._status import ExitStatus

HELP = "list interfaces, their flags, addresses and joined groups"
DESCRIPTION = """\
List the interfaces of the current network namespace: index, name, flags (UP,
MULTICAST...), MTU, addresses, and the multicast groups joined on each (by any process
of this namespace, as /proc/net/igmp and /proc/net/igmp6 report them)."""
EXAMPLES = """\
  mcastkit interfaces
  mcastkit interfaces -i eth0
  mcastkit interfaces --json | jq 'select(.multicast)'"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interface", metavar="IFACE",
                   help="show only this interface (name, index or address)")


def run(args: argparse.Namespace, env: Env) -> ExitStatus:
    only = interface_of(args.interface)
    groups = joined_groups()
    for itf in list_interfaces():
        if only is not None and itf.index != only.index:
            continue
        fl = itf.flags
        addrs = [str(a) for a in itf.addresses]
        joined = groups.get(itf.name, [])
        if args.json:
            emit_json(env, {
                "type": "interface", "index": itf.index, "name": itf.name,
                "flags": str(fl).split(",") if fl and str(fl) != "-" else [],
                "up": fl.up if fl else None, "multicast": fl.multicast if fl else None,
                "mtu": itf.mtu, "addresses": addrs, "groups": joined})
            continue
        env.out(f"{itf.index}: {itf.name} <{fl if fl else '?'}> mtu {itf.mtu}")
        for a in addrs:
            env.out(f"    addr  {a}")
        for g in joined:
            env.out(f"    group {g}")
    return ExitStatus.OK
