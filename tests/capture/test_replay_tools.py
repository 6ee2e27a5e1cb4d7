"""Captures written by tcpdump and tshark (pcap and pcapng; Ethernet, Linux cooked v1 and
v2) → ``mcastkit replay`` → received byte-for-byte by socat and by ``mcastkit listen``;
``--map`` to another group; IP fragments reassembled."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mcastkit.capture import DecodeStats, packets
from mcastkit.cli._format import decode_json_payload
from tests.support.addrs import asm4
from tests.support.cli import Background, cli, group_users, wait_joined
from tests.support.netns import wait_until
from tests.support.peers import Capture, need, send_all
from tests.support.topology import VethPair

pytestmark = [pytest.mark.kernel, pytest.mark.interop]

G, PORT = asm4(72, 1), 7201
SENTINEL = b"unicast sentinel, skipped by replay"
_TCPDUMP = ["tcpdump", "--immediate-mode", "-B", "16384", "-U"]  # every packet, at once
CAPTURES = {
    "tcpdump-ethernet.pcap": [*_TCPDUMP, "-i", "eth0", "-w"],
    "tcpdump-any-sll2.pcap": [*_TCPDUMP, "-i", "any", "-y", "LINUX_SLL2", "-w"],
    "tcpdump-any-sll.pcap": [*_TCPDUMP, "-i", "any", "-y", "LINUX_SLL", "-w"],
    "tcpdump-nanosecond.pcap": [*_TCPDUMP, "--time-stamp-precision", "nano", "-i", "eth0",
                                "-w"],
    "tshark-ethernet.pcapng": ["tshark", "-i", "eth0", "-w"],
}
LINKTYPE = {"tcpdump-ethernet.pcap": 1, "tcpdump-any-sll2.pcap": 276,
            "tcpdump-any-sll.pcap": 113, "tshark-ethernet.pcapng": 1,
            "tcpdump-nanosecond.pcap": 1}


def _capture(veth_pair: VethPair, kind: str, path: str, payloads: list[bytes]) -> None:
    need(CAPTURES[kind][0])
    cap = Capture(veth_pair.b, [*CAPTURES[kind], path])
    try:
        with veth_pair.a.enter():
            send_all(payloads, G, PORT, ifname="eth0", ttl=1, gap_s=0.005)
            send_all([SENTINEL], veth_pair.addr_b, PORT, ifname="eth0")
        # sent last: once the file has it, it has everything before it
        try:
            wait_until(lambda: SENTINEL in Path(path).read_bytes(), 15,
                       what=f"{kind} wrote the last datagram")
        except TimeoutError:
            print(cap.stop())
            print(subprocess.run(["tcpdump", "-nr", path], capture_output=True, text=True))
            raise
    finally:
        cap.stop()


@pytest.mark.parametrize("kind", list(CAPTURES))
def test_third_party_capture_replayed_byte_for_byte(veth_pair: VethPair, tmp_path: Path,
                                                    kind: str) -> None:
    socat = need("socat")
    path = str(tmp_path / kind)
    payloads = [os.urandom(n) for n in (1, 100, 1472, 3000, 8000, 20)]  # two fragmented
    _capture(veth_pair, kind, path, payloads)
    stats = DecodeStats()
    found = [d.payload for d in packets(path, stats)]
    assert found == payloads, stats.as_dict()
    assert set(stats.linktypes) == {LINKTYPE[kind]}
    assert stats.reassembled == 2 and stats.skipped["unicast"] == 1

    g2, p2 = asm4(72, 99), 7299
    with veth_pair.b.enter():  # replay into lo of the capturing namespace
        sc = subprocess.Popen([socat, "-u", f"UDP4-RECV:{p2},ip-add-membership={g2}:lo,"
                               "reuseaddr", f"OPEN:{tmp_path / 'socat.out'},creat,append"],
                              stderr=subprocess.PIPE)
        try:
            bg = Background("listen", f"{g2}:{p2}", "-i", "lo", "--json", "--hex", "--reuse", "-c",
                            str(len(payloads)), "--timeout", "20")
            # both joined (socket count of the group) and both bound: ready to receive
            wait_until(lambda: group_users(g2, "lo") >= 2, 10, what=f"2 sockets joined {g2}")
            wait_bound(p2, 2)
            r = cli("replay", path, "-i", "lo", "--map", f"{G}:{PORT}={g2}:{p2}", "--json",
                    "--speed", "10")
            assert r.status == 0, r.stderr
            rep = r.json()[-1]
            assert rep["sent"] == len(payloads)
            # the unicast datagram; MLD reports (not UDP) and ARP (not IP) are also counted
            assert rep["skipped"]["unicast"] == 1
            assert "fragments_incomplete" not in rep["skipped"]
            heard = bg.join()
            # socat is another process: it may still be writing what listen has heard
            out, size = tmp_path / "socat.out", sum(map(len, payloads))
            wait_until(lambda: out.exists() and out.stat().st_size >= size, 20,
                       what=f"socat wrote {size} bytes")
        finally:
            sc.terminate()
            sc.wait(10)
    assert heard.status == 0, heard.stderr
    objs = heard.json()
    assert {o["encoding"] for o in objs} == {"hex"}  # --hex: every payload as hex
    assert [decode_json_payload(o) for o in objs] == payloads
    assert (tmp_path / "socat.out").read_bytes() == b"".join(payloads)


def wait_bound(port: int, sockets: int) -> None:
    """Wait until ``sockets`` UDP sockets of this thread's namespace are bound to ``port``
    (a socket can join before it binds: the membership alone cannot tell)."""
    def bound() -> bool:
        with open("/proc/thread-self/net/udp") as f:
            return sum(1 for line in f if line.split()[1].endswith(f":{port:04X}")) >= sockets
    wait_until(bound, 10, what=f"{sockets} sockets bound to port {port}")


def test_replay_without_map_goes_to_the_recorded_group(veth_pair: VethPair,
                                                       tmp_path: Path) -> None:
    path = str(tmp_path / "eth.pcap")
    payloads = [b"one", b"two", b"three"]
    _capture(veth_pair, "tcpdump-ethernet.pcap", path, payloads)
    with veth_pair.b.enter():
        bg = Background("listen", f"{G}:{PORT}", "-i", "lo", "--json", "-c", "3",
                        "--timeout", "20")
        wait_joined(G, "lo")
        r = cli("replay", path, "-i", "lo", "--max")
        assert r.status == 0, r.stderr
        assert "replayed 3 datagrams" in r.stdout and "unicast 1" in r.stdout
    heard = bg.join()
    assert [o["data"] for o in heard.json()] == ["one", "two", "three"]
