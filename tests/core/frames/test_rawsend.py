"""The raw send path (mcastkit._rawsend) against real kernels: two namespaces joined by a
veth pair, frames sent raw from ``a`` and received on ``b`` by a normal MulticastSocket (so
the peer kernel accepted the IP and UDP checksums) and by ``tcpdump -w``, decoded twice:
by ``tcpdump -r -vv -e`` (an independent decoder that verifies the checksums itself) and
by mcastkit._frames.

Owns: issue 8 item 3 evidence: MAC, TTL / hop limit, DSCP, DF, checksums for IPv4 and
IPv6, broadcast, source preservation, batches, the MTU refusal, and the typed errors
(no CAP_NET_RAW, lo, tun, unknown interface, malformed MAC, IPv6 broadcast).
Must not: prove non-delivery with a sleep (a sentinel sent afterwards must be the next
datagram received), leave the test namespaces.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mcastkit import (
    ClosedError,
    DatagramTooLargeError,
    ErrorCode,
    InterfaceError,
    InterfaceNotFoundError,
    McastValueError,
    MulticastSocket,
)
from mcastkit._frames import (
    BROADCAST_MAC,
    format_mac,
    multicast_mac,
    parse_ip_packet,
    parse_udp,
)
from mcastkit._rawsend import RawDatagram, RawSender
from tests.support.addrs import G6, VETH_B, VETH_BCAST, lab_host
from tests.support.fixtures import require_or_skip
from tests.support.kernel import WAIT_S, drain, group4, group6
from tests.support.netns import Netns
from tests.support.peers import PcapCapture
from tests.support.topology import VethPair, new_port

pytestmark = pytest.mark.kernel
IF = "eth0"


# ------------------------------------------------------------------ capture on the peer


@dataclass
class Link:
    pair: VethPair
    tmp: Path
    port: int
    captures: list[PcapCapture] = field(default_factory=list)

    def rx(self, version: int, group: str) -> MulticastSocket:
        with self.pair.b.enter():
            rx = MulticastSocket(version, interface=IF, metadata=True)
            rx.bind(self.port)
            rx.join(group)
            if version == 4:
                rx.sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
            else:
                rx.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
        return rx

    def tx(self, **kw: object) -> RawSender:
        with self.pair.a.enter():
            return RawSender(IF, **kw)  # type: ignore[arg-type]

    def capture(self, count: int, iface: str = IF) -> PcapCapture:
        cap = PcapCapture(self.pair.b, self.port, count, self.tmp / f"cap{self.port}.pcap", iface)
        self.captures.append(cap)
        return cap

    def mac_a(self) -> str:
        return self.pair.a.ip("-o", "link", "show", IF).stdout.split("link/ether ")[1].split()[0]


@pytest.fixture
def link(veth_pair: VethPair, tmp_path: Path) -> Iterator[Link]:
    lk = Link(veth_pair, tmp_path, new_port())
    yield lk
    for cap in lk.captures:  # a failed test must not leave tcpdump waiting for frames
        if cap.proc.poll() is None:
            cap.proc.kill()
        cap.proc.wait()
        if cap.proc.stderr is not None:
            cap.proc.stderr.close()


def only_sentinel(rx: MulticastSocket, tx: RawSender, group: str, port: int) -> None:
    """Prove that nothing was sent before: a sentinel sent now is the next datagram."""
    tx.send(b"sentinel", group, port, sport=9999)
    assert rx.recv(WAIT_S).data == b"sentinel"
    assert drain(rx) == []


# ------------------------------------------------------------------ IPv4 and IPv6 frames


def test_ipv4_frame_is_accepted_by_the_peer_and_decodes(link: Link) -> None:
    g = group4()
    with link.rx(4, g) as rx, link.tx(ttl=5, dscp=46, dont_fragment=True) as tx:
        cap = link.capture(2)
        tx.send(b"one", g, link.port, sport=4321)
        tx.send(b"two", g, link.port, sport=4321, ttl=9, dscp=0)
        got = [rx.recv(WAIT_S), rx.recv(WAIT_S)]
        assert tx.src_mac == link.mac_a()
    assert [(d.data, d.source, d.port, d.group, d.ttl, d.tos) for d in got] == [
        (b"one", link.pair.addr_a, 4321, g, 5, 46 << 2),
        (b"two", link.pair.addr_a, 4321, g, 9, 0)]
    frames = cap.frames()
    ips = [parse_ip_packet(f.payload) for f in frames]
    for f, ip in zip(frames, ips, strict=True):
        assert f.dst_mac == multicast_mac(g) and format_mac(f.src_mac or b"") == link.mac_a()
        assert ip.header_checksum_ok and ip.dont_fragment and not ip.is_fragment
        assert parse_udp(ip).checksum_ok is True
    assert (ips[0].ttl, ips[0].dscp, ips[1].ttl, ips[1].dscp) == (5, 46, 9, 0)
    assert ips[1].ident == (ips[0].ident or 0) + 1 & 0xFFFF  # a fresh id per packet
    text = cap.text()
    assert all("udp sum ok" in t and "bad cksum" not in t for t in text), text
    assert f"> {format_mac(multicast_mac(g))}" in text[0] and "tos 0xb8" in text[0]
    assert "ttl 5" in text[0] and "[DF]" in text[0] and "ttl 9" in text[1]


def test_ipv6_frame_is_accepted_by_the_peer_and_decodes(link: Link) -> None:
    g = group6()
    with link.rx(6, g) as rx, link.tx(ttl=3, dscp=10) as tx:
        cap = link.capture(1)
        tx.send(b"six", g, link.port, sport=4322, ecn=1)
        d = rx.recv(WAIT_S)
    assert (d.data, d.source.split("%")[0], d.port, d.ttl, d.tos) == (
        b"six", link.pair.ll_a, 4322, 3, 10 << 2 | 1)
    (f,) = cap.frames()
    ip = parse_ip_packet(f.payload)
    assert f.dst_mac == multicast_mac(g) and format_mac(f.src_mac or b"") == link.mac_a()
    assert (ip.version, ip.hop_limit, ip.dscp, ip.ecn, str(ip.src)) == (
        6, 3, 10, 1, link.pair.ll_a)
    assert parse_udp(ip).checksum_ok is True
    (t,) = cap.text()
    assert f"> {format_mac(multicast_mac(g))}" in t and "hlim 3" in t and "class 0x29" in t
    assert "udp sum ok" in t, t


def test_a_cooked_capture_on_any_decodes_too(link: Link) -> None:
    """``tcpdump -i any`` writes Linux cooked frames (SLL2 since libpcap 1.10, SLL
    before): what a replay will read back."""
    g = group6()
    with link.rx(6, g) as rx, link.tx(ttl=2) as tx:
        cap = link.capture(1, iface="any")
        tx.send(b"cooked", g, link.port, sport=4323)
        assert rx.recv(WAIT_S).data == b"cooked"
    (f,) = cap.frames()
    assert cap.linktype in (113, 276)
    assert (f.ethertype, f.packet_type, format_mac(f.src_mac or b"")) == (
        0x86DD, 2, link.mac_a())  # 2: PACKET_MULTICAST
    if cap.linktype == 276:
        assert f.ifindex == link.pair.ifindex_b
    udp = parse_udp(parse_ip_packet(f.payload))
    assert (udp.payload, udp.sport, udp.checksum_ok) == (b"cooked", 4323, True)


def test_source_mac_and_source_address_are_the_given_ones(link: Link) -> None:
    """What SourceMacAddress and a source-preserving relay need: the peer sees exactly
    the MAC and the source address the sender chose, not the interface's."""
    g = group4()
    with link.rx(4, g) as rx, link.tx(src_mac="02-00-5E-10-00-01") as tx:
        cap = link.capture(1)
        tx.send(b"relayed", g, link.port, sport=5353, src=lab_host(7, 7))
        d = rx.recv(WAIT_S)
    assert (d.data, d.source, d.port) == (b"relayed", lab_host(7, 7), 5353)
    (f,) = cap.frames()
    assert f.src_mac == bytes.fromhex("02005e100001")
    assert "02:00:5e:10:00:01 >" in cap.text()[0]


def test_limited_and_directed_broadcast(link: Link) -> None:
    with link.pair.b.enter():
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with plain, link.tx() as tx:
        plain.bind(("", link.port))
        plain.settimeout(WAIT_S)
        cap = link.capture(2)
        tx.send(b"limited", "255.255.255.255", link.port, sport=68)
        tx.send(b"directed", VETH_BCAST, link.port, sport=68, dst_mac=BROADCAST_MAC)
        got = [plain.recvfrom(100), plain.recvfrom(100)]
    assert got == [(b"limited", (link.pair.addr_a, 68)), (b"directed", (link.pair.addr_a, 68))]
    frames = cap.frames()
    assert [f.dst_mac for f in frames] == [BROADCAST_MAC, BROADCAST_MAC]
    assert all(parse_udp(parse_ip_packet(f.payload)).checksum_ok for f in frames)


def test_batch_keeps_order_and_bad_input_sends_nothing(link: Link) -> None:
    g = group4()
    with link.rx(4, g) as rx, link.tx() as tx:
        n = tx.send_batch([RawDatagram(bytes([i]) * 10, g, link.port, 1000 + i)
                           for i in range(3)])
        assert n == 3 * (14 + 20 + 8 + 10) and tx.frames_sent == 3
        got = [rx.recv(WAIT_S) for _ in range(3)]
        assert [(d.data, d.port) for d in got] == [(bytes([i]) * 10, 1000 + i)
                                                   for i in range(3)]
        bad = [RawDatagram(b"ok", g, link.port, 1), RawDatagram(b"x", g, link.port, 70000)]
        with pytest.raises(McastValueError, match="source port"):
            tx.send_batch(bad)
        assert tx.frames_sent == 3
        only_sentinel(rx, tx, g, link.port)


def test_over_the_mtu_is_refused_not_fragmented(link: Link) -> None:
    g = group4()
    with link.rx(4, g) as rx, link.tx() as tx:
        assert tx.interface.mtu == 1500
        with pytest.raises(DatagramTooLargeError, match="at most 1472 bytes") as e:
            tx.send(bytes(1473), g, link.port, sport=1)
        assert e.value.code == ErrorCode.DATAGRAM_TOO_LARGE and "MTU" in str(e.value)
        only_sentinel(rx, tx, g, link.port)
        tx.send(bytes(1472), g, link.port, sport=1)
        assert len(rx.recv(WAIT_S).data) == 1472


def test_ipv6_broadcast_and_wrong_family_are_typed_and_send_nothing(link: Link) -> None:
    g = group4()
    with link.rx(4, g) as rx, link.tx() as tx:
        with pytest.raises(McastValueError, match=r"IPv6 has no broadcast.*ff02::1") as e:
            tx.send(b"x", G6, link.port, sport=1, dst_mac=BROADCAST_MAC)
        assert e.value.code == ErrorCode.WRONG_FAMILY
        with pytest.raises(McastValueError, match="different IP versions") as e:
            tx.send(b"x", "255.255.255.255", link.port, sport=1, src="fe80::1")
        with pytest.raises(McastValueError, match="dst_mac="):
            tx.send(b"x", VETH_B, link.port, sport=1)
        assert tx.frames_sent == 0
        only_sentinel(rx, tx, g, link.port)


# ------------------------------------------------------------------ refusals


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_without_cap_net_raw_a_typed_error_names_it_and_nothing_is_sent(link: Link) -> None:
    if shutil.which("setpriv") is None:
        require_or_skip("setpriv (util-linux) is needed to drop CAP_NET_RAW")
    g = group4()
    code = (
        "from mcastkit._rawsend import RawSender\n"
        "from mcastkit import McastOSError\n"
        "try:\n"
        f"    RawSender('{IF}').send(b'leak', '{g}', {link.port}, sport=1)\n"
        "except McastOSError as e:\n"
        "    print(type(e).__name__, int(e.code), e.errno, e.message)\n"
    )
    with link.rx(4, g) as rx:
        r = link.pair.a.run("setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw",
                            sys.executable, "-c", code, check=False)
        with link.tx() as tx:
            only_sentinel(rx, tx, g, link.port)
    assert r.returncode == 0, r.stderr
    name, num, err, message = r.stdout.split(" ", 3)
    assert (name, int(num), int(err)) == ("McastOSError", ErrorCode.PERMISSION, 1)
    assert "CAP_NET_RAW" in message and "nothing was sent" in message


@pytest.mark.parametrize("mac", ["02:00:5e:10:00", "0200.5e10.0001", "01:00:5e:00:00:01"])
def test_malformed_or_group_source_mac_is_refused_before_anything_opens(
        link: Link, mac: str) -> None:
    before = _fds()
    with pytest.raises(McastValueError, match=r"aa:bb|02:00:5e:10:00:01|group") as e:
        link.tx(src_mac=mac).send(b"x", group4(), link.port, sport=1)
    assert e.value.code == ErrorCode.BAD_ADDRESS
    assert _fds() == before


def test_unknown_interface_names_those_there_are(link: Link) -> None:
    before = _fds()
    with link.pair.a.enter(), pytest.raises(InterfaceNotFoundError, match="eth0"):
        RawSender("eth9")
    assert _fds() == before


def test_lo_is_refused_with_the_reason(link: Link) -> None:
    with link.pair.a.enter(), pytest.raises(InterfaceError, match="not Ethernet-like") as e:
        RawSender("lo")
    assert e.value.code == ErrorCode.UNSUPPORTED and "loopback" in str(e.value)


def test_tun_device_is_refused(link: Link) -> None:
    r = link.pair.a.ip("tuntap", "add", "dev", "tun7", "mode", "tun", check=False)
    if r.returncode != 0:
        require_or_skip(f"cannot create a tun device here: {r.stderr.strip()}")
    link.pair.a.ip("link", "set", "tun7", "up")
    with link.pair.a.enter(), pytest.raises(InterfaceError, match="tun") as e:
        RawSender("tun7")
    assert e.value.code == ErrorCode.UNSUPPORTED


def test_down_interface_is_refused_naming_the_fix(link: Link) -> None:
    link.pair.a.ip("link", "add", "d7a", "type", "veth", "peer", "name", "d7b")  # down
    with link.pair.a.enter(), pytest.raises(InterfaceError, match="ip link set d7a up"):
        RawSender("d7a")


def test_closed_sender_raises_closed_error(link: Link) -> None:
    tx = link.tx()
    tx.close()
    tx.close()
    with pytest.raises(ClosedError, match="closed"):
        tx.send(b"x", group4(), link.port, sport=1)
    assert "closed" in repr(tx)


# ------------------------------------------------------------------ the docs example


def test_docs_example_runs_as_written(netns: Netns) -> None:
    """docs/raw-send.md's shell block, run as written (sudo dropped: we are root here,
    python3 is this interpreter), prints what the doc says tcpdump shows."""
    if shutil.which("tcpdump") is None:
        require_or_skip("tcpdump is not installed (apt-get install tcpdump)")
    doc = (Path(__file__).resolve().parents[3] / "docs" / "raw-send.md").read_text()
    (block,) = re.findall(r"```sh\n(.*?)```", doc, flags=re.S)
    script = block.replace("sudo ", "").replace("python3 -c", f"{sys.executable} -c")
    r = subprocess.run(["sh", "-e", "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    for seen in ("02:00:5e:10:00:01 > 01:00:5e:7f:00:09", "tos 0xb8, ttl 4",
                 f"{lab_host(7, 7)}.4000 >", "[udp sum ok]"):
        assert seen in out, (seen, r.stdout, r.stderr)
