"""Read the kernel's multicast and UDP state for the calling thread's network namespace.

Which /proc path follows which namespace (verified on Linux 6.18, see
tests/selftest/test_lab_infra.py::test_proc_thread_self_follows_thread):

- ``/proc/thread-self/net/*`` shows the namespace of the *calling thread*. Everything
  here reads that, so it works inside ``Netns.enter()`` from any thread.
- ``/proc/net`` is a symlink to ``self/net`` and ``/proc/self`` is the thread-group
  leader, so it shows the *main thread's* namespace. It only agrees with the above when
  called from the main thread.

Every parser takes the file text, so it can be unit-tested on sample output; the
``read_*``-style wrappers read the live file.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

PROC = "/proc/thread-self/net"


def _read(name: str) -> str:
    with open(f"{PROC}/{name}") as f:
        return f.read()


def _v4_host_hex(h: str) -> str:
    """An address printed as a raw host-order u32 (``%08X`` of a __be32)."""
    return socket.inet_ntoa(int(h, 16).to_bytes(4, sys.byteorder))


def _v4_ntohl_hex(h: str) -> str:
    """An address printed after ntohl (``0x%08x``): plain big-endian hex."""
    return socket.inet_ntoa(int(h, 16).to_bytes(4, "big"))


def _v6_hex(h: str) -> str:
    """32 hex digits (igmp6, mcfilter6) or the full colon form (ip6_mr_cache)."""
    return str(ipaddress.IPv6Address(h if ":" in h else bytes.fromhex(h)))


# --- memberships ---------------------------------------------------------------
def parse_igmp(text: str) -> set[tuple[str, str]]:
    """/proc/net/igmp -> {(ifname, group)}.

    Device lines are ``idx<TAB>name : count querier``; the group lines below them are
    indented with tabs and show the group as the raw __be32 printed with ``%08X``, i.e.
    byte-reversed on little-endian hosts (239.255.0.1 -> ``0100FFEF``).
    """
    out: set[tuple[str, str]] = set()
    dev = ""
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        if line[0].isdigit():
            dev = line.split()[1].rstrip(":")
        elif dev:
            out.add((dev, _v4_host_hex(line.split()[0])))
    return out


def parse_igmp6(text: str) -> set[tuple[str, str]]:
    """/proc/net/igmp6 -> {(ifname, group)}; groups are 32 hex digits, network order."""
    out: set[tuple[str, str]] = set()
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 3 and len(f[2]) == 32:
            out.add((f[1], _v6_hex(f[2])))
    return out


def parse_mcfilter(text: str) -> set[tuple[str, str, str, int, int]]:
    """/proc/net/mcfilter -> {(ifname, group, source, include, exclude)} (``0x%08x`` ntohl)."""
    out: set[tuple[str, str, str, int, int]] = set()
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) == 6:
            out.add((f[1], _v4_ntohl_hex(f[2]), _v4_ntohl_hex(f[3]), int(f[4]), int(f[5])))
    return out


def parse_mcfilter6(text: str) -> set[tuple[str, str, str, int, int]]:
    """/proc/net/mcfilter6 -> {(ifname, group, source, include, exclude)}."""
    out: set[tuple[str, str, str, int, int]] = set()
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) == 6 and len(f[2]) == 32:
            out.add((f[1], _v6_hex(f[2]), _v6_hex(f[3]), int(f[4]), int(f[5])))
    return out


def igmp_groups() -> set[tuple[str, str]]:
    """IPv4 device memberships, including the kernel's own 224.0.0.1."""
    return parse_igmp(_read("igmp"))


def igmp6_groups() -> set[tuple[str, str]]:
    """IPv6 device memberships, including ff02::1 etc."""
    return parse_igmp6(_read("igmp6"))


def memberships() -> set[tuple[str, str]]:
    """IPv4 and IPv6 device memberships together."""
    return igmp_groups() | igmp6_groups()


def source_filters() -> set[tuple[str, str, str, int, int]]:
    """IPv4 and IPv6 per-device source filters (``/proc/net/mcfilter`` and ``mcfilter6``).

    Kernel quirk (measured for ``mcfilter6`` on 6.18): the file starts listing a device
    only if the group at the head of its list (the one joined last) has sources, so a
    group joined after an SSM join (e.g. the solicited-node group of a just-added IPv6
    address, joined later by the kernel's DAD work) hides that device's rows. Let such
    joins finish first.
    """
    return parse_mcfilter(_read("mcfilter")) | parse_mcfilter6(_read("mcfilter6"))


# --- counters --------------------------------------------------------------------
def parse_snmp(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/snmp or /proc/net/netstat: header/value line pairs -> {section: {k: v}}."""
    out: dict[str, dict[str, int]] = {}
    lines = text.splitlines()
    for head, vals in zip(lines[::2], lines[1::2], strict=False):
        sect, _, keys = head.partition(":")
        _, _, values = vals.partition(":")
        out[sect] = dict(zip(keys.split(), (int(v) for v in values.split()), strict=False))
    return out


def parse_snmp6(text: str, prefix: str = "Udp6") -> dict[str, int]:
    """/proc/net/snmp6 ``Name value`` lines starting with ``prefix`` (prefix removed)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 2 and f[0].startswith(prefix) and not f[0].startswith(prefix + "Lite"):
            out[f[0][len(prefix):]] = int(f[1])
    return out


def udp_counters(family: int = socket.AF_INET) -> dict[str, int]:
    """UDP MIB of this namespace: InDatagrams, NoPorts, InErrors, OutDatagrams,
    RcvbufErrors, SndbufErrors, InCsumErrors, IgnoredMulti, MemErrors. Same keys for
    AF_INET (/proc/net/snmp ``Udp:``) and AF_INET6 (/proc/net/snmp6 ``Udp6*``)."""
    if family == socket.AF_INET6:
        return parse_snmp6(_read("snmp6"))
    return parse_snmp(_read("snmp"))["Udp"]


def netstat_counters() -> dict[str, dict[str, int]]:
    """/proc/net/netstat sections (TcpExt, IpExt, MPTcpExt...) like ``nstat -az``."""
    return parse_snmp(_read("netstat"))


def rp_filter_drops() -> int:
    """``TcpExt IPReversePathFilter``: packets dropped by rp_filter (IPv4, per namespace)."""
    return netstat_counters()["TcpExt"]["IPReversePathFilter"]


def parse_udp_drops(text: str, inode: int) -> int | None:
    """The ``drops`` column (last) of /proc/net/udp(6) for the row with this inode."""
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 13 and f[9] == str(inode):
            return int(f[-1])
    return None


def parse_udp_queued(text: str, port: int) -> int:
    """Bytes waiting in the receive queues (``rx_queue``) of the sockets of /proc/net/udp(6)
    bound to ``port``."""
    total = 0
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 5 and f[1].endswith(f":{port:04X}"):
            total += int(f[4].split(":")[1], 16)
    return total


def udp_queued(port: int, family: int = socket.AF_INET) -> int:
    """Bytes not yet read by the UDP sockets of this namespace bound to ``port``."""
    return parse_udp_queued(_read("udp6" if family == socket.AF_INET6 else "udp"), port)


def socket_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped for this UDP socket (receive buffer full etc.).

    The socket must live in the calling thread's namespace (enter it first)."""
    ino = os.fstat(sock.fileno()).st_ino
    name = "udp6" if sock.family == socket.AF_INET6 else "udp"
    found = parse_udp_drops(_read(name), ino)
    if found is None:
        raise LookupError(f"inode {ino} not in /proc/thread-self/net/{name} (other netns?)")
    return found


# --- multicast routing (for routers) -------------------------------------------------
def parse_ip_mr_vif(text: str) -> dict[int, str]:
    """/proc/net/ip_mr_vif or ip6_mr_vif -> {vif index: ifname}."""
    out: dict[int, str] = {}
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 2 and f[0].isdigit():
            out[int(f[0])] = f[1]
    return out


def parse_ip_mr_cache(text: str, v6: bool = False) -> dict[tuple[str, str], dict[int, int]]:
    """/proc/net/ip_mr_cache (or ip6_mr_cache) -> {(source, group): {oif vif: ttl}}.

    IPv4 addresses are raw __be32 ``%08X`` (host order); IPv6 are in full colon form.
    The Oifs column is ``vif:ttl-threshold`` pairs. Unresolved entries have no oifs."""
    out: dict[tuple[str, str], dict[int, int]] = {}
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 6:
            continue
        conv = _v6_hex if v6 else _v4_host_hex
        grp, src = conv(f[0]), conv(f[1])
        oifs = (x.split(":") for x in f[6:] if ":" in x)
        out[(src, grp)] = {int(v): int(t) for v, t in oifs}
    return out


def mroute_vifs(v6: bool = False) -> dict[int, str]:
    return parse_ip_mr_vif(_read("ip6_mr_vif" if v6 else "ip_mr_vif"))


def mroute_cache(v6: bool = False) -> dict[tuple[str, str], dict[int, int]]:
    return parse_ip_mr_cache(_read("ip6_mr_cache" if v6 else "ip_mr_cache"), v6)
