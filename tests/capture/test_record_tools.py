"""``mcastkit record`` → tcpdump and tshark read every datagram: addresses, ports,
payloads, TTL / hop limit, nanosecond timestamps and checksums (validated by tshark)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from mcastkit.capture import packets
from tests.support.addrs import asm4, asm6
from tests.support.cli import Background, wait_joined
from tests.support.peers import need, send_all, tshark_fields
from tests.support.topology import VethPair

pytestmark = [pytest.mark.kernel, pytest.mark.interop]

G4, G6 = asm4(71, 1), asm6("71:1")


def test_record_read_back_by_tshark_and_tcpdump(veth_pair: VethPair, tmp_path: Path) -> None:
    need("tcpdump")
    path = str(tmp_path / "rec.pcapng")
    v4 = [os.urandom(n) for n in (0, 1, 17, 512, 1400, 3000)]  # 3000: fragmented on the wire
    v6 = [os.urandom(n) for n in (3, 64, 1200)]
    t_start = time.time_ns()
    with veth_pair.b.enter():
        bg = Background("record", f"{G4}:7101", f"[{G6}]:7102", "-i", "eth0", "-w", path,
                        "-c", str(len(v4) + len(v6)), "--json")
        wait_joined(G4, "eth0")
        wait_joined(G6, "eth0")
    with veth_pair.a.enter():
        send_all(v4, G4, 7101, ifname="eth0", ttl=5, sport=40001)
        send_all(v6, G6, 7102, ifname="eth0", version=6, ttl=7, sport=40002)
    res = bg.join()
    t_end = time.time_ns()
    assert res.status == 0, res.stderr
    summary = res.json()[-1]
    assert summary["datagrams"] == len(v4) + len(v6) and summary["kernel_drops"] == 0

    rows = tshark_fields(path, "frame.time_epoch", "ip.src", "ip.dst", "ip.ttl",
                         "ipv6.src", "ipv6.dst", "ipv6.hlim", "udp.srcport", "udp.dstport",
                         "udp.checksum.status", "ip.checksum.status", "udp.payload",
                         "frame.interface_name")
    assert len(rows) == len(v4) + len(v6)
    by_payload = {bytes.fromhex(r[11]): r for r in rows}
    assert set(by_payload) == set(v4) | set(v6)
    stamps = []
    for p in v4:
        r = by_payload[p]
        assert (r[1], r[2], r[3], r[7], r[8]) == (veth_pair.addr_a, G4, "5", "40001", "7101")
        assert r[9] == "1" and r[10] == "1"  # "Good" UDP and IPv4 header checksums
        stamps.append(r[0])
    for p in v6:
        r = by_payload[p]
        assert (r[4].split("%")[0], r[5], r[6], r[7], r[8]) == (veth_pair.ll_a.split("%")[0],
                                                                G6, "7", "40002", "7102")
        assert r[9] == "1"
        stamps.append(r[0])
    assert all(r[12] == "eth0" for r in rows)
    # nanosecond kernel timestamps, within the run, as our own reader reads them
    ns = [int(s.replace(".", "")) for s in stamps]
    assert all(t_start <= t <= t_end for t in ns)
    ours = {d.payload: d.ts_ns for d in packets(path)}
    assert sorted(ours.values()) == sorted(ns)

    # tcpdump reads the same file: same count, every checksum verified
    tcpdump = subprocess.run(["tcpdump", "-nvvr", path], capture_output=True, text=True,
                             timeout=30)
    assert tcpdump.returncode == 0, tcpdump.stderr
    assert tcpdump.stdout.count("[udp sum ok]") == len(v4) + len(v6)
    assert "bad" not in tcpdump.stdout
