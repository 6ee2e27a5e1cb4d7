"""Broadcast and SourceMacAddress in ``MCast`` (issue 8 items 2 and 3) between two
namespaces joined by a veth pair (a: 198.18.9.1/24, b: 198.18.9.2/24, both ``eth0``).

Owns: a broadcast ``remote_host`` that just sends (limited with send_interface, and
directed), an active instance with a ``local_port`` receiving broadcasts through
``on_data_in`` with ``DestinationAddress``; SourceMacAddress frames captured on the peer
(source MAC, TTL, DSCP, checksums) and received by the peer's MCast; the typed errors
(limited broadcast without send_interface, no CAP_NET_RAW), each leaving nothing sent
(a sentinel is the next datagram).
Must not: prove non-delivery with a sleep.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcastkit._frames import format_mac, parse_ip_packet, parse_udp
from mcastkit.compat import MCast, MCastError
from tests.support.addrs import VETH_BCAST, asm4
from tests.support.compat import Recorder, pump
from tests.support.fixtures import require_or_skip
from tests.support.peers import PcapCapture
from tests.support.topology import VethPair, new_port

pytestmark = pytest.mark.kernel
MAC = "02:00:5e:10:00:01"
G = asm4(14, 1)


class Peer:
    """An active MCast in b on ``port`` (capture on, optionally joined to G)."""

    def __init__(self, pair: VethPair, port: int, group: str = "") -> None:
        self.rec = Recorder()
        with pair.b.enter():
            self.mc = self.rec.attach(MCast(), capture_dest=True)
            self.mc.config("SelectWaitMillis=5")
            self.mc.config("CaptureIPPacketInfo=True")
            self.mc.receive_interface = "eth0"
            self.mc.local_port = port
            if group:
                self.mc.multicast_group = group
            self.mc.active = True

    def next(self, n: int = 1) -> list[bytes]:
        pump([self.mc], lambda: len(self.rec.data) >= n)
        return self.rec.payloads


@pytest.fixture
def peer(veth_pair: VethPair) -> Iterator[Peer]:
    p = Peer(veth_pair, new_port())
    yield p
    p.mc.active = False


def sender(pair: VethPair, host: str, port: int, **props: object) -> MCast:
    with pair.a.enter():
        mc = MCast()
        mc.remote_host = host
        mc.remote_port = port
        for k, v in props.items():
            setattr(mc, k, v) if not k[0].isupper() else mc.config(f"{k}={v}")
        mc.active = True
    return mc


def test_limited_and_directed_broadcast_just_work(veth_pair: VethPair, peer: Peer) -> None:
    port = peer.mc.local_port
    tx = sender(veth_pair, "255.255.255.255", port, send_interface="eth0")
    tx2 = sender(veth_pair, VETH_BCAST, port)  # directed: no interface needed
    try:
        tx.send(b"limited")
        assert peer.next() == [b"limited"]
        tx2.send(b"directed")
        assert peer.next(2) == [b"limited", b"directed"]
    finally:
        tx.active = tx2.active = False
    assert peer.rec.dest == ["255.255.255.255", VETH_BCAST]
    assert [e.source_address for e in peer.rec.data] == [veth_pair.addr_a] * 2


def test_limited_broadcast_without_send_interface_names_it(veth_pair: VethPair,
                                                            peer: Peer) -> None:
    port = peer.mc.local_port
    tx = sender(veth_pair, "255.255.255.255", port)
    try:
        with pytest.raises(MCastError) as ei:
            tx.send(b"nowhere")
        assert ei.value.code == 121 and "send_interface" in ei.value.message
        with veth_pair.a.enter():
            tx.send_interface = "eth0"
        tx.send(b"sentinel")
        assert peer.next() == [b"sentinel"]
    finally:
        tx.active = False


def test_source_mac_address_frames_reach_the_peer(veth_pair: VethPair, tmp_path: Path
                                                  ) -> None:
    port = new_port()
    rx = Peer(veth_pair, port, G)
    cap = PcapCapture(veth_pair.b, port, 2, tmp_path / "mac.pcap")
    tx = sender(veth_pair, G, port, send_interface="eth0", time_to_live=3,
                SourceMacAddress=MAC, QOSDSCPValue=46)
    try:
        with veth_pair.a.enter():  # the raw sender looks the interface up in a
            tx.send(b"one")
            tx.remote_host = VETH_BCAST  # a directed broadcast: ff:ff:ff:ff:ff:ff
            tx.send(b"two")
        assert rx.next(2) == [b"one", b"two"]
        assert rx.rec.data[0].source_port == tx.local_port
    finally:
        tx.active = False
        rx.mc.active = False
    frames = cap.frames()
    assert [format_mac(f.src_mac or b"") for f in frames] == [MAC, MAC]
    assert format_mac(frames[1].dst_mac) == "ff:ff:ff:ff:ff:ff"
    ips = [parse_ip_packet(f.payload) for f in frames]
    assert [(ip.ttl, ip.dscp, ip.header_checksum_ok) for ip in ips] == [(3, 46, True)] * 2
    assert all(parse_udp(ip).checksum_ok for ip in ips)


def test_source_mac_address_without_cap_net_raw_names_it_and_sends_nothing(
        veth_pair: VethPair, peer: Peer) -> None:
    if shutil.which("setpriv") is None:
        require_or_skip("setpriv (util-linux) is needed to drop CAP_NET_RAW")
    port = peer.mc.local_port
    code = (
        "from mcastkit.compat import MCast, MCastError\n"
        "mc = MCast()\n"
        f"mc.remote_host, mc.remote_port = '{VETH_BCAST}', {port}\n"
        "mc.send_interface = 'eth0'\n"
        f"mc.config('SourceMacAddress={MAC}')\n"
        "mc.active = True\n"
        "try:\n"
        "    mc.send(b'leak')\n"
        "except MCastError as e:\n"
        "    print(e.code, e.message)\n"
        "print(mc.config('SourceMacAddress'))\n"
    )
    r = veth_pair.a.run("setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw",
                        sys.executable, "-c", code, check=False)
    assert r.returncode == 0, r.stderr
    first, setting = r.stdout.strip().splitlines()
    num, message = first.split(" ", 1)
    assert int(num) == 10013 and "CAP_NET_RAW" in message and "SourceMacAddress" in message
    assert setting == MAC  # state unchanged
    tx = sender(veth_pair, VETH_BCAST, port)
    try:
        tx.send(b"sentinel")
        assert peer.next() == [b"sentinel"]
    finally:
        tx.active = False


def test_ipv6_has_no_broadcast_121_naming_it(veth_pair: VethPair) -> None:
    with veth_pair.a.enter():
        mc = MCast()
        mc.config("UseIPv6=True")
        mc.send_interface = "eth0"
        mc.remote_host, mc.remote_port = "255.255.255.255", 5000
        mc.active = True
        try:
            with pytest.raises(MCastError) as ei:
                mc.send(b"no")
            assert ei.value.code == 121 and "UseIPv6=False" in ei.value.message
            assert "IPv6 has no broadcast" in ei.value.message
            assert mc.remote_host == "255.255.255.255"  # unchanged
        finally:
            mc.active = False
