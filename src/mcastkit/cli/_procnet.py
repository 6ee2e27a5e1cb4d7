"""Reading the kernel's view of the current network namespace from /proc.

Owns: pure parsers (text in, values out: unit-testable on samples) and small readers
for ``/proc/thread-self/net/{igmp,igmp6,if_inet6,snmp,snmp6}`` and per-namespace
sysctls. ``/proc/thread-self`` follows the calling thread's namespace; ``/proc/net``
would follow the main thread's.
Must not: make socket calls or change anything.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from dataclasses import dataclass

__all__ = [
    "V6Address",
    "joined_groups",
    "parse_if_inet6",
    "parse_igmp",
    "parse_igmp6",
    "parse_snmp",
    "parse_snmp6",
    "read_net",
    "read_sysctl",
]

PROC_NET = "/proc/thread-self/net"
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40


def read_net(name: str) -> str | None:
    """The text of /proc/thread-self/net/NAME, or None if unreadable."""
    try:
        with open(f"{PROC_NET}/{name}") as f:
            return f.read()
    except OSError:
        return None


def read_sysctl(key: str) -> str | None:
    """A sysctl (``net.ipv4.conf.all.rp_filter``) of the current namespace, or None."""
    try:
        with open("/proc/sys/" + key.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return None


def parse_igmp(text: str) -> list[tuple[str, str]]:
    """/proc/net/igmp -> [(ifname, group)]. Group lines hold the __be32 as ``%08X``."""
    out: list[tuple[str, str]] = []
    dev = ""
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        if line[0].isdigit():
            dev = line.split()[1].rstrip(":")
        elif dev:
            h = line.split()[0]
            try:
                out.append((dev, socket.inet_ntoa(int(h, 16).to_bytes(4, sys.byteorder))))
            except (ValueError, OverflowError):
                continue
    return out


def parse_igmp6(text: str) -> list[tuple[str, str]]:
    """/proc/net/igmp6 -> [(ifname, group)] (32 hex digits, network order)."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 3 and len(f[2]) == 32:
            try:
                out.append((f[1], str(ipaddress.IPv6Address(bytes.fromhex(f[2])))))
            except ValueError:
                continue
    return out


def joined_groups() -> dict[str, list[str]]:
    """{ifname: [groups]} joined by anyone in this namespace (IPv4 and IPv6)."""
    out: dict[str, list[str]] = {}
    for name, parser in (("igmp", parse_igmp), ("igmp6", parse_igmp6)):
        text = read_net(name)
        if text:
            for dev, g in parser(text):
                out.setdefault(dev, []).append(g)
    return out


@dataclass(frozen=True, slots=True)
class V6Address:
    address: str
    ifname: str
    flags: int

    @property
    def tentative(self) -> bool:
        return bool(self.flags & IFA_F_TENTATIVE)

    @property
    def dad_failed(self) -> bool:
        return bool(self.flags & IFA_F_DADFAILED)


def parse_if_inet6(text: str) -> list[V6Address]:
    """/proc/net/if_inet6: ``addr ifindex prefixlen scope flags name`` (hex fields)."""
    out: list[V6Address] = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 6 and len(f[0]) == 32:
            try:
                addr = str(ipaddress.IPv6Address(bytes.fromhex(f[0])))
                out.append(V6Address(addr, f[5], int(f[4], 16)))
            except ValueError:
                continue
    return out


def parse_snmp(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/snmp: pairs of ``Proto: names`` / ``Proto: values`` lines."""
    out: dict[str, dict[str, int]] = {}
    lines = text.splitlines()
    for head, vals in zip(lines[::2], lines[1::2], strict=False):
        hp, _, hn = head.partition(":")
        vp, _, vv = vals.partition(":")
        if hp != vp:
            continue
        try:
            out[hp] = dict(zip(hn.split(), (int(v) for v in vv.split()), strict=False))
        except ValueError:
            continue
    return out


def parse_snmp6(text: str) -> dict[str, int]:
    """/proc/net/snmp6: ``Name value`` lines."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 2:
            try:
                out[f[0]] = int(f[1])
            except ValueError:
                continue
    return out
